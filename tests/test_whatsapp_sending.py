"""Sending on WhatsApp through real HTTP to the fake Cloud API: each Graph refusal in the channel
layer's words, and the broadcast relay at the number's rate, where a pair-rate refusal (131056)
holds back only that worker and a throughput refusal (130429) pauses every send."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from sqlalchemy import insert, select

from bot.channels.broadcast_relay import BroadcastRelay
from bot.channels.sending import (
    Blocked,
    ChannelDown,
    Rejected,
    RetryAfter,
    SendFailure,
    WindowClosed,
)
from bot.channels.whatsapp.api import GraphClient
from bot.channels.whatsapp.sender import MESSAGE_REF_KIND, WhatsAppSender
from bot.settings import resolve_keys
from conversations.messages import Choice, Outbound
from locales import LANGUAGES
from services.broadcasts import BroadcastPolicy, BroadcastService, Segment
from services.workers import address_purpose
from storage.crypto import Keyring
from storage.database import Database
from storage.models import BroadcastDelivery, Worker, WorkerAddress
from storage.redis_keys import RedisKeyNames
from storage.send_rate import Lane, MemorySendRate
from tests.conftest import Backend
from tests.fake_whatsapp_api import FakeWhatsAppServer

NAMES = RedisKeyNames(b"k" * 32, "test")
PHONE = "66800000001"


def sender_for(server: FakeWhatsAppServer, graph: GraphClient, **options: object) -> WhatsAppSender:
    return WhatsAppSender(graph, MemorySendRate(1000), NAMES, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "failure", "chat_only"),
    [
        (131056, RetryAfter, True),  # pair rate: this worker only
        (130429, RetryAfter, False),  # throughput: everyone
        (131047, WindowClosed, None),
        (131026, Blocked, None),
        (131050, Blocked, None),
        (190, ChannelDown, None),
        (131000, ChannelDown, None),
        (131009, Rejected, None),
        (132001, Rejected, None),
    ],
)
async def test_each_graph_refusal_is_said_in_the_channel_layer_words(
    fake_whatsapp: FakeWhatsAppServer,
    code: int,
    failure: type[SendFailure],
    chat_only: bool | None,
) -> None:
    async with GraphClient(
        api_base=fake_whatsapp.base_url,
        token=fake_whatsapp.token,
        phone_number_id=fake_whatsapp.phone_number_id,
    ) as graph:
        sender = sender_for(fake_whatsapp, graph, lane=Lane.BROADCAST, paced=False)
        fake_whatsapp.fail_next(code, recipient=PHONE)
        with pytest.raises(failure) as raised:
            await sender.send(PHONE, Outbound("Hello"))
        if chat_only is not None:
            assert isinstance(raised.value, RetryAfter)
            assert raised.value.chat_only is chat_only
        assert PHONE not in str(raised.value), "a failure never names the number"
        refs = await sender.send(PHONE, Outbound("Hello again"))  # the next one goes
    (sent,) = fake_whatsapp.messages_to(PHONE)
    assert refs == [NAMES.token(MESSAGE_REF_KIND, sent.wamid)], "refs are keyed tokens"
    assert sent.wamid not in refs


async def test_a_message_with_choices_goes_as_buttons_and_the_window_check_comes_first(
    fake_whatsapp: FakeWhatsAppServer,
) -> None:
    async def closed(address: str) -> bool:
        return False

    async with GraphClient(
        api_base=fake_whatsapp.base_url,
        token=fake_whatsapp.token,
        phone_number_id=fake_whatsapp.phone_number_id,
    ) as graph:
        message = Outbound("Was it fixed?", (Choice("Yes", "v:yes"), Choice("No", "v:no")))
        with pytest.raises(WindowClosed):
            await sender_for(fake_whatsapp, graph, window=closed).send(PHONE, message)
        assert fake_whatsapp.messages_to(PHONE) == [], "nothing went out with the window shut"
        await sender_for(fake_whatsapp, graph).send(PHONE, message)
    (sent,) = fake_whatsapp.messages_to(PHONE)
    assert sent.choice_ids == ["v:yes", "v:no"]


async def seed_whatsapp_workers(backend: Backend, count: int) -> tuple[Database, Keyring]:
    settings = backend.settings()
    keyring = Keyring(resolve_keys(settings).encryption_keys)
    database = Database(settings.database_url)
    await database.upgrade()
    rows = [
        {"pseudonym": secrets.token_hex(32), "language": list(LANGUAGES)[n % 8], "subscribed": True}
        for n in range(count)
    ]
    async with database.transaction() as session:
        await session.execute(insert(Worker), rows)
        ids = dict((await session.execute(select(Worker.pseudonym, Worker.id))).all())
        await session.execute(
            insert(WorkerAddress),
            [
                {
                    "worker_id": ids[row["pseudonym"]],
                    "channel": "whatsapp",
                    "address_ciphertext": keyring.encrypt(
                        f"668{n:08d}".encode(),
                        address_purpose(str(row["pseudonym"]), "whatsapp", ids[row["pseudonym"]]),
                    ),
                }
                for n, row in enumerate(rows)
            ],
        )
    texts = {code: f"Your rights, in {code}" for code in LANGUAGES}
    await BroadcastService(database, BroadcastPolicy(quiet_window=None)).create(
        "test", texts, Segment(), urgent=False
    )
    return database, keyring


async def test_a_broadcast_holds_back_only_the_worker_at_their_pair_rate(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    count = 30
    database, keyring = await seed_whatsapp_workers(backend, count)
    slow = f"668{7:08d}"
    fake_whatsapp.fail_next(131056, recipient=slow)
    fake_whatsapp.fail_next(130429)  # the first send of all: everyone waits a moment
    try:
        async with GraphClient(
            api_base=fake_whatsapp.base_url,
            token=fake_whatsapp.token,
            phone_number_id=fake_whatsapp.phone_number_id,
        ) as graph:
            rate = MemorySendRate(200, 0)
            sender = WhatsAppSender(graph, rate, NAMES, lane=Lane.BROADCAST, paced=False)
            relay = BroadcastRelay(
                database, keyring, sender, rate, policy=BroadcastPolicy(quiet_window=None)
            )
            started = asyncio.get_running_loop().time()
            await relay.drain()
            others_done = asyncio.get_running_loop().time() - started
            assert {m.recipient for m in fake_whatsapp.sent} == {
                f"668{n:08d}" for n in range(count) if f"668{n:08d}" != slow
            }, "everyone else went out at once"
            assert others_done < 5.5, "the pair rate of one worker held back nobody else"
            async with database.sessions() as session:
                waiting = (
                    await session.scalars(
                        select(BroadcastDelivery.status).where(
                            BroadcastDelivery.status == "pending"
                        )
                    )
                ).all()
            assert len(waiting) == 1, "only the slow worker's row waits"
            assert relay.stats.rate_limited == 2
            await asyncio.sleep(6.1)  # the pair rate's wait (design note: 1 message / 6 s)
            await relay.drain()
        assert len(fake_whatsapp.messages_to(slow)) == 1, "then it goes, once"
        assert len(fake_whatsapp.sent) == count
    finally:
        await database.dispose()

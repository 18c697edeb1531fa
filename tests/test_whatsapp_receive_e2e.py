"""The fake Cloud API's webhook deliveries (signed, retried, duplicated, batched, as Meta sends
them) reach the bot's WhatsApp webhook over real HTTP, each message handed on exactly once.

Both sides are independent code: `tests/fake_whatsapp_api.py` writes Meta's wire format and
`bot/channels/whatsapp/` reads it, so a disagreement between them fails here. The channel itself
is not wired into `wvb run` yet (issue 12); this covers the receiving edge it will stand on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.channels.whatsapp.updates import MessageKind, WaMessage, WebhookUpdates
from bot.channels.whatsapp.webhook import WEBHOOK_PATH, WhatsAppWebhook, start_webhook
from storage.redis_keys import RedisKeyNames
from storage.seen_messages import MemorySeenMessages, RedisSeenMessages, SeenMessages
from tests.conftest import REDIS_URL
from tests.fake_whatsapp_api import (
    DEFAULT_APP_SECRET,
    SimulatedWaUser,
    WebhookDeliverer,
    envelope,
)

VERIFY_TOKEN = "verify-me"


class Bot:
    """The receiving edge on a port of its own, collecting what it hands on."""

    def __init__(self, seen: SeenMessages, port: int) -> None:
        self.port = port
        self.received: list[WaMessage] = []
        self.webhook = WhatsAppWebhook(
            verify_token=VERIFY_TOKEN,
            app_secret=DEFAULT_APP_SECRET,
            on_updates=self._on_updates,
            seen=seen,
            names=RedisKeyNames(b"s" * 32, "wvb-e2e"),
        )
        self.runner: object = None

    async def _on_updates(self, updates: WebhookUpdates) -> None:
        self.received.extend(updates.messages)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def start(self) -> None:
        self.runner = await start_webhook(self.webhook.application(), "127.0.0.1", self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["memory", "redis"])
async def seen(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[SeenMessages]:
    if request.param == "memory":
        yield MemorySeenMessages()
        return
    redis = Redis.from_url(REDIS_URL)
    try:
        yield RedisSeenMessages(redis, redis_prefix)
    finally:
        await redis.aclose()


async def test_a_delivery_retried_until_the_bot_is_up_and_then_duplicated_is_handled_once(
    seen: SeenMessages,
) -> None:
    bot = Bot(seen, free_port())
    worker = SimulatedWaUser(wa_id="66812345678", user_id="TH.1234567")
    batch = envelope([worker.text("hello"), worker.button_reply("val:K7M3-9Q2X:no", "No")])
    # Meta retries a delivery that found nobody; the bot comes up between two tries.
    async with WebhookDeliverer(bot.url, retry_delays=(0.3, 0.6, 1.2)) as meta:
        delivering = asyncio.create_task(meta.deliver(batch, duplicate=True))
        await asyncio.sleep(0.1)
        await bot.start()
        try:
            statuses = await delivering
            assert statuses[0] == 0, "the first try found no bot"
            assert statuses[-1] == 200
            assert statuses.count(200) == 2, "delivered, then delivered again as a duplicate"
            await bot.webhook.drain()
        finally:
            await bot.stop()

    assert [(m.kind, m.text, m.payload) for m in bot.received] == [
        (MessageKind.TEXT, "hello", ""),
        (MessageKind.CHOICE, "", "val:K7M3-9Q2X:no"),
    ]
    assert {m.sender for m in bot.received} == {"TH.1234567"}, "the phone-less id is preferred"


async def test_a_delivery_signed_with_another_secret_is_refused_and_never_handed_on() -> None:
    bot = Bot(MemorySeenMessages(), free_port())
    await bot.start()
    try:
        worker = SimulatedWaUser(wa_id="66812345678")
        async with WebhookDeliverer(bot.url, "not-the-app-secret", retry_delays=()) as stranger:
            assert await stranger.deliver(worker.text("hello")) == [403]
        async with WebhookDeliverer(bot.url) as meta:
            assert await meta.verify(VERIFY_TOKEN, "1158201444") == (200, "1158201444")
            assert (await meta.verify("guess", "1158201444"))[0] == 403
        await bot.webhook.drain()
    finally:
        await bot.stop()
    assert bot.received == []

"""The relays keep the ref of what they sent (``external_ref``) for a channel whose ids are refs,
so a delivery receipt finds its row; for any other channel they store nothing. On both databases.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select, update

from bot.channels.broadcast_relay import BroadcastRelay
from bot.channels.outbox_relay import OutboxRelay
from bot.channels.sending import Sender
from conversations.messages import Outbound
from domain.statuses import DeliveryStatus, OutboxStatus
from services.broadcasts import BroadcastPolicy, BroadcastService, Segment
from services.outbox import Outbox
from services.workers import address_purpose
from storage.database import Database
from storage.models import BroadcastDelivery, OutboxMessage, Worker, WorkerAddress, utc_now
from storage.send_rate import MemorySendRate
from tests.case_factory import TEST_KEYRING
from tests.conftest import Backend

WORKERS = 30


class RefSender:
    """A WhatsApp-like sender: every message goes out in two parts, its ids are refs."""

    channel = "whatsapp"
    ids_are_refs = True

    def __init__(self) -> None:
        self.numbers = itertools.count(1)

    async def send(self, address: str, message: Outbound) -> list[str]:
        number = next(self.numbers)
        return [f"ref-{number}-first-part", f"ref-{number}-last-part"]


class NumberedSender:
    """A Telegram-like sender: its ids are the messenger's own message numbers."""

    channel = "whatsapp"

    async def send(self, address: str, message: Outbound) -> list[str]:
        return ["4711"]


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    database = Database(backend.database_url)
    await database.upgrade()
    async with database.transaction() as session:
        await session.execute(
            insert(Worker),
            [{"pseudonym": f"{n:064x}", "language": "th", "subscribed": True}
             for n in range(WORKERS)],
        )  # fmt: skip
        workers = (await session.execute(select(Worker.id, Worker.pseudonym))).all()
        await session.execute(
            insert(WorkerAddress),
            [{"worker_id": worker_id, "channel": "whatsapp",
              "address_ciphertext": TEST_KEYRING.encrypt(
                  f"6681{worker_id:07d}".encode(),
                  address_purpose(pseudonym, "whatsapp", worker_id))}
             for worker_id, pseudonym in workers],
        )  # fmt: skip
    try:
        yield database
    finally:
        await database.dispose()


async def queue_one(database: Database) -> int:
    async with database.transaction() as session:
        worker_id = await session.scalar(select(Worker.id).limit(1))
        await Outbox(TEST_KEYRING).to_worker(session, worker_id, Outbound("Your case moved on"))
    async with database.sessions() as session:
        return int(await session.scalar(select(OutboxMessage.id)) or 0)


async def outbox_row(database: Database, row_id: int) -> OutboxMessage:
    async with database.sessions() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row is not None
    return row


async def test_the_outbox_relay_keeps_the_last_part_as_the_ref_and_a_resend_starts_afresh(
    database: Database,
) -> None:
    row_id = await queue_one(database)
    relay = OutboxRelay(database, TEST_KEYRING, {"whatsapp": RefSender()})
    assert await relay.run_once() == 1
    row = await outbox_row(database, row_id)
    assert (row.status, row.external_ref, row.receipt) == ("sent", "ref-1-last-part", None)

    # A receipt came, then the window turned out closed: held, then sent again.
    async with database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(status=OutboxStatus.PENDING, receipt="failed", next_attempt_at=utc_now())
        )
    assert await relay.run_once() == 1
    row = await outbox_row(database, row_id)
    assert (row.status, row.external_ref, row.receipt) == ("sent", "ref-2-last-part", None)


async def test_the_outbox_relay_stores_no_ref_of_a_channel_whose_ids_are_not_refs(
    database: Database,
) -> None:
    row_id = await queue_one(database)
    relay = OutboxRelay(database, TEST_KEYRING, {"whatsapp": NumberedSender()})
    assert await relay.run_once() == 1
    row = await outbox_row(database, row_id)
    assert (row.status, row.external_ref) == ("sent", None)


@pytest.mark.parametrize("sender_kind", ["refs", "numbers"])
async def test_the_broadcast_relay_records_each_ref_in_its_batched_flush(
    database: Database, sender_kind: str
) -> None:
    sender: Sender = RefSender() if sender_kind == "refs" else NumberedSender()
    no_quiet = BroadcastPolicy(quiet_window=None)
    created = await BroadcastService(database, no_quiet).create(
        "test", {"th": "ข่าว"}, Segment(), urgent=True
    )
    relay = BroadcastRelay(database, TEST_KEYRING, sender, MemorySendRate(1000), policy=no_quiet)
    await relay.drain()
    async with database.sessions() as session:
        rows = (
            await session.execute(
                select(BroadcastDelivery.status, BroadcastDelivery.external_ref).where(
                    BroadcastDelivery.broadcast_id == created["id"]
                )
            )
        ).all()
    assert len(rows) == WORKERS
    assert {status for status, _ in rows} == {DeliveryStatus.SENT}
    refs = [ref for _, ref in rows]
    if sender_kind == "numbers":
        assert refs == [None] * WORKERS
    else:
        expected = {f"ref-{n}-last-part" for n in range(1, WORKERS + 1)}
        assert set(refs) == expected, "every row its own message's ref"

"""Delivery receipts on real databases: a row's receipt only moves up, whatever order, repeats or
strangers arrive in; a late failure gives up, holds or fails the message it names, once.

WhatsApp's error codes are read by the channel's own ``failure_of`` (Graph codes, as for a
refused send), so these tests use the codes a status callback really carries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from bot.channels.whatsapp.receipts import failure_of
from conversations.messages import Outbound
from domain.history import CaseAction
from domain.parties import Side
from domain.statuses import DeliveryStatus, OutboxStatus
from services.broadcasts import BroadcastService
from services.delivery_receipts import DeliveryReceipts, Receipt, Undelivered
from services.outbox import Outbox
from services.window_hold import CLOSED_AFTER_SENDING
from storage.database import Database
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    Case,
    CaseEvent,
    OutboxMessage,
    Worker,
    utc_now,
)
from storage.redis_keys import RedisKeyNames
from tests.case_factory import TEST_KEYRING, insert_case
from tests.conftest import Backend

NAMES = RedisKeyNames(b"s" * 32, "wvbtest")
BLOCKED, STOPPED, WINDOW, SOMETHING_WRONG = 131026, 131050, 131047, 131000


def ref(name: str) -> str:
    """The ref a relay stores for a message (the keyed token of its wamid)."""
    return NAMES.token("wa_msg", f"wamid.{name}")


@dataclass
class Scene:
    """A worker with a case and a case message sent to them; another worker with a broadcast
    delivery sent; staff alerts counted through the outbox's wake."""

    database: Database
    receipts: DeliveryReceipts
    reporter: int
    case_id: int
    case_message: int
    listener: int
    broadcast: int
    delivery: int
    wakes: list[int] = field(default_factory=list)

    async def message(self, row_id: int) -> OutboxMessage:
        async with self.database.sessions() as session:
            row = await session.get(OutboxMessage, row_id)
        assert row is not None
        return row

    async def delivery_row(self, row_id: int) -> BroadcastDelivery:
        async with self.database.sessions() as session:
            row = await session.get(BroadcastDelivery, row_id)
        assert row is not None
        return row

    async def blocked(self, worker_id: int) -> bool:
        async with self.database.sessions() as session:
            worker = await session.get(Worker, worker_id)
        assert worker is not None
        return worker.blocked_at is not None

    async def states(self) -> tuple[tuple[str | None, str, str], tuple[str | None, str, str]]:
        """(receipt, status, last error) of the case message, then of the broadcast delivery."""
        message = await self.message(self.case_message)
        delivery = await self.delivery_row(self.delivery)
        return (
            (message.receipt, message.status, message.last_error or ""),
            (delivery.receipt, delivery.status, delivery.last_error or ""),
        )

    async def count(self, model: type[OutboxMessage] | type[CaseEvent], *where: Any) -> int:
        async with self.database.sessions() as session:
            found = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(found or 0)

    async def staff_alerts(self) -> int:
        return await self.count(OutboxMessage, OutboxMessage.recipient == Side.STAFF)

    async def unreachable_events(self) -> int:
        return await self.count(CaseEvent, CaseEvent.action == CaseAction.WORKER_UNREACHABLE)

    async def sent_message(self, name: str, *, case_id: int | None = None) -> int:
        """Another message to the reporter, sent, with the ref ``ref(name)``."""
        outbox = Outbox(TEST_KEYRING)
        async with self.database.transaction() as session:
            await outbox.to_worker(session, self.reporter, Outbound("hello"), case_id=case_id)
            await session.flush()
            row_id = int(await session.scalar(select(func.max(OutboxMessage.id))) or 0)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(status=OutboxStatus.SENT, sent_at=utc_now(), attempts=1,
                        external_ref=ref(name))
            )  # fmt: skip
        return row_id


@pytest.fixture
async def scene(backend: Backend) -> AsyncIterator[Scene]:
    database = Database(backend.database_url)
    await database.upgrade()
    await insert_case(database, "p" * 64, "K7M3-9Q2X")
    wakes: list[int] = []
    outbox = Outbox(TEST_KEYRING, wake=lambda: wakes.append(1))
    receipts = DeliveryReceipts(database, outbox, failure_of, late_ref_seconds=0)
    async with database.transaction() as session:
        reporter = await session.scalar(select(Worker.id).where(Worker.pseudonym == "p" * 64))
        case_id = await session.scalar(select(Case.id))
        listener = Worker(pseudonym="q" * 64, language="th", subscribed=True)
        broadcast = Broadcast(created_by="test", total=1)
        session.add_all([listener, broadcast])
        await session.flush()
        delivery = BroadcastDelivery(
            broadcast_id=broadcast.id, worker_id=listener.id, channel="whatsapp",
            language="th", timezone="Asia/Bangkok", status=DeliveryStatus.SENT,
            sent_at=utc_now(), attempts=1, external_ref=ref("broadcast"),
        )  # fmt: skip
        session.add(delivery)
        await session.flush()
        ids = (reporter, case_id, listener.id, broadcast.id, delivery.id)
    assert reporter is not None
    assert case_id is not None
    built = Scene(database, receipts, reporter, case_id, 0, ids[2], ids[3], ids[4], wakes)
    built.case_message = await built.sent_message("case", case_id=case_id)
    try:
        yield built
    finally:
        await database.dispose()


async def test_a_receipt_only_moves_up_whatever_order_the_statuses_arrive_in(
    scene: Scene,
) -> None:
    record = scene.receipts.record
    # One batch out of order: the highest wins.
    counts = await record([Receipt(ref("case"), "sent"), Receipt(ref("case"), "read"),
                           Receipt(ref("case"), "delivered")])  # fmt: skip
    assert dict(counts.moved) == {"read": 1}
    # Older news in later batches changes nothing.
    for older in ("delivered", "sent"):
        counts = await record([Receipt(ref("case"), older)])
        assert (sum(counts.moved.values()), counts.unchanged) == (0, 1)
    assert (await scene.message(scene.case_message)).receipt == "read"
    # A broadcast delivery the same way, batch by batch.
    for status in ("delivered", "sent", "read", "delivered"):
        await record([Receipt(ref("broadcast"), status)])
    delivery = await scene.delivery_row(scene.delivery)
    assert (delivery.receipt, delivery.status) == ("read", DeliveryStatus.SENT)
    message = await scene.message(scene.case_message)
    assert message.status == OutboxStatus.SENT, "a good receipt changes no state"


async def test_the_same_batch_twice_changes_nothing_the_second_time(scene: Scene) -> None:
    batch = [Receipt(ref("case"), "delivered"), Receipt(ref("broadcast"), "sent")]
    first = await scene.receipts.record(batch)
    assert dict(first.moved) == {"delivered": 1, "sent": 1}
    again = await scene.receipts.record(batch)
    assert (dict(again.moved), again.unchanged, again.unknown_refs) == ({}, 2, 0)


async def test_unknown_refs_and_statuses_are_ignored_and_counted(scene: Scene) -> None:
    counts = await scene.receipts.record([
        Receipt(ref("a reply sent within a turn"), "read"),
        Receipt(ref("never sent"), "failed", (BLOCKED,)),
        Receipt(ref("case"), "deleted"),
        Receipt(ref("case"), "unknown"),
    ])  # fmt: skip
    assert (counts.unknown_refs, counts.unknown_statuses) == (2, 2)
    assert sum(counts.moved.values()) == 0
    message = await scene.message(scene.case_message)
    assert (message.receipt, message.status) == (None, OutboxStatus.SENT)
    assert not await scene.blocked(scene.reporter)


async def test_failed_is_terminal_and_fails_the_message_naming_the_code(scene: Scene) -> None:
    await scene.receipts.record([Receipt(ref("case"), "delivered")])
    wrong = (SOMETHING_WRONG,)
    await scene.receipts.record(
        [Receipt(ref("case"), "failed", wrong), Receipt(ref("broadcast"), "failed", wrong)]
    )
    for later in ("read", "delivered", "sent"):
        counts = await scene.receipts.record([Receipt(ref("case"), later)])
        assert counts.unchanged == 1
    (receipt, status, error), delivery = await scene.states()
    assert (receipt, status) == ("failed", OutboxStatus.FAILED)
    assert "131000" in error
    assert delivery[:2] == ("failed", DeliveryStatus.FAILED)
    assert not await scene.blocked(scene.reporter), "a server error is not a block"
    assert await scene.staff_alerts() == 0


async def test_blocked_after_sending_marks_the_worker_and_tells_staff_once(scene: Scene) -> None:
    failure = [Receipt(ref("case"), "failed", (BLOCKED,)),
               Receipt(ref("broadcast"), "failed", (STOPPED,))]  # fmt: skip
    counts = await scene.receipts.record([Receipt(ref("case"), "sent"), *failure])
    assert (counts.blocked, dict(counts.moved)) == (2, {"failed": 2})
    (receipt, status, error), delivery = await scene.states()
    assert (receipt, status) == ("failed", OutboxStatus.UNREACHABLE)
    assert "131026" in error
    assert delivery[:2] == ("failed", DeliveryStatus.BLOCKED)
    assert await scene.blocked(scene.reporter)
    assert await scene.blocked(scene.listener)
    assert (await scene.staff_alerts(), await scene.unreachable_events()) == (1, 1)
    assert scene.wakes == [1], "the relay is woken for the staff alert"
    status = await BroadcastService(scene.database).status("test", scene.broadcast)
    assert (status["sent"], status["failed"], status["blocked"]) == (0, 1, 1)

    again = await scene.receipts.record(failure)  # Meta repeats a delivery
    assert (again.blocked, again.unchanged) == (0, 2)
    assert (await scene.staff_alerts(), await scene.unreachable_events()) == (1, 1)
    assert scene.wakes == [1]


async def test_a_message_without_a_case_blocked_after_sending_tells_no_one(scene: Scene) -> None:
    lesson = await scene.sent_message("lesson reminder")
    counts = await scene.receipts.record([Receipt(ref("lesson reminder"), "failed", (BLOCKED,))])
    assert counts.blocked == 1
    assert (await scene.message(lesson)).status == OutboxStatus.UNREACHABLE
    assert await scene.blocked(scene.reporter)
    assert await scene.staff_alerts() == 0
    assert scene.wakes == []


async def test_window_closed_after_sending_holds_the_message_and_fails_the_broadcast(
    scene: Scene,
) -> None:
    counts = await scene.receipts.record(
        [Receipt(ref("case"), "failed", (WINDOW,)), Receipt(ref("broadcast"), "failed", (WINDOW,))]
    )
    assert (counts.held, counts.failed, counts.blocked) == (1, 1, 0)
    message = await scene.message(scene.case_message)
    # Due again, to take the window path in the relay (tests/test_window_hold.py): the template.
    assert (message.status, message.held_for_window, message.receipt) == (
        OutboxStatus.PENDING, False, "failed",
    )  # fmt: skip
    assert message.last_error == CLOSED_AFTER_SENDING
    assert (message.attempts, message.sent_at) == (1, None), "no attempt spent; not sent"
    assert message.next_attempt_at <= utc_now()
    delivery = await scene.delivery_row(scene.delivery)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error is not None
    assert "131047" in delivery.last_error
    assert "window" in delivery.last_error
    assert not await scene.blocked(scene.reporter), "a closed window is not a block"
    assert await scene.staff_alerts() == 0


async def test_a_resent_message_takes_receipts_of_its_new_ref_only(scene: Scene) -> None:
    await scene.receipts.record([Receipt(ref("case"), "failed", (WINDOW,))])
    # The worker wrote; the held message went again, under a new ref (what the relay writes).
    async with scene.database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == scene.case_message)
            .values(status=OutboxStatus.SENT, held_for_window=False, external_ref=ref("again"),
                    receipt=None)
        )  # fmt: skip
    counts = await scene.receipts.record(
        [Receipt(ref("case"), "failed", (WINDOW,)), Receipt(ref("again"), "delivered")]
    )
    assert (counts.unknown_refs, dict(counts.moved), counts.held) == (1, {"delivered": 1}, 0)
    message = await scene.message(scene.case_message)
    assert (message.status, message.receipt) == (OutboxStatus.SENT, "delivered")


async def test_a_failure_of_a_message_no_longer_sent_moves_only_its_receipt(scene: Scene) -> None:
    async with scene.database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == scene.case_message)
            .values(status=OutboxStatus.PENDING, held_for_window=True)
        )
    counts = await scene.receipts.record([Receipt(ref("case"), "failed", (BLOCKED,))])
    assert (dict(counts.moved), counts.blocked) == ({"failed": 1}, 0)
    message = await scene.message(scene.case_message)
    assert (message.status, message.receipt) == (OutboxStatus.PENDING, "failed")
    assert await scene.blocked(scene.reporter), "the worker cannot receive, all the same"
    assert await scene.staff_alerts() == 0


async def test_a_failure_that_overtakes_its_ref_is_applied_once_the_ref_is_written(
    scene: Scene,
) -> None:
    receipts = DeliveryReceipts(
        scene.database, Outbox(TEST_KEYRING), failure_of, late_ref_seconds=0.5
    )
    recording = asyncio.create_task(
        receipts.record([Receipt(ref("flushed late"), "failed", (BLOCKED,))])
    )
    await asyncio.sleep(0.1)
    async with scene.database.transaction() as session:  # the broadcast relay's flush
        await session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.id == scene.delivery)
            .values(external_ref=ref("flushed late"))
        )
    counts = await recording
    assert (counts.unknown_refs, counts.blocked) == (0, 1)
    assert (await scene.delivery_row(scene.delivery)).status == DeliveryStatus.BLOCKED
    assert await scene.blocked(scene.listener)


async def test_a_large_batch_takes_a_few_statements_not_one_per_receipt(scene: Scene) -> None:
    names = [f"m{n}" for n in range(60)]
    for name in names:
        await scene.sent_message(name, case_id=scene.case_id)
    batch = [Receipt(ref(name), status) for name in names for status in ("sent", "delivered")]
    batch += [Receipt(ref(name), "failed", (BLOCKED,)) for name in names[:20]]
    batch += [Receipt(ref(name), "failed", (WINDOW,)) for name in names[20:30]]
    batch += [Receipt(ref(name), "read") for name in names[30:]]
    statements: list[str] = []

    def count(*args: object) -> None:
        verb = str(args[2]).split(maxsplit=1)[0]
        if verb != "BEGIN":  # SQLite's BEGIN IMMEDIATE
            statements.append(verb)

    event.listen(scene.database.engine.sync_engine, "before_cursor_execute", count)
    try:
        counts = await scene.receipts.record(batch)
    finally:
        event.remove(scene.database.engine.sync_engine, "before_cursor_execute", count)
    assert (counts.blocked, counts.held, dict(counts.moved)) == (20, 10, {"failed": 30, "read": 30})
    assert await scene.staff_alerts() == 1, "one alert for the case, not one per message"
    # The rows of both tables; a receipt update per new receipt (failed, read); the worker
    # marked blocked; the case read, its event and alert inserted; a state update per kind.
    assert sorted(statements) == sorted(
        ["SELECT"] * 3 + ["UPDATE"] * 2 + ["UPDATE"] + ["INSERT"] * 2 + ["UPDATE"] * 2
    ), " ".join(statements)


def test_graph_codes_mean_what_they_mean_for_a_refused_send() -> None:
    assert failure_of(BLOCKED) is Undelivered.BLOCKED
    assert failure_of(STOPPED) is Undelivered.BLOCKED
    assert failure_of(WINDOW) is Undelivered.WINDOW_CLOSED
    assert failure_of(SOMETHING_WRONG) is Undelivered.OTHER
    assert failure_of(131051) is Undelivered.OTHER

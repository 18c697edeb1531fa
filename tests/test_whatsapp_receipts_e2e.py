"""Delivery receipts end to end: `wvb run` on WhatsApp against the fake Cloud API, staff replies
and a broadcast sent by the relays, Meta's status callbacks delivered to the bot's webhook as
signed POSTs (out of order, repeated, and failures reported after a 200), on SQLite + memory and
PostgreSQL + Redis. Afterwards the database dump, the Redis dump and the logs hold neither the
workers' phone numbers (as digits, with +, as their SHA-256) nor any wamid.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select

from bot.channels.outbox_relay import IDLE_SECONDS
from domain.history import CaseAction
from domain.parties import Side
from domain.statuses import DeliveryStatus, OutboxStatus
from services.whatsapp_templates import WhatsAppTemplates
from storage.database import Database
from storage.models import BroadcastDelivery, CaseEvent, OutboxMessage, Worker
from tests.bot_driver import run_wvb
from tests.case_factory import app_keyring, insert_case
from tests.conftest import Backend
from tests.dumps import database_dump, leaks, redis_dump
from tests.fake_whatsapp_api import FakeWhatsAppServer, JSONDict, SentWaMessage, envelope
from tests.whatsapp_driver import WaBot, WaWorker, offers, says, whatsapp_bot

REPORTER, LISTENER = "66811111111", "66822222222"
REFERENCE = "K7M3-9Q2X"
T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], wanted: Callable[[T], bool]) -> T:
    """What ``read`` returns once ``wanted`` holds of it (the webhook answers 200 first and
    records afterwards, and the relays send on their own time)."""
    deadline = time.monotonic() + 30
    while True:
        value = await read()
        if wanted(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


def first_has_ref(rows: Sequence[OutboxMessage] | Sequence[BroadcastDelivery]) -> bool:
    """The relay recorded what it sent (a status for it can find its row)."""
    return bool(rows and rows[0].external_ref)


async def onboard(worker: WaWorker, *, subscribe: bool) -> None:
    await worker.text("hello", offers("lang:en"))
    await worker.press("lang:en", offers("privacy:ok"))
    await worker.press("privacy:ok", offers("sub:no"))
    await worker.press("sub:yes" if subscribe else "sub:no", offers("menu:report"))


class Rows:
    """The rows the receipts land on, read afresh each time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def replies(self) -> list[OutboxMessage]:
        async with self.database.sessions() as session:
            found = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.recipient == Side.WORKER, OutboxMessage.case_id.is_not(None))
                .order_by(OutboxMessage.id)
            )
            return list(found)

    async def deliveries(self) -> list[BroadcastDelivery]:
        async with self.database.sessions() as session:
            found = await session.scalars(select(BroadcastDelivery).order_by(BroadcastDelivery.id))
            return list(found)

    async def blocked(self) -> set[int]:
        async with self.database.sessions() as session:
            found = await session.scalars(select(Worker.id).where(Worker.blocked_at.is_not(None)))
            return set(found)

    async def unreachable_events(self) -> int:
        async with self.database.sessions() as session:
            found = await session.scalars(
                select(CaseEvent.id).where(CaseEvent.action == CaseAction.WORKER_UNREACHABLE)
            )
            return len(list(found))


async def staff_reply(env: dict[str, str], worker: WaWorker, text: str) -> SentWaMessage:
    since = len(worker.messages())
    result = await run_wvb(env, "cases", "reply", REFERENCE, "--text", text)
    assert result.returncode == 0, result.stderr
    return await worker.wait_for(says(text), since)


async def broadcast(
    env: dict[str, str], worker: WaWorker, text: str, tmp_path: Path
) -> SentWaMessage:
    since = len(worker.messages())
    path = tmp_path / f"news-{since}.txt"
    path.write_text(text)
    result = await run_wvb(env, "broadcast", "create", "--text-file", f"en={path}")
    assert result.returncode == 0, result.stderr
    return await worker.wait_for(says(text), since)


async def statuses(bot: WaBot, *values: JSONDict, duplicate: bool = False) -> None:
    """One webhook POST carrying ``values`` (Meta batches statuses)."""
    answered = await bot.deliverer.deliver(envelope(list(values)), duplicate=duplicate)
    assert answered[-1] == 200, answered


async def test_outbox_and_broadcast_rows_take_their_receipts_and_late_failures_act(
    backend: Backend,
    fake_whatsapp: FakeWhatsAppServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = fake_whatsapp
    async with whatsapp_bot(backend, server, quiet_hours="") as bot:
        reporter, listener = bot.worker(REPORTER), bot.worker(LISTENER)
        await onboard(reporter, subscribe=False)
        await onboard(listener, subscribe=True)
        env = backend.environment(bot.settings) | {"WVB_QUIET_HOURS": ""}  # as the bot's
        database = Database(bot.settings.database_url)
        rows = Rows(database)
        try:
            async with database.sessions() as session:
                reporter_id, listener_id = list(
                    await session.scalars(select(Worker.id).order_by(Worker.id))
                )
                pseudonym = await session.scalar(
                    select(Worker.pseudonym).where(Worker.id == reporter_id)
                )
            assert pseudonym is not None
            await insert_case(database, pseudonym, REFERENCE, app_keyring(bot.settings))

            # A staff reply: out of order and repeated, the receipt ends at "read".
            reply = await staff_reply(env, reporter, "We called the employer.")
            [sent] = await eventually(rows.replies, first_has_ref)
            user = reporter.user
            await statuses(bot, user.status(reply.wamid, "read"),
                           user.status(reply.wamid, "sent"))  # fmt: skip
            await statuses(bot, user.status(reply.wamid, "delivered"), duplicate=True)
            [row] = await eventually(rows.replies, lambda found: found[0].receipt == "read")
            assert (row.receipt, row.status) == ("read", OutboxStatus.SENT)

            # A broadcast: sent, delivered, read, one POST each.
            news = await broadcast(env, listener, "The minimum wage rises in January.", tmp_path)
            await eventually(rows.deliveries, first_has_ref)
            for status in ("sent", "delivered", "read"):
                await statuses(bot, listener.user.status(news.wamid, status))
            [delivery] = await eventually(
                rows.deliveries, lambda d: bool(d) and d[0].receipt == "read"
            )
            assert (delivery.receipt, delivery.status) == ("read", DeliveryStatus.SENT)

            # Accepted, then reported failed: the window had closed (131047): the neutral
            # template asks the worker to write, and the reply is held until they do.
            server.register_template("wvb_new_message", "en")
            await WhatsAppTemplates(database).set("cli:test", "en", "wvb_new_message")
            server.fail_after_send(131047, recipient=REPORTER)
            await staff_reply(env, reporter, "Please call us back.")
            assert len(server.pending_statuses) == 1
            await statuses(bot, server.pending_statuses.pop())
            found = await eventually(rows.replies, lambda found: found[-1].held_for_window)
            assert (found[-1].status, found[-1].receipt) == (OutboxStatus.PENDING, "failed")
            assert [m.type for m in reporter.messages()].count("template") == 1
            sent_before = len(server.sent)
            await asyncio.sleep(IDLE_SECONDS + 1)  # the relay looks again: a held row stays put
            assert len(server.sent) == sent_before, "not resent while the window is closed"
            assert (await rows.replies())[-1].held_for_window
            assert await rows.blocked() == set(), "a closed window is not a block"
            await reporter.text("hello")  # they answer: the window opens, the reply follows
            await reporter.wait_for(says("Please call us back."), 0)
            await eventually(rows.replies, lambda found: found[-1].status == OutboxStatus.SENT)

            # Accepted, then reported failed because the worker blocked the bot (131026).
            server.fail_after_send(131026, recipient=LISTENER)
            await broadcast(env, listener, "The office is closed on Friday.", tmp_path)
            await statuses(bot, server.pending_statuses.pop())
            assert await eventually(rows.blocked, lambda ids: listener_id in ids) == {listener_id}
            late = (await rows.deliveries())[-1]
            assert (late.status, late.receipt) == (DeliveryStatus.BLOCKED, "failed")
            server.fail_after_send(131026, recipient=REPORTER)
            await staff_reply(env, reporter, "Your employer agreed to pay.")
            await statuses(bot, server.pending_statuses.pop())
            assert reporter_id in await eventually(rows.blocked, lambda ids: reporter_id in ids)
            assert (await rows.replies())[-1].status == OutboxStatus.UNREACHABLE
            assert await rows.unreachable_events() == 1, "staff are told of the case message"
        finally:
            await database.dispose()

        wamids = [message.wamid for message in server.sent]
        numbers = [REPORTER, LISTENER]
        needles = [
            *numbers,
            *(f"+{number}" for number in numbers),
            *(hashlib.sha256(number.encode()).hexdigest() for number in numbers),
            *wamids,
        ]
        dump = await database_dump(backend, bot)
        assert str(sent.external_ref).encode() in dump, "the dump holds the rows searched"
        assert leaks(dump, needles) == []
        assert leaks(await redis_dump(backend), needles) == []
        logs = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
        assert "delivery receipts:" in logs, "the receipts were logged (the search saw them)"
        assert leaks(logs.encode(), needles) == []

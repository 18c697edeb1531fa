"""Messages to a WhatsApp worker whose 24-hour window is closed: held, not failed; the neutral
template asks them to write once however many wait; their next message releases what waits.
The real outbox relay and services on both databases (and the window store in memory or on the
real Redis), with an in-process sender that refuses like WhatsApp does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update

from bot.app import App, open_app, redis_key_names
from bot.channels.outbox_relay import OutboxRelay
from bot.channels.sending import Rejected, RetryAfter, WindowClosed
from conversations.messages import Outbound
from conversations.ports import WorkerRef
from domain.history import CaseAction
from domain.parties import Side
from services.delivery_receipts import DeliveryReceipts, Receipt, Undelivered
from services.doctor import read_configuration
from services.window_hold import HELD_REASON, WindowHold
from storage.models import CaseEvent, OutboxMessage, utc_now
from storage.whatsapp_window import MemoryWhatsAppWindow, RedisWhatsAppWindow, WhatsAppWindow
from tests.case_factory import insert_case
from tests.conftest import Backend

ADDRESS = "66811111111"
PSEUDONYM = "pseudonym-of-a-whatsapp-worker"
REFERENCE = "K7M3-9Q2X"


@dataclass
class WhatsAppLikeSender:
    """Sends like WhatsApp: only within the worker's window (``WindowClosed`` otherwise); the
    template may go any time. ``on_template`` runs while the template goes."""

    window: WhatsAppWindow
    channel: str = "whatsapp"
    ids_are_refs: bool = True  # its ids are what a delivery receipt names the message by
    sent: list[tuple[str, str]] = field(default_factory=list)
    templates: list[tuple[str, str]] = field(default_factory=list)
    template_failure: Exception | None = None
    on_template: object = None

    async def send(self, address: str, message: Outbound) -> list[str]:
        if not await self.window.is_open(address):
            raise WindowClosed("the worker's 24-hour window is closed")
        self.sent.append((address, message.text))
        return [f"token-{len(self.sent)}"]

    async def send_window_opener(self, address: str, language: str) -> list[str]:
        if self.template_failure is not None:
            raise self.template_failure
        self.templates.append((address, language))
        if callable(self.on_template):
            await self.on_template()
        return ["template-token"]


@dataclass
class World:
    app: App
    window: WhatsAppWindow
    sender: WhatsAppLikeSender
    relay: OutboxRelay
    hold: WindowHold
    woken: list[bool]

    async def rows(self) -> list[OutboxMessage]:
        async with self.app.database.sessions() as session:
            return list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.recipient == Side.WORKER)
                    .order_by(OutboxMessage.id)
                )
            )

    async def worker_writes(self) -> int:
        """What the channel does with each message of the worker (bot/app.py wires it)."""
        if await self.window.wrote(ADDRESS, time.time()):
            return await self.hold.release(PSEUDONYM, "whatsapp")
        return 0


@asynccontextmanager
async def world(backend: Backend) -> AsyncIterator[World]:
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        names = redis_key_names(app.settings, app.keys)
        window: WhatsAppWindow = (
            RedisWhatsAppWindow(app.redis, names) if app.redis else MemoryWhatsAppWindow(names)
        )
        await app.profiles.save(WorkerRef(PSEUDONYM, "whatsapp", ADDRESS), "th")
        await insert_case(app.database, PSEUDONYM, REFERENCE, app.keyring)
        sender = WhatsAppLikeSender(window)
        relay = OutboxRelay(app.database, app.keyring, {"whatsapp": sender}, window=window)
        woken: list[bool] = []
        hold = WindowHold(app.database, lambda: woken.append(True))
        yield World(app, window, sender, relay, hold, woken)


async def test_a_reply_after_the_window_waits_for_the_worker_and_one_template_asks(
    backend: Backend,
) -> None:
    async with world(backend) as w:
        await w.app.casework.reply("cli:test", REFERENCE, "We spoke to the manager")
        await w.app.casework.reply("cli:test", REFERENCE, "Your pay comes on Friday")

        assert await w.relay.run_once() == 2
        assert w.sender.sent == [], "nothing free-form outside the window"
        assert w.sender.templates == [(ADDRESS, "th")], "one template, in the worker's language"
        rows = await w.rows()
        assert [(r.status, r.held_for_window, r.attempts) for r in rows] == [
            ("pending", True, 0),
            ("pending", True, 0),
        ]
        assert {r.last_error for r in rows} == {HELD_REASON}
        assert await w.relay.run_once() == 0, "a held message is not due"

        listed = await w.app.stuck_messages().list_messages("cli:test")
        assert [(m.status, m.held_for_window, m.next_attempt_at) for m in listed] == [
            ("pending", True, None),
            ("pending", True, None),
        ]
        assert {m.last_error for m in listed} == {HELD_REASON}
        async with w.app.database.transaction() as session:  # held for days: still not stuck
            await session.execute(
                update(OutboxMessage).values(next_attempt_at=utc_now() - timedelta(days=3))
            )
        config = await read_configuration(w.app.database.sessions)
        assert config.overdue_messages == 0

        assert await w.worker_writes() == 2
        assert w.woken == [True], "the relay is woken"
        assert await w.worker_writes() == 0, "once released, a further message releases nothing"
        assert await w.relay.run_once() == 2
        assert [text.rsplit("\n", 1)[-1] for _, text in w.sender.sent] == [
            "We spoke to the manager", "Your pay comes on Friday",
        ]  # fmt: skip
        assert w.sender.templates == [(ADDRESS, "th")]
        rows = await w.rows()
        assert [(r.status, r.held_for_window, r.attempts) for r in rows] == [
            ("sent", False, 1),
            ("sent", False, 1),
        ]
        async with w.app.database.sessions() as session:
            staff = list(
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.recipient == Side.STAFF)
                )
            )
            unreachable = await session.scalar(
                select(CaseEvent).where(CaseEvent.action == CaseAction.WORKER_UNREACHABLE)
            )
        assert staff == [], "staff are not told it failed: it did not"
        assert unreachable is None


async def test_a_new_closed_window_gets_a_new_template(backend: Backend) -> None:
    async with world(backend) as w:
        await w.app.casework.reply("cli:test", REFERENCE, "First")
        await w.relay.run_once()
        await w.worker_writes()
        await w.relay.run_once()
        assert len(w.sender.sent) == 1
        await w.window.closed(ADDRESS)  # a day passes (or Meta says 131047)
        await w.app.casework.reply("cli:test", REFERENCE, "Second")
        await w.relay.run_once()
        assert len(w.sender.templates) == 2


async def test_a_refused_template_still_holds_and_the_next_message_tries_again(
    backend: Backend,
) -> None:
    async with world(backend) as w:
        w.sender.template_failure = Rejected("no WhatsApp template configured")
        await w.app.casework.reply("cli:test", REFERENCE, "First")
        await w.relay.run_once()
        [row] = await w.rows()
        assert (row.status, row.held_for_window) == ("pending", True)
        assert row.last_error is not None
        assert row.last_error.startswith(HELD_REASON)
        assert "no WhatsApp template configured" in row.last_error

        w.sender.template_failure = None  # staff configured one
        await w.app.casework.reply("cli:test", REFERENCE, "Second")
        await w.relay.run_once()
        assert w.sender.templates == [(ADDRESS, "th")]


async def test_a_template_that_must_wait_leaves_the_message_due_later_unheld(
    backend: Backend,
) -> None:
    async with world(backend) as w:
        w.sender.template_failure = RetryAfter(30, chat_only=True)
        await w.app.casework.reply("cli:test", REFERENCE, "First")
        await w.relay.run_once()
        [row] = await w.rows()
        assert (row.status, row.held_for_window, row.attempts) == ("pending", False, 0)
        assert row.next_attempt_at > utc_now() + timedelta(seconds=20)
        w.sender.template_failure = None
        async with w.app.database.transaction() as session:
            await session.execute(update(OutboxMessage).values(next_attempt_at=utc_now()))
        await w.relay.run_once()
        assert w.sender.templates == [(ADDRESS, "th")], "the template is tried again"


async def test_a_worker_writing_while_their_message_is_being_held_gets_it(
    backend: Backend,
) -> None:
    """The release runs before the hold is recorded: the relay sees the window open again."""
    async with world(backend) as w:
        released: list[int] = []

        async def the_worker_writes_now() -> None:
            released.append(await w.worker_writes())

        w.sender.on_template = the_worker_writes_now
        await w.app.casework.reply("cli:test", REFERENCE, "Your pay comes on Friday")
        await w.relay.run_once()  # the pass goes on to what is due: the message, released
        assert released == [0], "nothing was held yet when they wrote"
        [row] = await w.rows()
        assert (row.status, row.held_for_window) == ("sent", False)
        [(_, text)] = w.sender.sent
        assert text.endswith("Your pay comes on Friday")


async def test_a_window_closed_reported_after_sending_takes_the_window_path(
    backend: Backend,
) -> None:
    """Meta accepted the message (the store thought the window open), then reported 131047 in a
    status callback: the message is asked for by the template and held, like one refused."""
    async with world(backend) as w:
        await w.window.wrote(ADDRESS, time.time())
        await w.app.casework.reply("cli:test", REFERENCE, "Your pay comes on Friday")
        await w.relay.run_once()
        [row] = await w.rows()
        assert (row.status, row.external_ref) == ("sent", "token-1")
        receipts = DeliveryReceipts(
            w.app.database, w.app.outbox, lambda code: Undelivered.WINDOW_CLOSED
        )
        await receipts.record([Receipt("token-1", "failed", (131047,))])

        assert await w.relay.run_once() == 1
        assert w.sender.templates == [(ADDRESS, "th")], "the store's open window is forgotten"
        [row] = await w.rows()
        assert (row.status, row.held_for_window, row.last_error) == ("pending", True, HELD_REASON)
        assert await w.worker_writes() == 1
        await w.relay.run_once()
        assert len(w.sender.sent) == 2, "sent again once the worker wrote"
        [row] = await w.rows()
        assert (row.status, row.external_ref) == ("sent", "token-2")


async def test_held_messages_go_with_forget_purge_and_retention(backend: Backend) -> None:
    async with world(backend) as w:
        await w.app.casework.reply("cli:test", REFERENCE, "Held for the case")
        await w.relay.run_once()
        assert len(await w.rows()) == 1
        await w.app.retention.purge("cli:test", REFERENCE)
        assert await w.rows() == [], "a case purge deletes its held messages"

        async with w.app.database.transaction() as session:  # a message without a case
            await w.app.outbox.to_worker(session, await _worker_id(w), Outbound("a question"))
        await w.relay.run_once()
        [row] = await w.rows()
        assert row.held_for_window
        assert await w.app.retention.delete_stale_held() == 0, "not held long enough yet"
        async with w.app.database.transaction() as session:
            await session.execute(
                update(OutboxMessage).values(created_at=utc_now() - timedelta(days=91))
            )
        assert (await w.app.retention.run()).held_outbox_deleted == 1
        assert await w.rows() == []

        async with w.app.database.transaction() as session:
            await w.app.outbox.to_worker(session, await _worker_id(w), Outbound("another"))
        await w.relay.run_once()
        assert len(await w.rows()) == 1
        await w.app.profiles.forget(PSEUDONYM)
        assert await w.rows() == [], "/forget deletes what waited for the worker"


async def _worker_id(w: World) -> int:
    from storage.models import Worker

    async with w.app.database.sessions() as session:
        found = await session.scalar(select(Worker.id).where(Worker.pseudonym == PSEUDONYM))
    assert found is not None
    return found


async def test_a_worker_whose_ids_change_still_gets_what_was_held(backend: Backend) -> None:
    """Held while known by their phone; they write once Meta shows their user id as well (a new
    pseudonym, the phone's an alias, adopted only in the turn after): the app's own hook
    releases it, and the window opened by the new address covers the stored, older one."""
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        by_phone = WorkerRef("pseudonym-by-phone", "whatsapp", ADDRESS)
        await app.profiles.save(by_phone, "th")
        await insert_case(app.database, by_phone.pseudonym, REFERENCE, app.keyring)
        sender = WhatsAppLikeSender(app.whatsapp_window)
        relay = OutboxRelay(
            app.database, app.keyring, {"whatsapp": sender}, window=app.whatsapp_window
        )
        await app.casework.reply("cli:test", REFERENCE, "Your pay comes on Friday")
        await relay.run_once()
        assert (sender.sent, len(sender.templates)) == ([], 1)

        by_user_id = WorkerRef(
            "pseudonym-by-user-id", "whatsapp", f"{ADDRESS}|TH.1234567",
            previous_pseudonyms=(by_phone.pseudonym,),
        )  # fmt: skip
        app.outbox_wake.clear()
        await app.worker_wrote(by_user_id, time.time())
        assert app.outbox_wake.is_set(), "released, and the relay woken"
        await relay.run_once()
        [(to, text)] = sender.sent
        assert to == ADDRESS, "sent to the address stored, whose window the message opened"
        assert text.endswith("Your pay comes on Friday")
        assert await app.whatsapp_window.is_open("TH.1234567")

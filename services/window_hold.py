"""Messages held for a worker whose messenger window is closed, and their release.

WhatsApp lets the bot message a worker freely only within 24 hours of the worker's last message
(docs/design/whatsapp.md). When a message cannot go for that reason, the relay sends the neutral
template once ("You have a new message. Reply to see it.") and *holds* the message: the outbox
row, or the broadcast delivery, stays ``pending`` with ``held_for_window`` set. No relay claims a
held row and holding spends no attempt; `wvb outbox list` says what it waits for
(``HELD_REASON``). When the worker writes again, the channel calls ``WindowHold.release``: their
held rows are due at once and the outbox relay is woken, so the content follows their answer.

A held row is never kept forever: a case purge deletes its messages (``services/retention.py``),
held messages older than the retention period go with the retention job, /forget deletes the
worker's (``drop_held``), and a held broadcast delivery is given up after
``BROADCAST_HOLD_DAYS`` (``services/broadcasts.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Update, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statuses import DeliveryStatus, OutboxStatus
from storage.database import Database
from storage.models import BroadcastDelivery, OutboxMessage, Worker, utc_now

#: What `wvb outbox list` and `wvb broadcast status` say of a held message.
HELD_REASON = "waiting for the worker to write (WhatsApp 24-hour window)"
#: The ``last_error`` of a message the messenger accepted and then reported undelivered because
#: the window was closed after all (131047 in a status callback,
#: ``services/delivery_receipts.py``): due again, it takes the window path as if refused at once
#: (the relay forgets the window, the template asks once, the message is held).
CLOSED_AFTER_SENDING = (
    "the worker's 24-hour window was closed (reported after sending): the template asks them "
    "to write"
)
#: A broadcast delivery held this long (the worker never wrote) is given up as skipped: news
#: older than a week is rarely news, and the broadcast can finish.
BROADCAST_HOLD_DAYS = 7
BROADCAST_HOLD = timedelta(days=BROADCAST_HOLD_DAYS)


def release_outbox(worker_id: int, channel: str) -> Update:
    """The statement making a worker's held outbox messages on ``channel`` due now."""
    return (
        update(OutboxMessage)
        .where(OutboxMessage.worker_id == worker_id, OutboxMessage.channel == channel)
        .where(OutboxMessage.held_for_window.is_(True))
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .values(held_for_window=False, next_attempt_at=utc_now(), last_error=None)
    )


def release_deliveries(worker_id: int, channel: str) -> Update:
    """The statement making a worker's held broadcast deliveries on ``channel`` due now."""
    return (
        update(BroadcastDelivery)
        .where(BroadcastDelivery.worker_id == worker_id, BroadcastDelivery.channel == channel)
        .where(BroadcastDelivery.held_for_window.is_(True))
        .where(BroadcastDelivery.status == DeliveryStatus.PENDING)
        .values(held_for_window=False, next_attempt_at=utc_now(), last_error=None, claim=None)
    )


async def drop_held(session: AsyncSession, worker_id: int) -> None:
    """The worker is using /forget (in that transaction): what waits for them goes to nobody.
    Their held messages are deleted (a staff reply stays in its case, readable with /status and
    the receipt code), their held broadcast deliveries fail as any to a forgotten worker do."""
    await session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.worker_id == worker_id)
        .where(OutboxMessage.held_for_window.is_(True))
    )
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.worker_id == worker_id)
        .where(BroadcastDelivery.held_for_window.is_(True))
        .where(BroadcastDelivery.status == DeliveryStatus.PENDING)
        .values(
            held_for_window=False,
            status=DeliveryStatus.FAILED,
            last_error="the worker used /forget",
            claim=None,
        )
    )


class WindowHold:
    def __init__(self, database: Database, wake: Callable[[], None] | None = None) -> None:
        """``wake``: tells the outbox relay to look now (the broadcast relay looks every
        second by itself)."""
        self.database = database
        self._wake = wake or (lambda: None)

    async def release(self, pseudonym: str, channel: str, previous: Sequence[str] = ()) -> int:
        """The worker wrote on ``channel`` and their window is open: what was held for them
        goes now. ``previous``: pseudonyms they may still be stored under (``WorkerRef.
        previous_pseudonyms``: another of their WhatsApp ids, an old key), since this runs
        before the turn that adopts them. Returns how many messages and broadcast deliveries
        were released."""
        known_as = [pseudonym, *previous]
        async with self.database.sessions() as session:
            rows = await session.execute(
                select(Worker.pseudonym, Worker.id).where(Worker.pseudonym.in_(known_as))
            )
            found = {name: worker_id for name, worker_id in rows}
        worker_id = next((found[name] for name in known_as if name in found), None)
        if worker_id is None:
            return 0  # not onboarded yet: nothing can wait for them
        async with self.database.transaction() as session:
            messages = await session.execute(release_outbox(worker_id, channel))
            deliveries = await session.execute(release_deliveries(worker_id, channel))
        released_messages = int(getattr(messages, "rowcount", 0) or 0)
        if released_messages:
            self._wake()
        return released_messages + int(getattr(deliveries, "rowcount", 0) or 0)

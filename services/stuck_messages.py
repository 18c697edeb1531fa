"""Messages that wait or failed in the outbox, as staff see them, and putting failed ones back.

`wvb outbox list` and `wvb outbox retry` are thin callers of this. A view names the case, the
kind of message and where it stands, never what it says or to whom: the content stays
encrypted, and the worker is not named even by their database id.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select, update

from domain.errors import NotFound, Refusal
from domain.parties import Side
from domain.statuses import OutboxStatus
from services import audit
from services.access import ActorLike, require
from services.outbox import NO_CHANNEL
from services.views import QueuedMessageView
from services.window_hold import HELD_REASON
from storage.database import Database
from storage.models import Case, OutboxMessage, utc_now

#: What `wvb outbox list` shows unless asked for one status: everything not sent.
STUCK_STATUSES = (OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.UNREACHABLE)


class MessageKind(StrEnum):
    """What a queued message is, by who receives it (its content is not read)."""

    STAFF_ALERT = "staff_alert"
    WORKER_MESSAGE = "worker_message"


_KINDS: dict[str, MessageKind] = {
    Side.STAFF: MessageKind.STAFF_ALERT,
    Side.WORKER: MessageKind.WORKER_MESSAGE,
}


class StuckMessages:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def list_messages(
        self, actor: ActorLike, status: str | None = None
    ) -> list[QueuedMessageView]:
        """Messages not sent (or only those in ``status``), oldest first. Audited like
        ``cases list``: the view names case references."""
        actor = await require(self.database, actor, "staff.manage", "outbox.list")
        if status is not None and status not in STUCK_STATUSES:
            raise Refusal(
                "status", f"unknown status {status!r}; use one of: {', '.join(STUCK_STATUSES)}"
            )
        wanted = [status] if status is not None else list(STUCK_STATUSES)
        async with self.database.transaction() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage, Case.reference)
                    .outerjoin(Case, Case.id == OutboxMessage.case_id)
                    .where(OutboxMessage.status.in_(wanted))
                    .order_by(OutboxMessage.id)
                )
            ).all()
            audit.record(session, actor, "outbox.list", None, status=status, count=len(rows))
        return [
            QueuedMessageView(
                id=row.id,
                reference=reference,
                kind=_KINDS.get(row.recipient, MessageKind.WORKER_MESSAGE),
                channel=None if row.channel == NO_CHANNEL else row.channel,
                status=row.status,
                attempts=row.attempts,
                # What a held message waits for, however it came to be held.
                last_error=row.last_error or (HELD_REASON if row.held_for_window else None),
                created_at=row.created_at,
                # Only a pending message has a next attempt; the relay leaves the others be, and
                # a held one goes when the worker writes, not at a time.
                next_attempt_at=(
                    row.next_attempt_at
                    if row.status == OutboxStatus.PENDING and not row.held_for_window
                    else None
                ),
                held_for_window=row.held_for_window,
            )
            for row, reference in rows
        ]

    async def retry(self, actor: ActorLike, message_id: int | None = None) -> list[int]:
        """Put failed messages (all, or the one ``message_id``) back in the queue, due now,
        with a fresh allowance of attempts: a message that failed for good has spent them all,
        and one retry would fail it again at once. Returns the ids put back."""
        actor = await require(self.database, actor, "staff.manage", "outbox.retry")
        async with self.database.transaction() as session:
            if message_id is not None:
                found = await session.get(OutboxMessage, message_id)
                if found is None:
                    raise NotFound("id", f"no queued message {message_id}")
                if found.status != OutboxStatus.FAILED:
                    raise Refusal(
                        None,
                        f"message {message_id} is {found.status}, not failed; "
                        "only failed messages are retried",
                    )
            query = select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.FAILED)
            if message_id is not None:
                query = query.where(OutboxMessage.id == message_id)
            ids = list((await session.scalars(query.order_by(OutboxMessage.id))).all())
            if ids:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids))
                    .where(OutboxMessage.status == OutboxStatus.FAILED)
                    .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=utc_now())
                )
            audit.record(session, actor, "outbox.retry", None, ids=ids, count=len(ids))
        return ids

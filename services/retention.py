"""Retention: the content of a case that ended is deleted after ``WVB_RETENTION_DAYS``, at once
when staff purge it (`wvb cases purge`) or when the worker withdraws it; sent outbox rows go after
a few days, and messages held for a worker who never wrote again (WhatsApp's 24-hour window)
after the retention period.

What goes: every entry (text and files), the free text of events (notes, reasons, remediation
summaries), the typed workplace and agency, validations, site questions, due tasks and every
outbox row of the case, and the case's link to its reporter. What stays is what the counts need:
reference, status, categories, listed workplace, the answers chosen from buttons, language, the
events without their text, and dates to the day. ``purge_content`` is the one function that does
it, for all three; the scheduled job calls ``RetentionService.run``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.messages import Outbound
from domain.history import CaseAction
from domain.parties import SYSTEM_ACTOR
from domain.statuses import TERMINAL, OutboxStatus
from services import audit
from services.access import ActorLike, require
from services.outbox import Outbox
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    CaseTask,
    OutboxMessage,
    RetentionDay,
    SiteQuestion,
    Validation,
    utc_now,
)
from storage.repositories import CaseRepository

log = logging.getLogger(__name__)

#: Sent outbox rows are kept this long (for `wvb outbox list` and failure reports), then deleted.
SENT_OUTBOX_KEEP = timedelta(days=7)
#: Staff are warned this long before a case's content goes.
WARNING_AHEAD = timedelta(days=7)
#: The actor of the scheduled deletion in case histories and the audit log.
RETENTION_ACTOR = f"{SYSTEM_ACTOR}:retention"
_ENDED = sorted(TERMINAL)

Clock = Callable[[], datetime]


def to_the_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class PurgeResult:
    """What one purge deleted (zero everywhere when the case was purged before)."""

    reference: str
    status: str
    purged_at: datetime
    entries: int
    files: int
    validations: int
    outbox: int


async def purge_content(
    session: AsyncSession, case: Case, actor: ActorLike, now: datetime
) -> PurgeResult:
    """Delete a case's content, keep what the counts need, record it in the case history.
    ``case`` should be locked by the caller's transaction."""
    case_id = case.id
    entries = (
        await session.execute(select(CaseEntry.kind).where(CaseEntry.case_id == case_id))
    ).scalars().all()  # fmt: skip
    counts = {}
    for model in (CaseEntry, Validation, SiteQuestion, CaseTask, OutboxMessage):
        result = await session.execute(delete(model).where(model.case_id == case_id))
        counts[model] = int(getattr(result, "rowcount", 0) or 0)
    events = (
        await session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id))
    ).scalars()
    for event in events:
        event.note_ciphertext = None
        event.at = to_the_day(event.at)
    case.workplace_other_ciphertext = None
    case.agency_ciphertext = None
    # Nothing links the worker to what is left (services/reporters.py).
    case.reporter_tag, case.reporter_ciphertext = None, None
    case.created_at = to_the_day(case.created_at)
    case.acknowledge_due_at = to_the_day(case.acknowledge_due_at)
    case.response_due_at = to_the_day(case.response_due_at)
    if case.ended_at is not None:
        case.ended_at = to_the_day(case.ended_at)
    case.purged_at = to_the_day(now)
    session.add(CaseEvent(case_id=case_id, actor=str(actor), action=CaseAction.CONTENT_PURGED,
                          at=to_the_day(now)))  # fmt: skip
    await session.flush()
    return PurgeResult(
        reference=case.reference,
        status=case.status,
        purged_at=case.purged_at,
        entries=len(entries),
        files=sum(1 for kind in entries if kind != "text"),
        validations=counts[Validation],
        outbox=counts[OutboxMessage],
    )


@dataclass(frozen=True)
class RetentionPolicy:
    retention_days: int = 90

    @property
    def keep(self) -> timedelta:
        return timedelta(days=self.retention_days)


@dataclass(frozen=True)
class RetentionRun:
    purged: list[str]
    sent_outbox_deleted: int
    warned: int | None  # None: today's warning was already sent (here or by another process)
    held_outbox_deleted: int = 0  # held for a worker who never wrote again, for the whole period


class RetentionService:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        policy: RetentionPolicy | None = None,
        now: Clock = utc_now,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.policy = policy or RetentionPolicy()
        self.now = now

    async def purge(self, actor: ActorLike, reference: str) -> PurgeResult:
        """Staff delete one case's content now (audited). A case purged before stays so."""
        actor = await require(self.database, actor, "staff.manage", "case.purge")
        async with self.database.transaction() as session:
            case = await CaseRepository(session).named(reference, lock=True)
            if case.purged_at is not None:
                return PurgeResult(case.reference, case.status, case.purged_at, 0, 0, 0, 0)
            result = await purge_content(session, case, actor, self.now())
            audit.record(session, actor, "case.purge", case.reference,
                         entries=result.entries, files=result.files)  # fmt: skip
            return result

    async def run(self) -> RetentionRun:
        """The scheduled job: purge what is due, drop old sent outbox rows, warn staff once a
        day of what goes within the next week."""
        purged = await self.purge_due()
        sent = await self.delete_sent_outbox()
        held = await self.delete_stale_held()
        warned = await self.warn_daily()
        if purged or sent or held:
            log.info("retention: %d case(s) purged, %d sent and %d long-held outbox row(s) "
                     "deleted", len(purged), sent, held)  # fmt: skip
        return RetentionRun(purged, sent, warned, held)

    async def purge_due(self) -> list[str]:
        now = self.now()
        cutoff = now - self.policy.keep
        async with self.database.sessions() as session:
            due = (
                await session.execute(
                    select(Case.id)
                    .where(Case.status.in_(_ENDED), Case.purged_at.is_(None))
                    .where(Case.ended_at <= cutoff)
                    .order_by(Case.id)
                )
            ).scalars().all()  # fmt: skip
        purged = []
        for case_id in due:  # one transaction a case: a failure leaves the others done
            async with self.database.transaction() as session:
                case = await session.scalar(
                    select(Case).where(Case.id == case_id, Case.purged_at.is_(None))
                    .with_for_update()
                )  # fmt: skip
                if case is None:
                    continue  # another process purged it a moment ago
                result = await purge_content(session, case, RETENTION_ACTOR, now)
                audit.record(session, RETENTION_ACTOR, "case.purge", case.reference,
                             entries=result.entries, files=result.files,
                             retention_days=self.policy.retention_days)  # fmt: skip
                purged.append(case.reference)
        return purged

    async def delete_sent_outbox(self) -> int:
        async with self.database.transaction() as session:
            result = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.status == OutboxStatus.SENT,
                    OutboxMessage.sent_at < self.now() - SENT_OUTBOX_KEEP,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_stale_held(self) -> int:
        """Messages held for a worker who has not written for the whole retention period
        (WhatsApp's 24-hour window, ``services/window_hold.py``): nobody will read them now.
        A staff reply among them stays in its case."""
        async with self.database.transaction() as session:
            result = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.held_for_window.is_(True),
                    OutboxMessage.created_at < self.now() - self.policy.keep,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def warn_daily(self) -> int | None:
        """Once per UTC day, tell staff (reference, status and dates only) which cases lose
        their content within ``WARNING_AHEAD``. None when today's warning was already done."""
        now = self.now()
        day = now.date().isoformat()
        keep = self.policy.keep
        try:
            async with self.database.transaction() as session:
                soon = (
                    await session.execute(
                        select(Case.reference, Case.status, Case.ended_at)
                        .where(Case.status.in_(_ENDED), Case.purged_at.is_(None))
                        .where(Case.ended_at <= now + WARNING_AHEAD - keep)
                        .order_by(Case.ended_at, Case.id)
                    )
                ).all()  # fmt: skip
                session.add(RetentionDay(day=day, at=now, warned=len(soon)))
                await session.flush()  # the primary key says whether today was done already
                if soon:
                    lines = [
                        f"{reference} ({status}, ended {ended:%Y-%m-%d}): content deleted on "
                        f"or after {max(ended + keep, now):%Y-%m-%d}"
                        for reference, status, ended in soon
                        if ended is not None  # always, by the query; said for the type
                    ]
                    self.outbox.to_staff(session, Outbound(
                        f"Retention on {day}: the content of these ended cases will be deleted "
                        f"({self.policy.retention_days} days after they ended). Export what you "
                        "must keep first (wvb cases show REFERENCE --export-files DIR).\n"
                        + "\n".join(lines)
                    ))  # fmt: skip
        except IntegrityError:
            return None
        if soon:
            self.outbox.wake()
        return len(soon)

"""The case clock: reminders, overdue flags (a validation unanswered, an urgent case not
acknowledged within WVB_URGENT_ACKNOWLEDGE_HOURS), retaliation check-ins and the daily escalation.

Due work is rows (``case_tasks``, ``escalation_days``). Each task is taken by a compare-and-set on
``done_at`` in the same transaction that queues its messages in the outbox, so a task is done
exactly once however many bot processes run, and a task that fell due while the bot was down is
done when it comes back. Nothing here ever closes a case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import notices
from conversations.messages import Outbound
from domain.history import CaseAction, TaskKind
from domain.parties import SYSTEM_ACTOR
from domain.statuses import UNRESOLVED, CaseStatus
from services.outbox import Outbox
from storage.database import Database
from storage.models import Case, CaseEvent, CaseTask, EscalationDay, utc_now

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class CaseClock:
    def __init__(self, database: Database, outbox: Outbox, now: Clock = utc_now) -> None:
        self.database = database
        self.outbox = outbox
        self.now = now

    async def run_due(self, limit: int = 500) -> int:
        """Do every task that is due; return how many were done."""
        done = attempts = 0
        while attempts < limit and (outcome := await self._do_next()) is not None:
            attempts += 1
            done += outcome  # False: another process took that task first
        if done:
            self.outbox.wake()
        return done

    async def _do_next(self) -> bool | None:
        """True: did a task. False: lost a task to another process. None: nothing is due."""
        now = self.now()
        async with self.database.transaction() as session:
            task = await session.scalar(
                select(CaseTask)
                .where(CaseTask.done_at.is_(None), CaseTask.due_at <= now)
                .order_by(CaseTask.due_at, CaseTask.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if task is None:
                return None
            taken = await session.execute(
                update(CaseTask)
                .where(CaseTask.id == task.id, CaseTask.done_at.is_(None))
                .values(done_at=now)
            )
            if getattr(taken, "rowcount", 0) != 1:
                return False  # another process took it a moment ago; look again
            case = await session.get(Case, task.case_id)
            assert case is not None
            task.outcome = await self._perform(session, task, case)
        log.info("case task %s done: %s", task.kind, task.outcome)
        return True

    async def _perform(self, session: AsyncSession, task: CaseTask, case: Case) -> str:
        if task.kind in (TaskKind.VALIDATION_REMINDER, TaskKind.VALIDATION_OVERDUE):
            if case.status != CaseStatus.AWAITING_VALIDATION or case.validation_round != task.round:
                return "no_longer_due"
            if task.kind == TaskKind.VALIDATION_REMINDER:
                reminder = notices.validation_reminder(case.language, case.reference)
                await self.outbox.to_reporter(session, case, reminder)
                return "reminded"
            session.add(CaseEvent(case_id=case.id, actor=SYSTEM_ACTOR,
                                  action=CaseAction.VALIDATION_OVERDUE))  # fmt: skip
            self.outbox.to_staff(session, Outbound(
                f"Case {case.reference}: the worker has not answered whether the remediation "
                "really happened (validation overdue). The case stays open; it never closes "
                f"by itself. See: wvb cases show {case.reference}"
            ), case_id=case.id)  # fmt: skip
            return "flagged"
        if task.kind == TaskKind.ACKNOWLEDGE_OVERDUE:
            if case.status != CaseStatus.RECEIVED:
                return "no_longer_due"  # acknowledged (or further on, or withdrawn) in time
            session.add(CaseEvent(case_id=case.id, actor=SYSTEM_ACTOR,
                                  action=CaseAction.ACKNOWLEDGE_OVERDUE))  # fmt: skip
            hours = round((case.acknowledge_due_at - case.created_at) / timedelta(hours=1))
            self.outbox.to_staff(session, Outbound(
                f"URGENT case {case.reference}: not acknowledged within {hours} hours "
                "(acknowledgement overdue). The worker was told to expect it. Acknowledge it "
                f"with: wvb cases acknowledge {case.reference}"
            ), case_id=case.id)  # fmt: skip
            return "flagged"
        if task.kind == TaskKind.RETALIATION_CHECKIN:
            if case.status != CaseStatus.CLOSED:
                return "no_longer_due"
            checkin = notices.retaliation_checkin(case.language, case.reference)
            await self.outbox.to_reporter(session, case, checkin)
            return "asked"
        return "unknown_kind"

    async def escalate_daily(self) -> int | None:
        """Once per UTC day, tell staff which cases are past their clocks. Returns how many were
        escalated, or None when today's escalation was already done (here or elsewhere)."""
        now = self.now()
        day = now.date().isoformat()
        try:
            async with self.database.transaction() as session:
                overdue = (
                    await session.execute(
                        select(Case.reference, Case.status, Case.acknowledge_due_at,
                               Case.response_due_at)
                        .where(Case.status.in_(sorted(UNRESOLVED)))
                        .order_by(Case.id)
                    )
                ).all()  # fmt: skip
                received = CaseStatus.RECEIVED
                lines = [
                    f"{ref} ({status}): "
                    + ("acknowledgement" if status == received and ack < now else "response")
                    + " overdue"
                    for ref, status, ack, respond in overdue
                    if (status == received and ack < now) or respond < now
                ]
                session.add(EscalationDay(day=day, at=now, overdue=len(lines)))
                await session.flush()  # the primary key says whether today was done already
                if lines:
                    self.outbox.to_staff(
                        session, Outbound(f"Overdue cases on {day}:\n" + "\n".join(lines))
                    )
        except IntegrityError:
            return None
        if lines:
            self.outbox.wake()
        return len(lines)

"""Casework: staff acknowledge, note, follow up and record remediation; workers answer follow-ups
and say whether the fix really happened. Every move goes through ``services.lifecycle`` and is a
case event; every staff action is audited; every message to the worker goes through the outbox.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import notices
from conversations.messages import FetchMedia, Outbound
from conversations.ports import (
    EvidenceOutcome,
    ValidationAnswer,
    WorkerRef,
)
from domain.answers import YES_NO, Answer
from domain.categories import Affected, Category, Confidentiality, Occurred
from domain.errors import Refusal
from domain.history import CaseAction, TaskKind, retaliation_action, validation_action
from domain.parties import SYSTEM_ACTOR, WORKER_ACTOR, Respondent, Side
from domain.references import new_reference
from domain.statuses import TERMINAL, CaseStatus
from locales import LANGUAGES
from media.sandbox import CleaningSandbox
from services import audit, lifecycle
from services.access import ActorLike, require_case_access
from services.cases import (
    CasePolicy,
    case_purpose,
    entry_purpose,
    schedule_acknowledge_overdue,
    set_case_clocks,
)
from services.evidence import fetch_and_clean
from services.outbox import Outbox
from services.quotas import WorkerQuotas
from services.reporters import reported_by, reporter_id, seal_reporter
from storage.codes import hash_receipt
from storage.crypto import Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    CaseTask,
    SitePanelMember,
    SiteQuestion,
    StaffMember,
    Validation,
    Worker,
    Workplace,
    utc_hour,
    utc_now,
)
from storage.repositories import CaseRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockPolicy:
    reminder_days: tuple[int, ...] = (2, 5)
    overdue_days: int = 10
    retaliation_checkin_days: int = 30


@dataclass(frozen=True)
class Remediation:
    summary: str
    translations: dict[str, str]  # language -> the summary in that language


class CaseworkService:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        outbox: Outbox,
        clock_policy: ClockPolicy | None = None,
        quotas: WorkerQuotas | None = None,
        *,
        sandbox: CleaningSandbox | None = None,
        case_policy: CasePolicy | None = None,
    ) -> None:
        self.database = database
        self.keyring = keyring
        self.outbox = outbox
        self.clock_policy = clock_policy or ClockPolicy()
        self.case_policy = case_policy or CasePolicy()  # the targets of a case opened here
        self.quotas = quotas  # the daily evidence bytes are shared with report files
        self.sandbox = sandbox

    def _schedule(
        self, session: AsyncSession, case: Case, kind: TaskKind, days: int, n: int
    ) -> None:
        # Due to the hour: a check-in's exact time would say when the worker answered.
        session.add(CaseTask(
            key=f"{case.id}:{kind}:{case.validation_round}:{n}", case_id=case.id, kind=kind,
            round=case.validation_round, due_at=utc_hour() + timedelta(days=days),
        ))  # fmt: skip

    # -- shared ------------------------------------------------------------------------------

    async def _case(self, session: AsyncSession, reference: str) -> Case:
        """The case staff named, held until the transaction ends; refused if there is none."""
        return await CaseRepository(session).named(reference, lock=True)

    def _event(
        self,
        session: AsyncSession,
        case: Case,
        actor: ActorLike,
        action: str,
        new_status: CaseStatus | None = None,
        note: str | None = None,
    ) -> None:
        session.add(
            CaseEvent(
                case_id=case.id,
                actor=str(actor),
                action=action,
                from_status=case.status if new_status else None,
                to_status=new_status,
                note_ciphertext=(
                    self.keyring.encrypt(note.encode(), case_purpose(case.reference, "event"))
                    if note
                    else None
                ),
            )
        )
        if new_status:
            case.status = new_status
            if new_status in TERMINAL:
                case.ended_at = utc_now()  # the retention clock starts

    def _text_entry(self, case: Case, author: Side, text: str) -> CaseEntry:
        purpose = entry_purpose(case.reference, case.id, author, "text")
        return CaseEntry(
            case_id=case.id,
            author=author,
            kind="text",
            ciphertext=self.keyring.encrypt(text.encode(), purpose),
        )

    async def _to_worker(self, session: AsyncSession, case: Case, message: Outbound) -> None:
        await self.outbox.to_reporter(session, case, message)

    # -- staff -------------------------------------------------------------------------------

    async def acknowledge(self, actor: ActorLike, reference: str) -> str:
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.acknowledge"
        )
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            new_status = lifecycle.staff_sets(case.status, CaseStatus.ACKNOWLEDGED)
            self._event(session, case, actor, CaseAction.ACKNOWLEDGED, new_status)
            await self._to_worker(
                session, case, notices.acknowledgement(case.language, case.reference)
            )
            audit.record(session, actor, "case.acknowledge", case.reference)
            status = case.status
        self.outbox.wake()
        return status

    async def set_status(self, actor: ActorLike, reference: str, status: str) -> str:
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.status"
        )
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            new_status = lifecycle.staff_sets(case.status, status)
            self._event(session, case, actor, CaseAction.STATUS_CHANGED, new_status)
            audit.record(session, actor, "case.status", case.reference, status=status)
            return case.status

    async def assign(self, actor: ActorLike, reference: str, staff_name: str) -> None:
        """Give the case to a staff member (an empty name takes it back)."""
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.assign"
        )
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            name = staff_name.strip() or None
            if name is not None:
                known = await session.scalar(
                    select(StaffMember.id).where(
                        StaffMember.name == name, StaffMember.active.is_(True)
                    )
                )
                if known is None:
                    raise Refusal("assignee", f"no active staff member named {name!r}")
            case.assigned_to = name
            self._event(session, case, actor, CaseAction.ASSIGNED, note=name or "unassigned")
            audit.record(session, actor, "case.assign", case.reference, to=name)

    async def add_note(self, actor: ActorLike, reference: str, text: str) -> None:
        """A staff-only note: never shown to the worker."""
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.note"
        )
        if not text.strip():
            raise Refusal("text", "must not be empty")
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            self._event(session, case, actor, CaseAction.NOTE, note=text)
            audit.record(session, actor, "case.note", case.reference)

    async def reply(self, actor: ActorLike, reference: str, text: str) -> None:
        """An anonymous follow-up message to the worker, who can answer with the button."""
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.reply"
        )
        if not text.strip():
            raise Refusal("text", "must not be empty")
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            if await reporter_id(session, case, self.keyring) is None:
                raise Refusal(
                    None,
                    f"the worker of {case.reference} cannot be reached (they used /forget); "
                    "they can still read staff messages with /status",
                )
            session.add(self._text_entry(case, Side.STAFF, text))
            self._event(session, case, actor, CaseAction.STAFF_MESSAGE)
            await self._to_worker(
                session, case, notices.staff_reply(case.language, case.reference, text)
            )
            audit.record(session, actor, "case.reply", case.reference)
        self.outbox.wake()

    async def remediate(
        self, actor: ActorLike, reference: str, remediation: Remediation, site_sample: int = 0
    ) -> str:
        """Record what the employer or buyer says was done; ask the worker if it is true."""
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.remediate"
        )
        if not remediation.summary.strip():
            raise Refusal("summary", "must not be empty")
        for language in remediation.translations:
            if language not in LANGUAGES:
                raise Refusal(
                    "summary_in", f"unknown language {language!r}; one of {', '.join(LANGUAGES)}"
                )
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            new_status = lifecycle.remediated(case.status)
            case.validation_round += 1
            self._event(
                session, case, actor, CaseAction.REMEDIATION, new_status, note=remediation.summary
            )
            audit.record(session, actor, "case.remediate", case.reference)
            await self._to_worker(session, case, self._validation_prompt(case, remediation))
            policy = self.clock_policy
            for n, days in enumerate(policy.reminder_days, start=1):
                self._schedule(session, case, TaskKind.VALIDATION_REMINDER, days, n)
            self._schedule(session, case, TaskKind.VALIDATION_OVERDUE, policy.overdue_days, 0)
            if site_sample > 0:
                asked = await self._ask_site(session, case, remediation, site_sample)
                audit.record(session, actor, "case.site_validation", case.reference, asked=asked)
            status = case.status
        self.outbox.wake()
        return status

    async def _ask_site(
        self, session: AsyncSession, case: Case, remediation: Remediation, sample: int
    ) -> int:
        """Ask up to ``sample`` other panel workers of the same workplace the same question,
        without the case: their buttons carry a fresh token, the text no reference."""
        if case.workplace_id is None:
            raise Refusal(
                "site_sample", "the case names no listed workplace, so no site sample can be asked"
            )
        reporter = await reporter_id(session, case, self.keyring)
        members = (
            await session.execute(
                select(SitePanelMember.worker_id, Worker.language)
                .join(Worker, Worker.id == SitePanelMember.worker_id)
                .where(SitePanelMember.workplace_id == case.workplace_id)
                .where(SitePanelMember.worker_id != (reporter or -1))
            )
        ).all()
        workplace = await session.scalar(
            select(Workplace.name).where(Workplace.id == case.workplace_id)
        )
        chosen = secrets.SystemRandom().sample(list(members), min(sample, len(members)))
        for worker_id, language in chosen:
            token = secrets.token_urlsafe(12)
            session.add(SiteQuestion(token=token, case_id=case.id, round=case.validation_round,
                                     worker_id=worker_id))  # fmt: skip
            summary = remediation.translations.get(language, remediation.summary)
            question = notices.site_question(language, workplace or "", summary, token)
            await self.outbox.to_worker(session, worker_id, question)
        return len(chosen)

    async def join_site_panel(self, worker: WorkerRef, reference: str) -> bool:
        async with self.database.transaction() as session:
            case = await self._workers_case(session, worker, reference)
            worker_id = await session.scalar(
                select(Worker.id).where(Worker.pseudonym == worker.pseudonym)
            )
            if case is None or case.workplace_id is None or worker_id is None:
                return False
            exists = await session.scalar(select(SitePanelMember.id).where(
                SitePanelMember.worker_id == worker_id,
                SitePanelMember.workplace_id == case.workplace_id,
            ))  # fmt: skip
            if exists is None:
                session.add(SitePanelMember(worker_id=worker_id,
                                            workplace_id=case.workplace_id))  # fmt: skip
            return True

    async def record_site_answer(self, worker: WorkerRef, token: str, answer: Answer) -> bool:
        if answer not in lifecycle.ANSWERS:
            return False
        async with self.database.transaction() as session:
            question = await session.scalar(
                select(SiteQuestion)
                .join(Worker, Worker.id == SiteQuestion.worker_id)
                .where(SiteQuestion.token == token, Worker.pseudonym == worker.pseudonym)
                .where(SiteQuestion.answered_at.is_(None))
            )
            if question is None:
                return False
            question.answered_at = utc_hour()  # when a worker answered: to the hour only
            session.add(Validation(case_id=question.case_id, round=question.round,
                                   respondent=Respondent.SITE, answer=answer))  # fmt: skip
            return True

    @staticmethod
    def _validation_prompt(case: Case, remediation: Remediation) -> Outbound:
        summary = remediation.translations.get(case.language)
        return notices.validation_prompt(
            case.language,
            case.reference,
            remediation.summary if summary is None else summary,
            translated=summary is not None,
        )

    async def close(
        self, actor: ActorLike, reference: str, *, unvalidated: bool, reason: str | None
    ) -> str:
        actor = await require_case_access(
            self.database, actor, "cases.change", reference, "case.close"
        )
        async with self.database.transaction() as session:
            case = await self._case(session, reference)
            if case.status == CaseStatus.CLOSED and not unvalidated:
                return case.status  # the worker already confirmed: nothing left to do
            new_status = lifecycle.staff_closes(case.status, unvalidated=unvalidated, reason=reason)
            self._event(
                session, case, actor, CaseAction.CLOSED_UNVALIDATED, new_status, note=reason
            )
            audit.record(session, actor, "case.close_unvalidated", case.reference)
            return case.status

    # -- workers -----------------------------------------------------------------------------

    async def _workers_case(
        self, session: AsyncSession, worker: WorkerRef, reference: str
    ) -> Case | None:
        """The case, only if this worker reported it (a forwarded button gives nothing away)."""
        return await CaseRepository(session).find(
            reference, where=reported_by(worker.pseudonym, self.keyring), lock=True
        )

    async def awaiting_answer(self, worker: WorkerRef) -> tuple[str, ...]:
        """This worker's cases that wait for their answer about a fix (/forget warns first)."""
        async with self.database.sessions() as session:
            references = await session.scalars(
                select(Case.reference)
                .where(reported_by(worker.pseudonym, self.keyring))
                .where(Case.status == CaseStatus.AWAITING_VALIDATION)
                .order_by(Case.id)
            )
            return tuple(references)

    async def record_validation(
        self, worker: WorkerRef, reference: str, answer: Answer
    ) -> ValidationAnswer:
        async with self.database.transaction() as session:
            case = await self._workers_case(session, worker, reference)
            if case is None or case.status != CaseStatus.AWAITING_VALIDATION:
                return ValidationAnswer.NOT_APPLICABLE
            new_status = lifecycle.validated(case.status, answer)
            session.add(Validation(case_id=case.id, round=case.validation_round,
                                   respondent=Respondent.REPORTER, answer=answer))  # fmt: skip
            await session.flush()  # the database checks this "yes" when the case closes
            self._event(session, case, WORKER_ACTOR, validation_action(answer),
                        new_status if new_status != case.status else None)  # fmt: skip
            if new_status == CaseStatus.CLOSED:
                self._schedule(session, case, TaskKind.RETALIATION_CHECKIN,
                               self.clock_policy.retaliation_checkin_days, 0)  # fmt: skip
            if answer != Answer.YES:
                self.outbox.to_staff(session, Outbound(
                    f"Case {case.reference}: the worker answered '{answer}' about the "
                    f"remediation. Status: {case.status}. See: wvb cases show {case.reference}"
                ), case_id=case.id)  # fmt: skip
        self.outbox.wake()
        if new_status == CaseStatus.CLOSED:
            return ValidationAnswer.CLOSED
        if new_status == CaseStatus.REOPENED:
            return ValidationAnswer.REOPENED
        return ValidationAnswer.NOTED

    async def add_worker_file(
        self, worker: WorkerRef, reference: str, kind: str, fetch: FetchMedia, mime: str | None
    ) -> EvidenceOutcome:
        """A photo, document or voice note answering staff: cleaned, encrypted, on the case."""
        del mime  # the type always comes from the content
        quotas = self.quotas
        if quotas is not None and not await quotas.evidence_room(worker.pseudonym):
            return EvidenceOutcome.OVER_QUOTA
        admit = None
        if quotas is not None:

            async def admit(size: int) -> bool:
                return await quotas.take_evidence(worker.pseudonym, size)

        clean = await fetch_and_clean(fetch, self.sandbox, admit=admit)
        if isinstance(clean, EvidenceOutcome):
            return clean
        async with self.database.transaction() as session:
            case = await self._workers_case(session, worker, reference)
            if case is None:
                return EvidenceOutcome.UNAVAILABLE
            purpose = entry_purpose(case.reference, case.id, Side.WORKER, kind)
            session.add(CaseEntry(
                case_id=case.id, author=Side.WORKER, kind=kind, mime_type=clean.mime_type,
                ciphertext=self.keyring.encrypt(clean.data, purpose),
            ))  # fmt: skip
            self._event(session, case, WORKER_ACTOR, CaseAction.WORKER_MESSAGE)
        return EvidenceOutcome.STORED

    async def add_worker_message(self, worker: WorkerRef, reference: str, text: str) -> bool:
        """A worker's answer to a follow-up, or a comment on a validation, joins the case."""
        async with self.database.transaction() as session:
            case = await self._workers_case(session, worker, reference)
            if case is None:
                return False
            session.add(self._text_entry(case, Side.WORKER, text))
            self._event(session, case, WORKER_ACTOR, CaseAction.WORKER_MESSAGE)
            return True

    async def record_retaliation_answer(
        self, worker: WorkerRef, reference: str, answer: Answer, receipt_code: str
    ) -> tuple[str, bool] | None:
        """After a closed case: "has anyone treated you badly because you complained?". A yes
        opens a linked, urgent retaliation case (once, however often it is pressed) and returns
        its reference and whether it was opened now (then ``receipt_code`` is its code)."""
        if answer not in YES_NO:
            return None
        async with self.database.transaction() as session:
            case = await self._workers_case(session, worker, reference)
            if case is None:
                return None
            self._event(session, case, WORKER_ACTOR, retaliation_action(answer))
            if answer == Answer.NO:
                return None
            draft_key = f"retaliation:{case.id}"
            existing = await session.scalar(select(Case).where(Case.draft_key == draft_key))
            if existing is not None:
                return existing.reference, False
            now = utc_hour()
            linked_reference = new_reference()
            linked = Case(
                reference=linked_reference, categories=[Category.RETALIATION],
                workplace_id=case.workplace_id, occurred=Occurred.ONGOING, affected=Affected.ME,
                danger_now=False, confidentiality=Confidentiality.CONFIDENTIAL, urgent=True,
                language=case.language,
                draft_key=draft_key,
                receipt_hash=hash_receipt(receipt_code, self.keyring, linked_reference),
                created_at=now,
                linked_case_id=case.id,
            )  # fmt: skip
            set_case_clocks(linked, self.case_policy)  # urgent: acknowledged within hours
            seal_reporter(linked, self.keyring, worker.pseudonym)
            session.add(linked)
            await session.flush()
            schedule_acknowledge_overdue(session, linked)
            session.add(CaseEvent(case_id=linked.id, actor=WORKER_ACTOR,
                                  action=CaseAction.RECEIVED,
                                  to_status=CaseStatus.RECEIVED))  # fmt: skip
            self.outbox.to_staff(session, Outbound(
                f"URGENT case {linked.reference}: retaliation reported by the worker of closed "
                f"case {case.reference}. Open it with: wvb cases show {linked.reference}"
            ), case_id=linked.id)  # fmt: skip
            reference_of_new = linked.reference
        self.outbox.wake()
        return reference_of_new, True


async def reporter_forgetting(
    session: AsyncSession, pseudonym: str, keyring: Keyring, outbox: Outbox
) -> bool:
    """The worker is using /forget (in the transaction that cuts their link to their cases):
    each of their cases that waits for their answer about a fix records that nobody can ask
    them any more, and staff are told at once instead of waiting for an answer that cannot come.

    The case stays ``awaiting_validation``: only the reporter's "yes" may close it, so it never
    closes by itself, and staff decide (close it unvalidated, with a reason). Its reminders to
    the worker stop (they would reach nobody and only tell staff so again, one by one); the
    overdue flag and the daily escalation still count it, so it is not forgotten. Returns
    whether staff were told (the caller wakes the outbox relay)."""
    cases = list(
        await session.scalars(
            select(Case)
            .where(reported_by(pseudonym, keyring))
            .where(Case.status == CaseStatus.AWAITING_VALIDATION)
            .order_by(Case.id)
        )
    )
    for case in cases:
        session.add(CaseEvent(case_id=case.id, actor=WORKER_ACTOR,
                              action=CaseAction.REPORTER_FORGOT))  # fmt: skip
        await session.execute(
            update(CaseTask)
            .where(CaseTask.case_id == case.id, CaseTask.done_at.is_(None))
            .where(CaseTask.kind == TaskKind.VALIDATION_REMINDER)
            .values(done_at=utc_hour(), outcome=CaseAction.REPORTER_FORGOT.value)  # the hour only
        )
        outbox.to_staff(session, Outbound(
            f"Case {case.reference}: the worker used /forget while the case waits for their "
            "answer about the remediation, so the bot cannot ask them whether it was fixed; "
            "reminders to them are stopped. The case stays awaiting_validation and does not "
            "close by itself. They can still read staff messages with /status and their "
            "receipt code. To end it without their confirmation: "
            f"wvb cases close {case.reference} --unvalidated --reason TEXT"
        ), case_id=case.id)  # fmt: skip
    return bool(cases)


async def tell_staff_unreachable(
    session: AsyncSession, outbox: Outbox, case_ids: Collection[int], reason: str
) -> int:
    """Messages of these cases never reached the worker (they blocked the bot, used /forget, or
    the messenger said so after sending): each case records it and staff are told, so a
    follow-up or validation prompt does not silently go unanswered. ``reason`` names why, never
    the content. Returns how many cases staff were told of (the caller wakes the relay)."""
    cases = list(
        await session.scalars(select(Case).where(Case.id.in_(set(case_ids))).order_by(Case.id))
    )
    for case in cases:
        session.add(CaseEvent(case_id=case.id, actor=SYSTEM_ACTOR,
                              action=CaseAction.WORKER_UNREACHABLE))  # fmt: skip
        outbox.to_staff(session, Outbound(
            f"Case {case.reference}: a message could not reach the worker ({reason}). "
            "They can still read staff messages with /status and their receipt code."
        ), case_id=case.id)  # fmt: skip
    return len(cases)

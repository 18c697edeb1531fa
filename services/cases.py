"""Case intake and status checks: the one place a report becomes a case.

Everything a worker typed is encrypted before it reaches a session; the receipt code is stored
only as a sealed scrypt hash (``storage/codes.py``); a draft's key makes submitting idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from conversations.categories import CATEGORIES
from conversations.messages import FetchMedia, Outbound
from conversations.ports import (
    CaseReceipt,
    CaseStatusView,
    EvidenceOutcome,
    ReportDraft,
    StaffMessage,
    StatusOutcome,
    StatusResult,
    WithdrawOutcome,
    WorkerRef,
    WorkplaceOption,
)
from domain.categories import is_urgent, known_categories
from domain.history import CaseAction, TaskKind
from domain.parties import WORKER_ACTOR, Side
from domain.references import new_receipt_code, new_reference
from domain.statuses import UNRESOLVED, CaseStatus
from media.sandbox import CleaningSandbox
from services import lifecycle
from services.evidence import fetch_and_clean
from services.outbox import Outbox, StaffDestination
from services.quotas import AlertVerdict, WorkerQuotas
from services.reporters import seal_reporter
from services.retention import purge_content
from storage import codes
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    CaseTask,
    DraftAttachment,
    EmergencyContact,
    OutboxMessage,
    Worker,
    Workplace,
    utc_hour,
    utc_now,
)
from storage.rate_limits import AttemptCounter, Blinder
from storage.repositories import CaseRepository

log = logging.getLogger(__name__)

ANY = "*"


def case_purpose(reference: str, part: str) -> bytes:
    """Associated data binding a ciphertext to one case and one part of it."""
    return f"case\x00{reference}\x00{part}".encode()


def entry_purpose(reference: str, case_id: int, author: str, kind: str) -> bytes:
    """Associated data of a case entry: its case, who wrote it and what it is. /status shows a
    worker the staff-written texts of their case, so an entry relabelled as staff-written, or
    moved to another case, must fail to decrypt rather than be shown."""
    return f"case\x00{reference}\x00entry\x00{case_id}\x00{author}\x00{kind}".encode()


def draft_purpose(draft_key: str, kind: str) -> bytes:
    return f"draft\x00{draft_key}\x00{kind}".encode()


def withdraw_purpose(pseudonym: str) -> bytes:
    return f"withdraw\x00{pseudonym}".encode()


#: How long after a status check the worker may still withdraw without typing the code again.
WITHDRAW_WINDOW = timedelta(minutes=30)


def set_case_clocks(case: Case, policy: CasePolicy) -> None:
    """The acknowledgement and response targets of a new case, from its ``created_at`` (kept to
    the hour). An urgent case's acknowledgement is due within hours, and the case clock flags
    it to staff at once when that passes unacknowledged (``TaskKind.ACKNOWLEDGE_OVERDUE``)."""
    if case.urgent:
        case.acknowledge_due_at = case.created_at + timedelta(hours=policy.urgent_acknowledge_hours)
    else:
        case.acknowledge_due_at = case.created_at + timedelta(days=policy.acknowledge_days)
    case.response_due_at = case.created_at + timedelta(days=policy.response_days)


def schedule_acknowledge_overdue(session: AsyncSession, case: Case) -> None:
    """For an urgent case (flushed, so it has an id): the flag to staff if it is still not
    acknowledged when its acknowledgement falls due. Daily escalation would take up to a day
    longer, too late for someone in danger."""
    if case.urgent:
        session.add(CaseTask(
            key=f"{case.id}:{TaskKind.ACKNOWLEDGE_OVERDUE}", case_id=case.id,
            kind=TaskKind.ACKNOWLEDGE_OVERDUE, round=case.validation_round,
            due_at=case.acknowledge_due_at,
        ))  # fmt: skip


@dataclass(frozen=True)
class CasePolicy:
    acknowledge_days: int = 7
    response_days: int = 90
    # An urgent case is acknowledged within hours, not days (WVB_URGENT_ACKNOWLEDGE_HOURS).
    urgent_acknowledge_hours: int = 24
    # Receipt-code guessing: failed checks allowed per worker; failures of everyone together
    # that trip the circuit breaker (staff are alerted once a window; checks go on).
    status_failures_per_worker: int = 5
    status_failures_global: int = 200
    status_window_seconds: int = 15 * 60


class CaseService:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        outbox: Outbox,
        attempts: AttemptCounter,
        policy: CasePolicy | None = None,
        quotas: WorkerQuotas | None = None,
        *,
        sandbox: CleaningSandbox | None = None,
        staff_destination: StaffDestination | None = None,
    ) -> None:
        self.database = database
        self.sandbox = sandbox
        # Unless told otherwise, nobody is known to receive alerts: the worker is not promised.
        self.staff_destination = staff_destination or StaffDestination("no staff destination")
        self.keyring = keyring
        self.outbox = outbox
        self.attempts = attempts
        self.policy = policy or CasePolicy()
        self.quotas = quotas or WorkerQuotas(attempts, Blinder(os.urandom(32)))
        self._dummy_receipt_hash: str | None = None

    # -- what the report conversation offers -------------------------------------------------

    async def workplaces(self) -> list[WorkplaceOption]:
        async with self.database.sessions() as session:
            rows = await session.execute(
                select(Workplace.id, Workplace.name)
                .where(Workplace.active.is_(True))
                .order_by(Workplace.name)
            )
            return [WorkplaceOption(id=row.id, name=row.name) for row in rows]

    async def can_alert_staff(self) -> bool:
        return self.staff_destination.reachable

    async def emergency_contacts(self, language: str, workplace_id: int | None) -> str | None:
        async with self.database.sessions() as session:
            country = None
            if workplace_id is not None:
                country = await session.scalar(
                    select(Workplace.country).where(Workplace.id == workplace_id)
                )
            rows = (await session.execute(select(EmergencyContact))).scalars().all()
        # Most specific first: this country in this language ... any country in any language.
        for wanted_country, wanted_language in (
            (country, language),
            (country, ANY),
            (ANY, language),
            (ANY, ANY),
        ):
            for row in rows:
                if row.country == wanted_country and row.language == wanted_language:
                    return row.text
        return None

    async def report_wait(self, pseudonym: str) -> int:
        return await self.quotas.report_wait(pseudonym)

    async def add_evidence(
        self,
        draft_key: str,
        kind: str,
        fetch: FetchMedia,
        declared_mime: str | None,
        *,
        pseudonym: str,
    ) -> EvidenceOutcome:
        del declared_mime  # the type always comes from the content
        if not await self.quotas.evidence_room(pseudonym):  # not even downloaded
            return EvidenceOutcome.OVER_QUOTA
        clean = await fetch_and_clean(
            fetch, self.sandbox, admit=lambda size: self.quotas.take_evidence(pseudonym, size)
        )
        if isinstance(clean, EvidenceOutcome):
            return clean
        async with self.database.transaction() as session:
            session.add(
                DraftAttachment(
                    draft_key=draft_key,
                    kind=kind,
                    mime_type=clean.mime_type,
                    ciphertext=self.keyring.encrypt(clean.data, draft_purpose(draft_key, kind)),
                )
            )
        return EvidenceOutcome.STORED

    async def discard_draft(self, draft_key: str) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                delete(DraftAttachment).where(DraftAttachment.draft_key == draft_key)
            )
        await self.database.checkpoint()

    # -- intake ------------------------------------------------------------------------------

    def new_receipt_code(self) -> str:
        return new_receipt_code()

    async def submit(self, worker: WorkerRef, draft: ReportDraft) -> CaseReceipt:
        alert: AlertVerdict | None = None  # taken once, kept across retries
        for _ in range(5):
            try:
                async with self.database.transaction() as session:
                    existing = await self._by_draft_key(session, draft.key)
                    if existing is not None:
                        return self._receipt(
                            existing, await self._alert_collapsed(session, existing)
                        )
                    if alert is None and is_urgent(draft.categories, draft.danger_now):
                        alert = await self.quotas.urgent_alert(worker.pseudonym)
                    case = await self._create(session, worker, draft, alert)
                    receipt = self._receipt(case, alert is AlertVerdict.COLLAPSED)
            except IntegrityError:
                # The same draft committed concurrently (then the lookup above finds it), or a
                # reference collided with an existing one (then a new one is drawn).
                continue
            await self.quotas.count_report(worker.pseudonym)
            if receipt.urgent:
                self.outbox.wake()
            return receipt
        raise RuntimeError("could not store the case after several attempts")

    async def _alert_collapsed(self, session: AsyncSession, case: Case) -> bool:
        """For a draft submitted again: was its urgent alert collapsed into an earlier one?"""
        if not case.urgent:
            return False
        alerts = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.case_id == case.id, OutboxMessage.recipient == Side.STAFF)
        )
        return not alerts

    async def _by_draft_key(self, session: AsyncSession, draft_key: str) -> Case | None:
        return await session.scalar(select(Case).where(Case.draft_key == draft_key))

    async def _create(
        self,
        session: AsyncSession,
        worker: WorkerRef,
        draft: ReportDraft,
        alert: AlertVerdict | None,
    ) -> Case:
        now = utc_hour()  # case times are kept to the hour (storage.models.HourDateTime)
        reference = new_reference()
        onboarded = await session.scalar(
            select(Worker.id).where(Worker.pseudonym == worker.pseudonym)
        )
        urgent = is_urgent(draft.categories, draft.danger_now)

        def seal(text: str | None, part: str) -> bytes | None:
            if not text:
                return None
            return self.keyring.encrypt(text.encode(), case_purpose(reference, part))

        workplace = (
            await session.get(Workplace, draft.workplace_id)
            if draft.workplace_id is not None
            else None
        )  # None too when staff removed it while the worker was typing
        workplace_id = workplace.id if workplace is not None else None
        case = Case(
            reference=reference,
            status=CaseStatus.RECEIVED,
            categories=known_categories(draft.categories),
            workplace_id=workplace_id,
            workplace_other_ciphertext=seal(draft.workplace_text, "workplace"),
            agency_ciphertext=seal(draft.agency, "agency"),
            occurred=draft.occurred,
            affected=draft.affected,
            danger_now=draft.danger_now,
            confidentiality=draft.confidentiality,
            urgent=urgent,
            language=draft.language,
            draft_key=draft.key,
            receipt_hash=codes.hash_receipt(draft.receipt_code, self.keyring, reference),
            created_at=now,
        )
        set_case_clocks(case, self.policy)
        seal_reporter(case, self.keyring, worker.pseudonym if onboarded is not None else None)
        session.add(case)
        await session.flush()
        schedule_acknowledge_overdue(session, case)
        for text in draft.details:
            session.add(
                CaseEntry(
                    case_id=case.id,
                    author=Side.WORKER,
                    kind="text",
                    ciphertext=self.keyring.encrypt(
                        text.encode(), entry_purpose(reference, case.id, Side.WORKER, "text")
                    ),
                )
            )
        attachments = (
            await session.execute(
                select(DraftAttachment)
                .where(DraftAttachment.draft_key == draft.key)
                .order_by(DraftAttachment.id)
            )
        ).scalars()
        for attachment in attachments:
            data = self.keyring.decrypt(
                attachment.ciphertext, draft_purpose(draft.key, attachment.kind)
            )
            purpose = entry_purpose(reference, case.id, Side.WORKER, attachment.kind)
            session.add(
                CaseEntry(
                    case_id=case.id,
                    author=Side.WORKER,
                    kind=attachment.kind,
                    mime_type=attachment.mime_type,
                    ciphertext=self.keyring.encrypt(data, purpose),
                )
            )
            await session.delete(attachment)
        session.add(
            CaseEvent(
                case_id=case.id,
                actor=WORKER_ACTOR,
                action=CaseAction.RECEIVED,
                to_status=CaseStatus.RECEIVED,
            )
        )
        if urgent and alert is not AlertVerdict.COLLAPSED:
            message = self._staff_alert(case, last=alert is AlertVerdict.LAST_ALERT)
            self.outbox.to_staff(session, message, case_id=case.id)
        await session.flush()
        return case

    @staticmethod
    def _staff_alert(case: Case, *, last: bool = False) -> Outbound:
        """Reference, urgency and categories: enough to act on, nothing the messenger's servers
        should hold about the case (no workplace, no words of the worker). Details are read in
        `wvb cases show`."""
        categories = ", ".join(CATEGORIES[code] for code in case.categories) or "-"
        urgency = "URGENT, danger now" if case.danger_now else "URGENT"
        lines = [
            f"{urgency}: case {case.reference}",
            f"Categories: {categories}",
            f"Open it with: wvb cases show {case.reference}",
        ]
        if last:
            lines.append(
                "Further urgent cases from the same reporter in the next 24 hours get no alert "
                "of their own: watch `wvb cases list` (urgent: true)."
            )
        return Outbound("\n".join(lines), protect_content=True)

    def _receipt(self, case: Case, alert_collapsed: bool = False) -> CaseReceipt:
        within = case.acknowledge_due_at - case.created_at
        return CaseReceipt(
            reference=case.reference,
            urgent=case.urgent,
            acknowledge_due=case.acknowledge_due_at,
            response_due=case.response_due_at,
            alert_collapsed=alert_collapsed,
            acknowledge_within_hours=round(within / timedelta(hours=1)) if case.urgent else None,
        )

    # -- status checks -----------------------------------------------------------------------

    async def check_status(self, pseudonym: str, reference: str, code: str) -> StatusResult:
        """Per worker, a few failures per window; then nothing is checked until it ends. For
        everyone together there is no lock (that let 40 accounts shut /status for all): every
        guess within a worker's allowance is checked, a correct reference and code always get
        through, and the failure that reaches ``status_failures_global`` alerts staff once."""
        policy = self.policy
        window = policy.status_window_seconds
        worker_key = self.quotas.key("status", pseudonym)
        # The try is counted before it is checked, atomically: attempts sent at once cannot all
        # see "4 so far" and all be checked.
        if await self.attempts.add(worker_key, window) > policy.status_failures_per_worker:
            return StatusResult(StatusOutcome.THROTTLED)
        async with self.database.sessions() as session:
            case = await CaseRepository(session).find(reference, load=(selectinload(Case.entries),))
            if case is not None:
                stored_hash, sealed_for = case.receipt_hash, case.reference
            else:
                stored_hash, sealed_for = self._dummy_hash(), "-"
            # Verify even when there is no such case, so timing does not tell the difference;
            # in a thread (scrypt takes tens of milliseconds), so other workers are answered.
            matches = await asyncio.to_thread(
                codes.verify_receipt, code, stored_hash, self.keyring, sealed_for
            )
            if matches and case is not None:
                await self.attempts.add(worker_key, window, -1)  # only failures count
                return StatusResult(StatusOutcome.FOUND, self._status_view(case, pseudonym))
        if await self.attempts.add("status:*", window) == policy.status_failures_global:
            await self._alert_guessing()
        return StatusResult(StatusOutcome.NOT_FOUND)

    async def _alert_guessing(self) -> None:
        """The circuit breaker: tell staff, once a window, that codes are being guessed."""
        policy = self.policy
        minutes = policy.status_window_seconds // 60
        text = (
            f"Receipt-code guessing: {policy.status_failures_global} failed /status checks in "
            f"{minutes} minutes, from all accounts together. Each account is still limited to "
            f"{policy.status_failures_per_worker} failures per {minutes} minutes, correct codes "
            "still work, and a wrong guess reveals nothing. This alert comes at most once per "
            f"{minutes} minutes."
        )
        async with self.database.transaction() as session:
            self.outbox.to_staff(session, Outbound(text))
        self.outbox.wake()

    # -- withdrawal --------------------------------------------------------------------------

    def _withdraw_token(self, pseudonym: str, reference: str) -> str:
        """A short-lived proof that this worker just gave the right code for ``reference``,
        sealed to them: the conversation keeps this instead of the receipt code."""
        expires = int((utc_now() + WITHDRAW_WINDOW).timestamp())
        sealed = self.keyring.encrypt(
            json.dumps({"reference": reference, "expires": expires}).encode(),
            withdraw_purpose(pseudonym),
        )
        return base64.urlsafe_b64encode(sealed).decode()

    def _withdraw_reference(self, pseudonym: str, token: str) -> str | None:
        try:
            sealed = base64.urlsafe_b64decode(token.encode())
            claim = json.loads(self.keyring.decrypt(sealed, withdraw_purpose(pseudonym)))
            expires, reference = int(claim["expires"]), str(claim["reference"])
        except (ValueError, KeyError, TypeError, DecryptionError):
            return None
        return reference if expires >= utc_now().timestamp() else None

    async def withdraw(self, pseudonym: str, token: str) -> WithdrawOutcome:
        reference = self._withdraw_reference(pseudonym, token)
        if reference is None:
            return WithdrawOutcome.NOT_POSSIBLE
        async with self.database.transaction() as session:
            case = await CaseRepository(session).find(reference, lock=True)
            if case is None:
                return WithdrawOutcome.NOT_POSSIBLE
            try:
                new_status = lifecycle.withdrawn(case.status)
            except lifecycle.LifecycleError:
                return WithdrawOutcome.NOT_POSSIBLE
            now = utc_now()
            session.add(CaseEvent(case_id=case.id, actor=WORKER_ACTOR,
                                  action=CaseAction.WITHDRAWN, from_status=case.status,
                                  to_status=new_status))  # fmt: skip
            case.status = new_status
            case.ended_at = now
            await purge_content(session, case, WORKER_ACTOR, now)
            self.outbox.to_staff(session, Outbound(
                f"Case {case.reference} was withdrawn by the worker. Its content was deleted; "
                f"the case still counts in reports. See: wvb cases show {case.reference}"
            ))  # fmt: skip
        self.outbox.wake()
        return WithdrawOutcome.WITHDRAWN

    def _dummy_hash(self) -> str:
        if self._dummy_receipt_hash is None:
            self._dummy_receipt_hash = codes.dummy_receipt_hash(self.keyring)
        return self._dummy_receipt_hash

    def _status_view(self, case: Case, pseudonym: str) -> CaseStatusView:
        messages = []
        for entry in case.entries:
            if entry.author == Side.STAFF and entry.kind == "text":
                purpose = entry_purpose(case.reference, case.id, entry.author, entry.kind)
                try:
                    text = self.keyring.decrypt(entry.ciphertext, purpose).decode()
                except DecryptionError:
                    # A removed key, or a row changed in the database: never shown.
                    log.warning("case entry %d does not decrypt; not shown", entry.id)
                    continue
                messages.append(StaffMessage(entry.created_at, text))
        return CaseStatusView(
            reference=case.reference,
            status=CaseStatus(case.status),
            created_at=case.created_at,
            acknowledge_due=case.acknowledge_due_at,
            response_due=case.response_due_at,
            acknowledged=case.status != CaseStatus.RECEIVED,
            staff_messages=tuple(messages[-5:]),
            withdraw_token=(
                self._withdraw_token(pseudonym, case.reference)
                if case.status in UNRESOLVED
                else None
            ),
            reporter_linked=case.reporter_ciphertext is not None,
        )

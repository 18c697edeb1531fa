"""Case intake and status checks: the one place a report becomes a case.

Everything a worker typed is encrypted before it reaches a session; the receipt code is stored
only as a sealed scrypt hash (``storage/codes.py``); a draft's key makes submitting idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from conversations.categories import CATEGORIES
from conversations.messages import FetchMedia, Outbound
from conversations.ports import (
    CaseReceipt,
    CaseStatusView,
    EvidenceOutcome,
    MediaTooLarge,
    MediaUnavailable,
    ReportDraft,
    StaffMessage,
    StatusOutcome,
    StatusResult,
    WorkerRef,
    WorkplaceOption,
)
from domain.categories import is_urgent, known_categories
from domain.history import CaseAction
from domain.parties import WORKER_ACTOR, Side
from domain.references import new_receipt_code, new_reference
from domain.statuses import CaseStatus
from services.outbox import Outbox
from services.reporters import seal_reporter
from storage import codes
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    DraftAttachment,
    EmergencyContact,
    Worker,
    Workplace,
    utc_now,
)
from storage.rate_limits import AttemptCounter
from storage.repositories import CaseRepository

log = logging.getLogger(__name__)

# The libraries that parse workers' files log what they find at DEBUG level (Pillow prints every
# EXIF tag: the owner's name, the GPS position). Those lines must never reach a log, whatever
# level the operator sets.
for _parser in ("PIL", "pypdf", "mutagen"):
    logging.getLogger(_parser).setLevel(logging.WARNING)

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


@dataclass(frozen=True)
class CasePolicy:
    acknowledge_days: int = 7
    response_days: int = 90
    # Receipt-code guessing: failed checks allowed per worker, and for everyone together.
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
    ) -> None:
        self.database = database
        self.keyring = keyring
        self.outbox = outbox
        self.attempts = attempts
        self.policy = policy or CasePolicy()
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

    async def add_evidence(
        self, draft_key: str, kind: str, fetch: FetchMedia, declared_mime: str | None
    ) -> EvidenceOutcome:
        import media  # Pillow, pypdf, mutagen: loaded on first file

        try:
            data = await fetch()
        except MediaTooLarge:
            return EvidenceOutcome.TOO_LARGE
        except MediaUnavailable as error:
            log.warning("could not fetch a file from the channel: %s", error)
            return EvidenceOutcome.UNAVAILABLE
        if len(data) > media.MAX_BYTES:
            return EvidenceOutcome.TOO_LARGE
        try:
            # CPU-bound (a large photo takes seconds): keep the event loop answering others.
            clean = await asyncio.to_thread(media.sanitize, data, declared_mime=declared_mime)
        except media.UnsupportedMedia:
            return EvidenceOutcome.UNSUPPORTED
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

    # -- intake ------------------------------------------------------------------------------

    def new_receipt_code(self) -> str:
        return new_receipt_code()

    async def submit(self, worker: WorkerRef, draft: ReportDraft) -> CaseReceipt:
        for _ in range(5):
            try:
                async with self.database.transaction() as session:
                    existing = await self._by_draft_key(session, draft.key)
                    if existing is not None:
                        return self._receipt(existing)
                    case = await self._create(session, worker, draft)
                    receipt = self._receipt(case)
            except IntegrityError:
                # The same draft committed concurrently (then the lookup above finds it), or a
                # reference collided with an existing one (then a new one is drawn).
                continue
            if receipt.urgent:
                self.outbox.wake()
            return receipt
        raise RuntimeError("could not store the case after several attempts")

    async def _by_draft_key(self, session: AsyncSession, draft_key: str) -> Case | None:
        return await session.scalar(select(Case).where(Case.draft_key == draft_key))

    async def _create(self, session: AsyncSession, worker: WorkerRef, draft: ReportDraft) -> Case:
        now = utc_now()
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
            acknowledge_due_at=now + timedelta(days=self.policy.acknowledge_days),
            response_due_at=now + timedelta(days=self.policy.response_days),
        )
        seal_reporter(case, self.keyring, worker.pseudonym if onboarded is not None else None)
        session.add(case)
        await session.flush()
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
        if urgent:
            alert = self._staff_alert(case, workplace.name if workplace else None)
            self.outbox.to_staff(session, alert, case_id=case.id)
        await session.flush()
        return case

    @staticmethod
    def _staff_alert(case: Case, workplace_name: str | None) -> Outbound:
        """Category, workplace, reference: enough to act on, nothing that identifies the worker.
        A workplace the worker typed is not quoted: it is free text and could say anything."""
        categories = ", ".join(CATEGORIES[code] for code in case.categories) or "-"
        if workplace_name is not None:
            workplace = workplace_name
        elif case.workplace_other_ciphertext is not None:
            workplace = "typed by the worker (see the case)"
        else:
            workplace = "not given"
        lines = [
            f"URGENT case {case.reference}",
            f"Categories: {categories}",
            f"Danger now: {'yes' if case.danger_now else 'no'}",
            f"Workplace: {workplace}",
            f"Open it with: wvb cases show {case.reference}",
        ]
        return Outbound("\n".join(lines))

    def _receipt(self, case: Case) -> CaseReceipt:
        return CaseReceipt(
            reference=case.reference,
            urgent=case.urgent,
            acknowledge_due=case.acknowledge_due_at,
            response_due=case.response_due_at,
        )

    # -- status checks -----------------------------------------------------------------------

    async def check_status(self, pseudonym: str, reference: str, code: str) -> StatusResult:
        policy = self.policy
        worker_key = f"status:{pseudonym}"
        window = policy.status_window_seconds
        if (
            await self.attempts.count(worker_key, window) >= policy.status_failures_per_worker
            or await self.attempts.count("status:*", window) >= policy.status_failures_global
        ):
            return StatusResult(StatusOutcome.THROTTLED)
        async with self.database.sessions() as session:
            case = await CaseRepository(session).find(reference, load=(selectinload(Case.entries),))
            if case is not None:
                stored_hash, sealed_for = case.receipt_hash, case.reference
            else:
                stored_hash, sealed_for = self._dummy_hash(), "-"
            # Verify even when there is no such case, so timing does not tell the difference.
            matches = codes.verify_receipt(code, stored_hash, self.keyring, sealed_for)
            matches = matches and case is not None
            if not matches or case is None:
                await self.attempts.add(worker_key, window)
                await self.attempts.add("status:*", window)
                return StatusResult(StatusOutcome.NOT_FOUND)
            return StatusResult(StatusOutcome.FOUND, self._status_view(case))

    def _dummy_hash(self) -> str:
        if self._dummy_receipt_hash is None:
            self._dummy_receipt_hash = codes.dummy_receipt_hash(self.keyring)
        return self._dummy_receipt_hash

    def _status_view(self, case: Case) -> CaseStatusView:
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
        )

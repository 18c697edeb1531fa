"""Staff actions on cases, workplaces and emergency contacts. Each exists once, here; the CLI
and the staff chat only call these. Every view and change is written to the audit log in the
same transaction. Views are the dataclasses of ``services/views.py``; a request that cannot be
done is a ``domain.errors.Refusal`` naming the field and the reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from conversations.categories import CATEGORIES
from domain.errors import NotFound, Refusal
from domain.parties import Respondent
from domain.statuses import OPEN, CaseStatus
from locales import LANGUAGES
from services import audit
from services.access import ActorLike, require, require_case_access
from services.cases import ANY, case_purpose, entry_purpose
from services.reporters import reporter_id
from services.views import (
    CaseDetail,
    CaseEntryView,
    CaseEventView,
    CaseFilter,
    CaseOverview,
    CasePage,
    CaseSummary,
    ContactView,
    ListedWorkplace,
    SiteValidationView,
    WorkplaceView,
)
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    EmergencyContact,
    SiteQuestion,
    Validation,
    Workplace,
)
from storage.repositories import CaseRepository

#: The name staff refusals had before every service shared one refusal type.
StaffError = Refusal

#: Site-validation counts are shown to staff only when at least this many workers answered, so
#: no single worker's answer can be picked out.
MIN_GROUP_SIZE = 5


#: What a case view loads with the case.
def case_overdue(case: Case, now: datetime) -> bool:
    """Past a deadline: not acknowledged by the acknowledgement target, or still open past the
    response target (the clocks of ``services/cases.py``)."""
    ack_due = _aware(case.acknowledge_due_at)
    response_due = _aware(case.response_due_at)
    if case.status == CaseStatus.RECEIVED and ack_due < now:
        return True
    return case.status in OPEN and response_due < now


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_CASE_FILE = (selectinload(Case.workplace), selectinload(Case.entries), selectinload(Case.events))


class StaffService:
    def __init__(self, database: Database, keyring: Keyring) -> None:
        self.database = database
        self.keyring = keyring

    def _open(self, case: Case, blob: bytes | None, part: str) -> str | None:
        if blob is None:
            return None
        try:
            return self.keyring.decrypt(blob, case_purpose(case.reference, part)).decode()
        except DecryptionError:
            return "[cannot be decrypted with the configured keys]"

    def _summary(self, case: Case, *, typed_workplace: bool = False) -> CaseSummary:
        """``typed_workplace``: decrypt the workplace the worker typed (what a worker wrote: only
        for staff who may read that)."""
        return CaseSummary(
            reference=case.reference,
            status=case.status,
            category=case.categories[0] if case.categories else None,
            categories=list(case.categories),
            language=case.language,
            urgent=case.urgent,
            created_at=case.created_at,
            workplace=case.workplace.name if case.workplace else None,
            workplace_typed=(
                self._open(case, case.workplace_other_ciphertext, "workplace")
                if typed_workplace
                else None
            ),
            assigned_to=case.assigned_to,
            acknowledge_due_at=case.acknowledge_due_at,
            response_due_at=case.response_due_at,
        )

    async def list_cases(
        self, actor: ActorLike, status: str | None = None, *, typed_workplaces: bool | None = None
    ) -> list[CaseSummary]:
        """Every case (an ``assigned_only`` handler: theirs), oldest first. A workplace the worker
        typed is shown only to those who may read what workers wrote (``typed_workplaces``
        defaults to that)."""
        who = await require(self.database, actor, "cases.view", "cases.list")
        if typed_workplaces is None:
            typed_workplaces = who.may("cases.read")
        if status is not None and status not in set(CaseStatus):
            raise Refusal(
                "status", f"unknown status {status!r}; use one of: {', '.join(CaseStatus)}"
            )
        async with self.database.transaction() as session:
            query = select(Case).options(selectinload(Case.workplace)).order_by(Case.id)
            if status is not None:
                query = query.where(Case.status == status)
            if who.assigned_only:
                query = query.where(Case.assigned_to == who.staff_name)
            cases = (await session.execute(query)).scalars().all()
            audit.record(
                session, who, "cases.list", None, status=status, count=len(cases),
                typed_workplaces=typed_workplaces,
            )  # fmt: skip
            return [self._summary(case, typed_workplace=typed_workplaces) for case in cases]

    async def case_overview(self, actor: ActorLike, reference: str) -> CaseOverview:
        """The summary and the size of the file, decrypting nothing (audited as a summary)."""
        actor = await require_case_access(
            self.database, actor, "cases.view", reference, "case.summary"
        )
        async with self.database.transaction() as session:
            case = await CaseRepository(session).named(reference, load=_CASE_FILE)
            audit.record(session, actor, "case.summary", case.reference)
            texts = sum(1 for entry in case.entries if entry.kind == "text")
            return CaseOverview(self._summary(case), texts, len(case.entries) - texts)

    async def show_case(self, actor: ActorLike, reference: str) -> CaseDetail:
        actor = await require_case_access(
            self.database, actor, "cases.read", reference, "case.view"
        )
        async with self.database.transaction() as session:
            case = await CaseRepository(session).named(reference, load=_CASE_FILE)
            audit.record(session, actor, "case.view", case.reference)
            return CaseDetail(
                # the summary's fields, then the file's
                **vars(self._summary(case, typed_workplace=True)),
                category_labels=[CATEGORIES.get(c, c) for c in case.categories],
                agency=self._open(case, case.agency_ciphertext, "agency"),
                occurred=case.occurred,
                affected=case.affected,
                danger_now=case.danger_now,
                confidentiality=case.confidentiality,
                worker_reachable=await reporter_id(session, case, self.keyring) is not None,
                site_validation=await self._site_counts(session, case),
                entries=[self._entry(case, entry) for entry in case.entries],
                events=[
                    CaseEventView(
                        at=event.at,
                        actor=event.actor,
                        action=event.action,
                        from_status=event.from_status,
                        to_status=event.to_status,
                        note=self._open(case, event.note_ciphertext, "event"),
                    )
                    for event in case.events
                ],
                purged_at=case.purged_at,
            )

    @staticmethod
    async def _site_counts(session: AsyncSession, case: Case) -> SiteValidationView:
        """Other workers' answers for the current round, as counts; hidden below the minimum
        group size so no single worker's answer can be picked out."""
        asked = await session.scalar(
            select(func.count())
            .select_from(SiteQuestion)
            .where(SiteQuestion.case_id == case.id, SiteQuestion.round == case.validation_round)
        )
        rows = (
            await session.execute(
                select(Validation.answer, func.count())
                .where(Validation.case_id == case.id, Validation.respondent == Respondent.SITE)
                .where(Validation.round == case.validation_round)
                .group_by(Validation.answer)
            )
        ).all()
        answered = sum(count for _, count in rows)
        answers: dict[str, int] | str = (
            {answer: count for answer, count in rows}
            if answered >= MIN_GROUP_SIZE
            else f"hidden: fewer than {MIN_GROUP_SIZE} answers"
        )
        return SiteValidationView(asked=int(asked or 0), answered=answered, answers=answers)

    @staticmethod
    def _entry_purpose(case: Case, entry: CaseEntry) -> bytes:
        return entry_purpose(case.reference, case.id, entry.author, entry.kind)

    def _entry(self, case: Case, entry: CaseEntry) -> CaseEntryView:
        shown = CaseEntryView(
            id=entry.id,
            at=entry.created_at,
            author=entry.author,
            kind=entry.kind,
            mime_type=entry.mime_type,
        )
        try:
            plain = self.keyring.decrypt(entry.ciphertext, self._entry_purpose(case, entry))
        except DecryptionError:
            return replace(shown, error="cannot be decrypted with the configured keys")
        if entry.kind == "text":
            return replace(shown, text=plain.decode())
        return replace(shown, size=len(plain))

    async def export_files(self, actor: ActorLike, reference: str) -> list[tuple[str, bytes]]:
        """Decrypted evidence files of a case, as (file name, content), for a staff member's
        own machine. Audited separately from viewing."""
        actor = await require_case_access(
            self.database, actor, "cases.read", reference, "case.export"
        )
        await self.show_case(actor, reference)  # the view is audited too, as before
        files: list[tuple[str, bytes]] = []
        async with self.database.transaction() as session:
            case = await CaseRepository(session).named(
                reference, load=(selectinload(Case.entries),)
            )
            for entry in case.entries:
                if entry.kind == "text":
                    continue
                plain = self.keyring.decrypt(entry.ciphertext, self._entry_purpose(case, entry))
                extension = entry.mime_type.split("/")[-1].split(";")[0] or "bin"
                files.append((f"{case.reference}-{entry.id}-{entry.kind}.{extension}", plain))
            audit.record(session, actor, "case.export", case.reference, files=len(files))
        return files

    async def evidence_file(
        self, actor: ActorLike, reference: str, entry_id: int
    ) -> tuple[str, str, bytes]:
        """One evidence file of a case, decrypted, as (file name, MIME type, content): for the
        console, which shows a cleaned image inline and offers other files for download.
        Audited (``case.file``) each time it is opened."""
        actor = await require_case_access(
            self.database, actor, "cases.read", reference, "case.file"
        )
        async with self.database.transaction() as session:
            case = await CaseRepository(session).named(
                reference, load=(selectinload(Case.entries),)
            )
            entry = next((e for e in case.entries if e.id == entry_id and e.kind != "text"), None)
            if entry is None:
                raise NotFound("file", f"no file {entry_id} in case {case.reference}")
            plain = self.keyring.decrypt(entry.ciphertext, self._entry_purpose(case, entry))
            mime_type = entry.mime_type.split(";")[0].strip() or "application/octet-stream"
            extension = mime_type.split("/")[-1] or "bin"
            audit.record(session, actor, "case.file", case.reference, entry=entry.id)
            return f"{case.reference}-{entry.id}-{entry.kind}.{extension}", mime_type, plain

    async def find_cases(
        self, actor: ActorLike, filters: CaseFilter, *, now: datetime | None = None
    ) -> CasePage:
        """The case list of the console: filtered, newest first, one page of it. Audited as
        ``cases.list`` with the filters (which hold no worker's words)."""
        who = await require(self.database, actor, "cases.view", "cases.list")
        if filters.status is not None and filters.status not in set(CaseStatus):
            raise Refusal("status", f"unknown status {filters.status!r}")
        now = now or datetime.now(UTC)
        async with self.database.transaction() as session:
            query = select(Case).options(selectinload(Case.workplace)).order_by(Case.id.desc())
            if filters.status is not None:
                query = query.where(Case.status == filters.status)
            if filters.workplace_id is not None:
                query = query.where(Case.workplace_id == filters.workplace_id)
            if filters.urgent:
                query = query.where(Case.urgent.is_(True))
            if who.assigned_only:
                query = query.where(Case.assigned_to == who.staff_name)
            elif filters.assigned_to is not None:
                query = query.where(Case.assigned_to == filters.assigned_to)
            cases = [
                case
                for case in (await session.execute(query)).scalars().all()
                if (filters.category is None or filters.category in case.categories)
                and (not filters.overdue or case_overdue(case, now))
            ]
            audit.record(
                session, who, "cases.list", None, status=filters.status,
                count=len(cases), filters=filters.describe(),
            )  # fmt: skip
            start = (filters.page - 1) * filters.per_page
            shown = cases[start : start + filters.per_page]
            return CasePage(
                total=len(cases),
                page=filters.page,
                per_page=filters.per_page,
                cases=[
                    self._summary(case, typed_workplace=who.may("cases.read")) for case in shown
                ],
                overdue={case.reference for case in shown if case_overdue(case, now)},
            )

    # -- configuration the report conversation offers ------------------------------------------

    async def add_workplace(
        self, actor: ActorLike, name: str, country: str | None, timezone: str | None = None
    ) -> WorkplaceView:
        actor = await require(self.database, actor, "staff.manage", "workplace.add")
        name = name.strip()
        if not name or len(name) > 200:
            raise Refusal("name", "a workplace name needs 1 to 200 characters")
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise Refusal("country", "must be a two-letter ISO country code, such as TH")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise Refusal(
                    "timezone",
                    f"unknown time zone {timezone!r}; use an IANA name such as Asia/Bangkok",
                ) from None
        async with self.database.transaction() as session:
            existing = await session.scalar(select(Workplace).where(Workplace.name == name))
            if existing is not None:
                existing.active = True
                existing.country = country.upper() if country else existing.country
                existing.timezone = timezone or existing.timezone
                workplace = existing
            else:
                workplace = Workplace(
                    name=name, country=country.upper() if country else None, timezone=timezone
                )
                session.add(workplace)
            await session.flush()
            audit.record(session, actor, "workplace.add", str(workplace.id), name=name)
            return WorkplaceView(
                workplace.id, workplace.name, workplace.country, workplace.timezone
            )

    async def list_workplaces(self) -> list[ListedWorkplace]:
        async with self.database.sessions() as session:
            rows = (await session.execute(select(Workplace).order_by(Workplace.name))).scalars()
            return [ListedWorkplace(w.id, w.name, w.country, w.timezone, w.active) for w in rows]

    async def remove_workplace(self, actor: ActorLike, name: str) -> None:
        actor = await require(self.database, actor, "staff.manage", "workplace.remove")
        async with self.database.transaction() as session:
            workplace = await session.scalar(select(Workplace).where(Workplace.name == name))
            if workplace is None:
                raise NotFound("name", f"no workplace named {name!r}")
            workplace.active = False  # cases keep pointing at it
            audit.record(session, actor, "workplace.remove", str(workplace.id), name=name)

    async def set_contacts(
        self, actor: ActorLike, country: str, language: str, text: str
    ) -> ContactView:
        """Set (or replace) the contacts for a country and a language; returns them as stored."""
        actor = await require(self.database, actor, "staff.manage", "contacts.set")
        country = country.upper() if country != ANY else ANY
        if country != ANY and (len(country) != 2 or not country.isalpha()):
            raise Refusal("country", "must be a two-letter ISO country code, or * for any")
        if language != ANY and language not in LANGUAGES:
            raise Refusal("language", f"must be one of {', '.join(LANGUAGES)}, or * for any")
        if not text.strip() or len(text) > 3000:
            raise Refusal("text", "the contacts text needs 1 to 3000 characters")
        async with self.database.transaction() as session:
            row = await session.scalar(
                select(EmergencyContact).where(
                    EmergencyContact.country == country, EmergencyContact.language == language
                )
            )
            if row is None:
                session.add(EmergencyContact(country=country, language=language, text=text))
            else:
                row.text = text
            audit.record(session, actor, "contacts.set", None, country=country, language=language)
        return ContactView(country, language, text)

    async def list_contacts(self) -> list[ContactView]:
        async with self.database.sessions() as session:
            rows = (
                await session.execute(
                    select(EmergencyContact).order_by(
                        EmergencyContact.country, EmergencyContact.language
                    )
                )
            ).scalars()
            return [ContactView(r.country, r.language, r.text) for r in rows]

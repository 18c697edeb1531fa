"""Cases for tests of what happens after intake: one straight in the database (``insert_case``), or
many reported and worked on through the app's own services (``Programme``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.app import App
from bot.settings import Settings, resolve_keys
from conversations.ports import ReportDraft, WorkerRef
from domain.answers import Answer
from domain.references import new_receipt_code
from services.reporters import seal_reporter
from storage.codes import hash_receipt
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Case, CaseEvent, SiteQuestion, Worker, utc_now


def app_keyring(settings: Settings) -> Keyring:
    """The keyring of the app these settings open."""
    return Keyring(resolve_keys(settings).encryption_keys)


#: The keyring tests use unless they run the app with keys of its own.
TEST_KEYRING = Keyring((b"k" * 32,))


async def insert_case(
    database: Database, pseudonym: str, reference: str, keyring: Keyring = TEST_KEYRING
) -> str:
    """A received ``wages`` case reported by the worker ``pseudonym`` (created if new), sealed
    under ``keyring``; returns its receipt code."""
    code = new_receipt_code()
    async with database.transaction() as session:
        worker = await session.scalar(select(Worker).where(Worker.pseudonym == pseudonym))
        if worker is None:
            worker = Worker(pseudonym=pseudonym, language="en")
            session.add(worker)
            await session.flush()
        now = utc_now()
        case = Case(
            reference=reference,
            categories=["wages"],
            occurred="week",
            affected="few",
            danger_now=False,
            confidentiality="confidential",
            language="en",
            draft_key=reference,
            receipt_hash=hash_receipt(code, keyring, reference),
            acknowledge_due_at=now + timedelta(days=7),
            response_due_at=now + timedelta(days=90),
        )
        seal_reporter(case, keyring, pseudonym)
        session.add(case)
    return code


ACTOR = "cli:tester"
NARRATIVE = "The supervisor Somchai shouts at us every night"
TYPED_WORKPLACE = "Sunrise Knit, building 4"


@dataclass(frozen=True)
class Filed:
    reference: str
    worker: WorkerRef
    code: str


class Programme:
    """Workers reporting and staff working on their cases, through the app's own services."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.workers = 0
        self.workplaces: dict[str, int] = {}

    async def workplace(self, name: str) -> int:
        view = await self.app.staff.add_workplace(ACTOR, name, "TH")
        self.workplaces[name] = view.id
        return view.id

    async def report(
        self, categories: tuple[str, ...], workplace: str | None, opened: datetime
    ) -> Filed:
        self.workers += 1
        worker = WorkerRef(f"{self.workers:064x}", "telegram", str(5000 + self.workers))
        await self.app.profiles.save(worker, "en")
        code = self.app.cases.new_receipt_code()
        draft = ReportDraft(
            key=str(uuid.uuid4()), language="en", categories=categories,
            workplace_id=self.workplaces[workplace] if workplace else None,
            workplace_text=None if workplace else TYPED_WORKPLACE, agency=None,
            details=(NARRATIVE,), occurred="week", affected="few", danger_now=False,
            confidentiality="confidential", receipt_code=code,
        )  # fmt: skip
        reference = (await self.app.cases.submit(worker, draft)).reference
        await self.move(reference, opened=opened)
        return Filed(reference, worker, code)

    async def move(
        self,
        reference: str,
        *,
        opened: datetime | None = None,
        acknowledged: datetime | None = None,
        ended: datetime | None = None,
    ) -> None:
        """Put a case's moments where the story needs them (the services stamp the present)."""
        async with self.app.database.transaction() as session:
            case = await session.scalar(select(Case).where(Case.reference == reference))
            assert case is not None
            if opened is not None:
                case.created_at = opened
            if acknowledged is not None:
                await session.execute(
                    update(CaseEvent)
                    .where(CaseEvent.case_id == case.id, CaseEvent.from_status == "received")
                    .values(at=acknowledged)
                )
            if ended is not None:
                case.ended_at = ended

    async def site_answers(self, panel: list[Filed], answers: list[str]) -> None:
        """The panel members asked about a remediation answer, one answer each."""
        by_pseudonym = {filed.worker.pseudonym: filed.worker for filed in panel}
        async with self.app.database.sessions() as session:
            asked = (
                await session.execute(
                    select(SiteQuestion.token, Worker.pseudonym)
                    .join(Worker, Worker.id == SiteQuestion.worker_id)
                    .order_by(SiteQuestion.id)
                )
            ).all()
        assert len(asked) == len(answers)
        for (token, pseudonym), answer in zip(asked, answers, strict=True):
            worker = by_pseudonym[pseudonym]
            assert await self.app.casework.record_site_answer(worker, token, Answer(answer))

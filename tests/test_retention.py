"""Retention, tested as GlobaLeaks tests its cleaning job: create cases with content, move their
clocks back past the limit with SQL, run the job, count the rows of every content table (zero)
and check the counts reports need are still there; a case within the limit is untouched. On
SQLite + memory and PostgreSQL + Redis. Also: case times are stored to the hour."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.app import App, build_app
from conversations.messages import Outbound
from conversations.ports import ReportDraft, WorkerRef
from domain.statuses import OutboxStatus
from services.cases import draft_purpose
from services.casework import Remediation
from services.outbox import row_purpose
from services.retention import RetentionPolicy, RetentionService
from services.views import to_json
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    CaseTask,
    DraftAttachment,
    OutboxMessage,
    SiteQuestion,
    Validation,
    utc_now,
)
from tests.conftest import Backend

WORKER = WorkerRef("d" * 64, "telegram", "4242")
ACTOR = "cli:tester"


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[App]:
    app = await build_app(backend.settings(), upgrade_schema=True)
    try:
        await app.profiles.save(WORKER, "en")
        yield app
    finally:
        await app.close()


async def file_a_report(
    app: App, text: str = "My supervisor keeps our passports.", code: str | None = None
) -> str:
    """A report with typed text, a typed workplace and agency, and one photo."""
    key = str(uuid.uuid4())
    async with app.database.transaction() as session:
        session.add(
            DraftAttachment(
                draft_key=key,
                kind="photo",
                mime_type="image/jpeg",
                ciphertext=app.keyring.encrypt(b"jpeg", draft_purpose(key, "photo")),
            )
        )
    draft = ReportDraft(
        key=key,
        language="en",
        categories=("documents",),
        workplace_id=None,
        workplace_text="Sunrise Garments, line 4",
        agency="Fast Jobs Agency",
        details=(text,),
        occurred="week",
        affected="few",
        danger_now=False,
        confidentiality="confidential",
        receipt_code=code or app.cases.new_receipt_code(),
    )
    return (await app.cases.submit(WORKER, draft)).reference


async def closed_by_the_worker(app: App) -> str:
    """A case with every kind of content: entries, notes, staff messages, validations, tasks."""
    reference = await file_a_report(app)
    await app.casework.acknowledge(ACTOR, reference)
    await app.casework.add_note(ACTOR, reference, "Called the agency.")
    await app.casework.reply(ACTOR, reference, "Which month was not paid?")
    await app.casework.add_worker_message(WORKER, reference, "March and April.")
    await app.casework.remediate(ACTOR, reference, Remediation("Passports returned.", {}))
    await app.casework.record_validation(WORKER, reference, "yes")
    async with app.database.transaction() as session:  # a question to another worker
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        session.add(SiteQuestion(token=uuid.uuid4().hex[:24], case_id=case.id, round=1))
    return reference


async def content_rows(app: App, reference: str) -> dict[str, int]:
    """Rows of content a case still has, per table: what a purge must leave at zero."""
    async with app.database.sessions() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        counts = {
            model.__tablename__: int(
                await session.scalar(
                    select(func.count()).select_from(model).where(model.case_id == case.id)
                )
                or 0
            )
            for model in (CaseEntry, Validation, SiteQuestion, CaseTask, OutboxMessage)
        }
        counts["case_events with text"] = int(
            await session.scalar(
                select(func.count())
                .select_from(CaseEvent)
                .where(CaseEvent.case_id == case.id, CaseEvent.note_ciphertext.is_not(None))
            )
            or 0
        )
        counts["typed workplace or agency"] = int(
            case.workplace_other_ciphertext is not None or case.agency_ciphertext is not None
        )
        counts["link to the reporter"] = int(
            case.reporter_tag is not None or case.reporter_ciphertext is not None
        )
        return counts


async def age(app: App, reference: str, days: int) -> None:
    """Move a case's end ``days`` into the past, as time would."""
    async with app.database.transaction() as session:
        await session.execute(
            update(Case)
            .where(Case.reference == reference)
            .values(ended_at=utc_now() - timedelta(days=days))
        )


def retention(app: App, days: int = 90, now: datetime | None = None) -> RetentionService:
    return RetentionService(
        app.database, app.outbox, RetentionPolicy(days), now=(lambda: now) if now else utc_now
    )


async def staff_texts(app: App) -> list[str]:
    async with app.database.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.recipient == "staff")
                    .order_by(OutboxMessage.id)
                )
            )
            .scalars()
            .all()
        )
    return [
        Outbound.from_bytes(app.keyring.decrypt(r.payload_ciphertext, row_purpose(r))).text
        for r in rows
    ]


async def test_ended_cases_past_the_limit_lose_their_content_and_keep_their_counts(
    app: App,
) -> None:
    closed = await closed_by_the_worker(app)
    unvalidated = await file_a_report(app, "Nobody paid overtime.")
    await app.casework.close(ACTOR, unvalidated, unvalidated=True, reason="Factory shut down.")
    recent = await closed_by_the_worker(app)
    still_open = await file_a_report(app, "The fire exit is locked.")
    before = {
        ref: await content_rows(app, ref) for ref in (closed, unvalidated, recent, still_open)
    }
    assert all(before[closed].values()), before[closed]  # every kind of content was there
    await age(app, closed, 91)
    await age(app, unvalidated, 120)
    await age(app, recent, 89)

    run = await retention(app).run()

    assert sorted(run.purged) == sorted([closed, unvalidated])
    for reference in (closed, unvalidated):
        assert set((await content_rows(app, reference)).values()) == {0}, reference
    for reference in (recent, still_open):
        assert await content_rows(app, reference) == before[reference], "within the limit"
    listed = {case.reference: case for case in await app.staff.list_cases(ACTOR)}
    assert len(listed) == 4, "purged cases are still counted"
    assert (listed[closed].status, listed[closed].category) == ("closed", "documents")
    assert listed[unvalidated].status == "closed_unvalidated"
    shown = await app.staff.show_case(ACTOR, closed)
    assert shown.entries == []
    assert shown.workplace_typed is None
    assert shown.agency is None
    assert all(event.note is None for event in shown.events)
    assert shown.purged_at is not None
    assert shown.created_at.hour == 0, "dates stay, to the day"
    assert [e.action for e in shown.events][-1] == "content_purged"
    assert (await retention(app).run()).purged == [], "nothing is purged twice"


async def test_staff_are_warned_once_a_day_a_week_before_content_goes(app: App) -> None:
    soon = await closed_by_the_worker(app)
    later = await closed_by_the_worker(app)
    await age(app, soon, 85)
    await age(app, later, 60)
    before = len(await staff_texts(app))
    assert await retention(app).warn_daily() == 1
    assert await retention(app).warn_daily() is None, "once a day, however often it runs"
    [warning] = (await staff_texts(app))[before:]
    assert soon in warning
    assert later not in warning
    assert "passports" not in warning.lower(), "references and dates only"
    tomorrow = retention(app, now=utc_now() + timedelta(days=1))
    assert await tomorrow.warn_daily() == 1


async def test_sent_outbox_rows_go_after_a_week_and_unsent_ones_stay(app: App) -> None:
    reference = await file_a_report(app)
    await app.casework.acknowledge(ACTOR, reference)
    await app.casework.reply(ACTOR, reference, "Thanks.")
    async with app.database.transaction() as session:
        old, fresh = (
            (await session.execute(select(OutboxMessage.id).order_by(OutboxMessage.id)))
            .scalars()
            .all()
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == old)
            .values(status=OutboxStatus.SENT, sent_at=utc_now() - timedelta(days=8))
        )
    assert (await retention(app).run()).sent_outbox_deleted == 1
    async with app.database.sessions() as session:
        left = (await session.execute(select(OutboxMessage.id))).scalars().all()
    assert left == [fresh]


async def test_staff_purge_deletes_one_case_now_whatever_its_age(app: App) -> None:
    reference = await closed_by_the_worker(app)
    result = await app.retention.purge(ACTOR, reference)
    assert (result.entries, result.files) == (4, 1)  # details, photo, staff reply, answer
    assert set((await content_rows(app, reference)).values()) == {0}
    again = await app.retention.purge(ACTOR, reference)
    assert again.entries == 0
    assert again.purged_at == result.purged_at


async def test_case_entry_and_event_times_are_stored_to_the_hour(app: App) -> None:
    reference = await file_a_report(app)
    await app.casework.add_note(ACTOR, reference, "Seen.")
    await app.casework.add_worker_message(WORKER, reference, "More detail.")
    await app.casework.remediate(ACTOR, reference, Remediation("Fixed.", {}))
    await app.casework.record_validation(WORKER, reference, "yes")  # schedules the check-in
    async with app.database.sessions() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        times = [case.created_at, case.updated_at, case.ended_at]
        for column in (CaseEntry.created_at, CaseEvent.at, Validation.at, CaseTask.due_at):
            times += (await session.execute(select(column))).scalars().all()
    assert len(times) >= 14
    assert [t for t in times if t is None or (t.minute, t.second, t.microsecond) != (0, 0, 0)] == []
    shown = to_json(await app.staff.show_case(ACTOR, reference))
    assert shown["created_at"].endswith(":00:00Z")
    assert {event["at"][13:] for event in shown["events"]} == {":00:00Z"}


async def test_the_migration_truncates_existing_times_and_starts_the_clock_of_ended_cases(
    backend: Backend,
) -> None:
    from alembic import command
    from sqlalchemy import JSON, Boolean, String, column, insert, table
    from sqlalchemy.engine import Connection

    from storage.database import Database, alembic_config, upgrade_schema
    from storage.models import UTCDateTime

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0010")

    database = Database(backend.database_url)
    try:
        await upgrade_schema(database.engine)
        async with database.engine.begin() as connection:  # the test database may be at head
            await connection.run_sync(downgrade)
        moment = datetime(2026, 5, 4, 13, 47, 12, 345678, tzinfo=utc_now().tzinfo)
        cases = table(
            "cases",
            *(
                column(n, String())
                for n in (
                    "reference",
                    "status",
                    "occurred",
                    "affected",
                    "confidentiality",
                    "language",
                    "draft_key",
                    "receipt_hash",
                )
            ),
            column("categories", JSON()),
            column("danger_now", Boolean()),
            column("urgent", Boolean()),
            *(
                column(n, UTCDateTime())
                for n in ("created_at", "updated_at", "acknowledge_due_at", "response_due_at")
            ),
        )
        async with database.transaction() as session:
            await session.execute(
                insert(cases).values(
                    reference="OLD1-CASE",
                    status="closed_unvalidated",
                    occurred="week",
                    affected="me",
                    confidentiality="confidential",
                    language="en",
                    draft_key="old",
                    receipt_hash="x",
                    categories=["wages"],
                    danger_now=False,
                    urgent=False,
                    created_at=moment,
                    updated_at=moment,
                    acknowledge_due_at=moment,
                    response_due_at=moment,
                )
            )
        await database.upgrade()
        async with database.sessions() as session:
            case = await session.scalar(select(Case))
        assert case is not None
        assert case.created_at == moment.replace(minute=0, second=0, microsecond=0)
        assert case.ended_at == case.updated_at == case.created_at
    finally:
        await database.dispose()


async def test_wvb_cases_purge_deletes_the_content_audited_and_show_says_so(
    app: App, backend: Backend
) -> None:
    from storage.models import AuditEntry
    from tests.bot_driver import run_wvb

    reference = await closed_by_the_worker(app)
    env = backend.environment(app.settings)
    purged = await run_wvb(env, "cases", "purge", reference.lower(), "--json")
    assert purged.returncode == 0, purged.stderr
    result = json.loads(purged.stdout)
    assert result["reference"] == reference
    assert result["status"] == "closed"
    assert result["purged_at"].endswith("T00:00:00Z")
    assert (result["entries"], result["files"]) == (4, 1)
    assert set((await content_rows(app, reference)).values()) == {0}

    shown = await run_wvb(env, "cases", "show", reference, "--json")
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["entries"] == []
    assert case["purged_at"] == result["purged_at"]
    assert case["workplace_typed"] is None
    assert {event["note"] for event in case["events"]} == {None}
    assert "passports" not in shown.stdout.lower()
    text = await run_wvb(env, "cases", "show", reference)
    assert "content purged" in text.stdout
    async with app.database.sessions() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert "case.purge" in actions

    missing = await run_wvb(env, "cases", "purge", "ZZZZ-0000")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1


async def test_a_worker_withdraws_with_the_code_content_goes_at_once_and_staff_get_the_reference(
    app: App,
) -> None:
    from conversations.ports import StatusOutcome, WithdrawOutcome

    code = app.cases.new_receipt_code()
    reference = await file_a_report(app, code=code)
    await app.casework.acknowledge(ACTOR, reference)
    await app.casework.reply(ACTOR, reference, "Which month was not paid?")
    other_phone = "e" * 64  # /status works from any account
    found = await app.cases.check_status(other_phone, reference, code)
    assert found.outcome is StatusOutcome.FOUND
    assert found.case is not None
    proof = found.case.withdraw_token
    assert proof is not None
    assert code not in proof
    assert await app.cases.withdraw(WORKER.pseudonym, proof) is WithdrawOutcome.NOT_POSSIBLE, (
        "the proof is sealed to the account that gave the code"
    )
    before = len(await staff_texts(app))

    assert await app.cases.withdraw(other_phone, proof) is WithdrawOutcome.WITHDRAWN

    assert set((await content_rows(app, reference)).values()) == {0}
    [told] = (await staff_texts(app))[before:]
    assert reference in told
    assert "withdrawn" in told
    assert "passports" not in told.lower()
    shown = await app.staff.show_case(ACTOR, reference)
    assert shown.status == "withdrawn"
    assert shown.entries == []
    assert shown.purged_at is not None
    assert [e.action for e in shown.events][-2:] == ["withdrawn", "content_purged"]
    assert await app.cases.withdraw(other_phone, proof) is WithdrawOutcome.NOT_POSSIBLE
    again = await app.cases.check_status(other_phone, reference, code)
    assert again.case is not None
    assert again.case.status == "withdrawn"
    assert again.case.withdraw_token is None, "an ended case cannot be withdrawn"
    listed = await app.staff.list_cases(ACTOR, "withdrawn")
    assert [case.reference for case in listed] == [reference], "it still counts"


async def test_a_withdrawal_proof_expires_and_an_ended_case_offers_none(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conversations.ports import WithdrawOutcome
    from services import cases

    code = app.cases.new_receipt_code()
    reference = await file_a_report(app, code=code)
    found = await app.cases.check_status(WORKER.pseudonym, reference, code)
    assert found.case is not None
    assert found.case.withdraw_token is not None
    later = utc_now() + cases.WITHDRAW_WINDOW + timedelta(minutes=1)
    monkeypatch.setattr(cases, "utc_now", lambda: later)
    outcome = await app.cases.withdraw(WORKER.pseudonym, found.case.withdraw_token)
    assert outcome is WithdrawOutcome.NOT_POSSIBLE
    monkeypatch.undo()
    await app.casework.close(ACTOR, reference, unvalidated=True, reason="Duplicate.")
    ended = await app.cases.check_status(WORKER.pseudonym, reference, code)
    assert ended.case is not None
    assert ended.case.withdraw_token is None
    assert await app.cases.withdraw(WORKER.pseudonym, "not a proof") is WithdrawOutcome.NOT_POSSIBLE

"""Reports (``services/reports.py``): cases built through the real services — reported by
workers, acknowledged, remediated, answered, reopened, closed, withdrawn — then counted. Counts,
outcomes and medians are right; small counts are "<5", and so is the second count that would
give one of them away; nothing a worker wrote appears. On SQLite + memory and PostgreSQL +
Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import App, build_app
from conversations.ports import WithdrawOutcome
from domain.access import Actor, Forbidden
from domain.answers import Answer
from domain.categories import Category
from domain.errors import Refusal
from domain.parties import StaffRole
from domain.statuses import UNRESOLVED, CaseStatus
from domain.suppression import HIDDEN, THRESHOLD, Equation, determined
from locales import translator
from services.casework import Remediation
from services.reports import (
    CaseFacts,
    Report,
    ReportFacts,
    ReportTable,
    build_report,
    table_csv,
)
from storage.models import AuditEntry, Workplace
from tests.case_factory import ACTOR, NARRATIVE, TYPED_WORKPLACE, Programme
from tests.conftest import Backend
from tests.disclosure import peel

JANUARY = datetime(2026, 1, 5, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 9, tzinfo=UTC)
FIRST_QUARTER = {"since": date(2026, 1, 1), "until": date(2026, 3, 31)}


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[App]:
    app = await build_app(backend.settings(), upgrade_schema=True)
    try:
        yield app
    finally:
        await app.close()


async def a_first_quarter(app: App) -> None:
    """Nineteen cases, January and February 2026 (see each group), and lesson feedback."""
    casework = app.casework
    programme = Programme(app)
    await programme.workplace("Golden Thread")
    await programme.workplace("Tiny Knit")
    # A: 6 wage cases at Golden Thread, confirmed at the first ask; acknowledged after 1 day,
    # closed after 10. Their workers join the site panel.
    confirmed = [await programme.report(("wages",), "Golden Thread", JANUARY) for _ in range(6)]
    for filed in confirmed:
        assert await casework.join_site_panel(filed.worker, filed.reference)
        await casework.acknowledge(ACTOR, filed.reference)
        await casework.remediate(ACTOR, filed.reference, Remediation("Wages paid.", {}))
        await casework.record_validation(filed.worker, filed.reference, Answer.YES)
        await programme.move(filed.reference, acknowledged=JANUARY + timedelta(days=1),
                             ended=JANUARY + timedelta(days=10))  # fmt: skip
    # B: 5 hours (and wages) cases at Golden Thread: "no" at the first ask, reopened, then yes;
    # acknowledged after 3 days, closed after 20. The first one asks the site panel.
    for n in range(5):
        filed = await programme.report(("hours", "wages"), "Golden Thread", JANUARY)
        await casework.acknowledge(ACTOR, filed.reference)
        await casework.remediate(ACTOR, filed.reference, Remediation("Overtime capped.", {}),
                                 site_sample=6 if n == 0 else 0)  # fmt: skip
        await casework.record_validation(filed.worker, filed.reference, Answer.NO)
        await casework.remediate(ACTOR, filed.reference, Remediation("Capped for real.", {}))
        await casework.record_validation(filed.worker, filed.reference, Answer.YES)
        await programme.move(filed.reference, acknowledged=JANUARY + timedelta(days=3),
                             ended=JANUARY + timedelta(days=20))  # fmt: skip
    await programme.site_answers(confirmed, ["yes"] * 5 + ["no"])
    # C: 5 safety cases at a workplace the worker typed; closed unvalidated; acknowledged after
    # 2 days, closed after 30.
    for _ in range(5):
        filed = await programme.report(("safety",), None, FEBRUARY)
        await casework.acknowledge(ACTOR, filed.reference)
        await casework.close(ACTOR, filed.reference, unvalidated=True, reason="Factory closed.")
        await programme.move(filed.reference, acknowledged=FEBRUARY + timedelta(days=2),
                             ended=FEBRUARY + timedelta(days=30))  # fmt: skip
    # D: 2 fee cases at Tiny Knit, not acknowledged yet.
    for _ in range(2):
        await programme.report(("fees",), "Tiny Knit", FEBRUARY)
    # E: 1 documents case at Golden Thread, withdrawn by its worker.
    filed = await programme.report(("documents",), "Golden Thread", FEBRUARY)
    found = await app.cases.check_status(filed.worker.pseudonym, filed.reference, filed.code)
    assert found.case is not None
    assert found.case.withdraw_token is not None
    withdrawn = await app.cases.withdraw(filed.worker.pseudonym, found.case.withdraw_token)
    assert withdrawn is WithdrawOutcome.WITHDRAWN
    await programme.move(filed.reference, opened=FEBRUARY)  # withdrawing keeps only the day
    for topic, language, helpful, times in (("pay", "en", True, 7), ("pay", "th", False, 5),
                                            ("hours", "en", True, 2)):  # fmt: skip
        for _ in range(times):
            await app.learning.record_feedback(topic, language, helpful)


def column(table: ReportTable, code: str = "cases") -> dict[str, object]:
    index = table.columns.index(code)
    return {row: cells[index] for row, cells in zip(table.rows, table.cells, strict=True)}


def every_count(document: dict[str, object]) -> list[object]:
    counts: list[object] = []
    for table in document.values():
        assert isinstance(table, dict)
        counts += [cell for row in table["cells"] for cell in row]
        counts += table["row_totals"] or []
        counts += table["column_totals"] or []
        counts += [] if table["total"] is None else [table["total"]]
    return counts


async def test_a_quarter_is_counted_by_category_workplace_status_outcome_and_month(
    app: App,
) -> None:
    await a_first_quarter(app)

    report = await app.reports.summary(ACTOR, **FIRST_QUARTER)

    workplaces = report.table("by_workplace")
    assert column(workplaces) == {"Golden Thread": 12, "Tiny Knit": HIDDEN, "(unlisted)": HIDDEN}
    assert workplaces.total == 19, "the 2 cases of Tiny Knit are hidden, and the 5 unlisted"
    assert column(report.table("by_status")) == {
        "received": HIDDEN, "acknowledged": HIDDEN, "investigating": HIDDEN,
        "awaiting_validation": HIDDEN, "reopened": HIDDEN, "closed": 11,
        "closed_unvalidated": 5, "withdrawn": HIDDEN,
    }  # fmt: skip
    outcome = report.table("by_outcome")
    assert outcome.columns == ("never_reopened", "reopened")
    assert dict(zip(outcome.rows, outcome.cells, strict=True))["closed"] == (6, 5)
    assert outcome.row_totals == (11, 5, HIDDEN, HIDDEN)
    assert outcome.cells[1] == (HIDDEN, HIDDEN), "5 unvalidated, never reopened: 0 hides 5"
    assert (outcome.column_totals, outcome.total) == ((14, 5), 19)
    categories = report.table("by_category")
    assert dict(zip(categories.rows, categories.cells, strict=True))["wages"] == (6, 5)
    assert categories.row_totals is not None
    assert dict(zip(categories.rows, categories.row_totals, strict=True))["wages"] == 11
    assert categories.column_totals == (19, 5), "every case has one main category"
    month = report.table("by_month")
    assert month.rows == ("2026-01", "2026-02", "2026-03")
    assert month.cells[0] == (11, HIDDEN, HIDDEN, HIDDEN)
    assert month.row_totals == (11, HIDDEN, HIDDEN), "March's 0 would give February's 8"
    assert month.column_totals == (11, 5, HIDDEN, HIDDEN)

    february = await app.reports.summary(ACTOR, since=date(2026, 2, 1), until=date(2026, 3, 31))
    assert february.table("by_status").total == 8
    assert february.table("by_month").rows == ("2026-02", "2026-03")


async def test_medians_first_asks_site_answers_and_lesson_feedback(app: App) -> None:
    await a_first_quarter(app)

    report = await app.reports.summary(ACTOR, **FIRST_QUARTER)

    times = report.table("response_times")
    assert times.cells == ((16,), (16,))
    measures = {measure.code: measure.values for measure in times.measures}
    # acknowledged after 1 day (6 cases), 2 (5) and 3 (5); closed after 10 (6), 20 (5), 30 (5)
    assert measures == {"median_days": (2.0, 20.0), "p90_days": (3.0, 30.0)}
    first = report.table("first_validation")
    assert column(first, "remediations") == {"yes": 6, "partly": HIDDEN, "no": 5,
                                             "none": HIDDEN}  # fmt: skip
    assert first.total == 11
    [share] = first.measures
    assert share.values == (0.545, HIDDEN, 0.455, HIDDEN)
    site = report.table("site_validation")
    assert column(site, "answers") == {"yes": 5, "partly": HIDDEN, "no": HIDDEN,
                                       "unsure": HIDDEN}  # fmt: skip
    assert site.total == 6
    lessons = report.table("lesson_feedback")
    assert dict(zip(lessons.rows, lessons.cells, strict=True))["pay"] == (7, 5)
    assert dict(zip(lessons.rows, lessons.cells, strict=True))["hours"] == (HIDDEN, HIDDEN)
    assert (lessons.column_totals, lessons.total) == ((9, 5), 14)


async def test_the_report_holds_counts_and_codes_only(app: App) -> None:
    await a_first_quarter(app)

    report = await app.reports.summary(ACTOR, **FIRST_QUARTER)

    document = report.to_json()
    assert list(document) == [table.key for table in report.tables]
    assert {"by_category", "by_workplace", "by_status", "by_outcome", "by_month"} <= set(document)
    for count in every_count(document):
        assert count == HIDDEN or (type(count) is int and count >= THRESHOLD), count
    text = json.dumps(document) + "".join(
        cell for table in report.tables for row in table.text_rows() for cell in row
    )
    for words in (NARRATIVE, "Somchai", TYPED_WORKPLACE, "Sunrise", "Wages paid",
                  "Factory closed"):  # fmt: skip
        assert words not in text


async def test_a_small_programme_shows_nothing_but_hidden_counts(app: App) -> None:
    programme = Programme(app)
    await programme.workplace("Golden Thread")
    await programme.report(("child",), "Golden Thread", JANUARY)

    report = await app.reports.summary(ACTOR)

    for count in every_count(report.to_json()):
        assert count == HIDDEN
    times = report.table("response_times")
    assert {value for measure in times.measures for value in measure.values} == {HIDDEN}


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_every_role_may_see_reports_and_each_view_is_audited(app: App) -> None:
    for role in StaffRole:
        actor = Actor.staff(f"staff-{role}", role, surface="web")
        report = await app.reports.summary(actor, since=date(2026, 1, 1))
        assert isinstance(report, Report)
    async with app.database.sessions() as session:
        views = (
            await session.execute(
                select(AuditEntry.actor, AuditEntry.details)
                .where(AuditEntry.action == "reports.view")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [actor for actor, _ in views] == [f"web:staff-{role}" for role in StaffRole]
    assert views[0][1] == {"since": "2026-01-01", "until": None}


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_period_that_ends_before_it_starts_is_refused(app: App) -> None:
    with pytest.raises(Refusal) as refused:
        await app.reports.summary(ACTOR, since=date(2026, 3, 1), until=date(2026, 2, 1))
    assert refused.value.field == "until"
    assert not isinstance(refused.value, Forbidden)


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_listed_workplaces_are_rows_even_without_cases(app: App) -> None:
    async with app.database.transaction() as session:
        session.add(Workplace(name="Closed Mill", active=False))
    report = await app.reports.summary(ACTOR)
    assert report.table("by_workplace").rows == ("Closed Mill", "(unlisted)")


def test_titles_and_labels_speak_the_staff_members_language_and_names_stay_as_they_are() -> None:
    thai = translator("th").gettext
    report = build_report(ReportFacts([], [(1, "Received")], {}, {}), None, None,
                          date(2026, 3, 1))  # fmt: skip
    workplaces = report.table("by_workplace")
    assert workplaces.to_json(thai)["title"] == "เรื่องร้องเรียนตามที่ทำงาน"
    assert [workplaces.row_label(row, thai) for row in range(2)] == [
        "Received", "ที่ทำงานอื่นหรือไม่อยู่ในรายการ",
    ], "a workplace named like a status keeps its name"  # fmt: skip
    assert table_csv(workplaces, thai).splitlines()[0] == "ที่ทำงาน,เรื่องร้องเรียน"
    assert report.table("by_status").row_label(0, thai) == "ส่งถึงแล้ว"


# -- what a reader can work out from a whole report ----------------------------------------------

Position = tuple[str, str, int, int]  # table, c(ell) r(ow total) k (column total) g(rand), row, col


def published_counts(document: dict[str, Any]) -> dict[Position, Any]:
    found: dict[Position, Any] = {}
    for key, table in document.items():
        for i, row in enumerate(table["cells"]):
            for j, count in enumerate(row):
                found[key, "c", i, j] = count
        for i, count in enumerate(table["row_totals"] or []):
            found[key, "r", i, 0] = count
        for j, count in enumerate(table["column_totals"] or []):
            found[key, "k", 0, j] = count
        if table["total"] is not None:
            found[key, "g", 0, 0] = table["total"]
    return found


def what_a_reader_knows(document: dict[str, Any]) -> list[tuple[Position, list[Position]]]:
    """Every sum a reader of the report knows: within each table, and between tables that count
    the same cases (written here from what the tables mean, not from the service's code)."""
    sums: list[tuple[Position, list[Position]]] = []
    for key, table in document.items():
        rows, columns = range(len(table["rows"])), range(len(table["columns"]))
        if table["row_totals"] is not None:
            sums += [((key, "r", i, 0), [(key, "c", i, j) for j in columns]) for i in rows]
            if table["total"] is not None:
                sums.append(((key, "g", 0, 0), [(key, "r", i, 0) for i in rows]))
        if table["column_totals"] is not None:
            sums += [((key, "k", 0, j), [(key, "c", i, j) for i in rows]) for j in columns]
            if table["total"] is not None:
                sums.append(((key, "g", 0, 0), [(key, "k", 0, j) for j in columns]))
        if table["total"] is not None:
            sums.append(((key, "g", 0, 0), [(key, "c", i, j) for i in rows for j in columns]))
    cases: Position = ("by_outcome", "g", 0, 0)
    sums += [(cases, [(key, "g", 0, 0)]) for key in ("by_workplace", "by_status", "by_month")]
    sums.append((cases, [("by_category", "k", 0, 0)]))  # each case has one main category
    statuses, outcomes = document["by_status"]["rows"], document["by_outcome"]["rows"]
    for i, outcome in enumerate(outcomes):
        sums.append((("by_outcome", "r", i, 0), [("by_month", "k", 0, i)]))
        if outcome != "open":
            sums.append(
                (("by_outcome", "r", i, 0), [("by_status", "c", statuses.index(outcome), 0)])
            )
    still_open = [("by_status", "c", statuses.index(s), 0) for s in UNRESOLVED]
    sums.append((("by_outcome", "r", outcomes.index("open"), 0), still_open))
    closed = [("by_outcome", "r", outcomes.index(s), 0) for s in ("closed", "closed_unvalidated")]
    sums.append((("response_times", "c", 1, 0), closed))
    return sums


@st.composite
def case_facts(draw: st.DrawFn) -> CaseFacts:
    status = draw(st.sampled_from(list(CaseStatus)))
    opened = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 24 * 110)))
    later = st.builds(lambda days: opened + timedelta(days=days), st.integers(0, 60))
    return CaseFacts(
        status=status.value,
        categories=tuple(draw(st.lists(st.sampled_from(list(Category)), min_size=1, max_size=3,
                                       unique=True))),
        workplace_id=draw(st.sampled_from([None, 1, 2, 3])),
        opened=opened,
        acknowledged=None if status == CaseStatus.RECEIVED else draw(st.none() | later),
        closed=draw(later) if status in (CaseStatus.CLOSED,
                                         CaseStatus.CLOSED_UNVALIDATED) else None,
        reopened=draw(st.booleans()),
        first_answer=draw(st.sampled_from([None, "yes", "partly", "no", "none"])),
    )  # fmt: skip


@given(st.lists(case_facts(), min_size=10, max_size=80), st.sampled_from([None, date(2026, 1, 1)]))
@settings(max_examples=100, deadline=None)
def test_no_hidden_count_can_be_worked_out_from_the_whole_report(
    cases: list[CaseFacts], since: date | None
) -> None:
    """Random cases of the first four months of 2026 (the facts of a period are the cases
    opened in it), with many small counts."""
    facts = ReportFacts(cases, [(1, "Golden Thread"), (2, "Tiny Knit"), (3, "Sunrise")],
                        {"yes": 6, "no": 2}, {"pay": (9, 3)})  # fmt: skip
    document = build_report(facts, since, date(2026, 4, 30), date(2026, 5, 1)).to_json()
    counts = published_counts(document)
    for count in counts.values():
        assert count == HIDDEN or (type(count) is int and count >= THRESHOLD), count
    sums = what_a_reader_knows(document)
    assert peel(sums, counts) == {}
    hidden = {position for position, count in counts.items() if count == HIDDEN}
    assert determined(hidden, [Equation(total, tuple(parts)) for total, parts in sums]) == []

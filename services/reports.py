"""Reports for programme staff: how many cases, about what, where, how they ended and how fast,
with every small count hidden (``domain/suppression.py``). The CLI (`wvb reports summary`) and
the web console's /reports page show the same ``Report``; no surface counts anything itself.

What is counted, and from where (docs/ARCHITECTURE.md, "Reports"):

- the cases *opened* in the period (``cases.created_at``, UTC days, both ends included);
- by category: a case names one or more categories; it is counted once under its first (the
  *main* category, the one `wvb cases list` shows) and once more under each other it names
  (*also named*), so the main column adds up to the cases and a row to the cases naming it;
- by workplace: the listed workplace a worker chose; a workplace a worker typed, or none, is
  "other or unlisted" — what a worker typed is never shown;
- by outcome: closed with the worker's yes, closed unvalidated, withdrawn, still open, each
  split by whether the case was ever reopened after a worker's "no" or "partly"
  (``case_events``, which are kept when a case's content is deleted);
- days from opening to acknowledgement (the first move out of ``received`` that is not a
  withdrawal) and to closure (closed or closed unvalidated: ``cases.ended_at``), as median and
  90th percentile, shown only over 5 cases or more;
- the first remediation round of each case: answered yes, partly, no, or not answered (the
  share answered yes is "confirmed at the first ask");
- site-validation answers (``validations`` from other workers of the workplace; deleted with a
  case's content, so they count only cases whose content is still kept);
- lesson "was this helpful" answers per topic, all languages and all time (the counters keep
  no dates).

No report holds free text: codes, counts, listed workplace names and months only.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.categories import CATEGORIES
from domain.answers import VALIDATION_ANSWERS, Answer
from domain.categories import Category
from domain.errors import Refusal
from domain.history import CaseAction, validation_action
from domain.parties import Respondent
from domain.statuses import TERMINAL, UNRESOLVED, CaseStatus
from domain.suppression import HIDDEN, Count, LinkedTables, Suppressed, TableKeys
from locales import N_, staff_gettext
from locales.education import TOPICS
from services import audit
from services.access import ActorLike, require
from storage.database import Database
from storage.models import Case, CaseEvent, LessonFeedback, Validation, Workplace, utc_now

#: Translates a staff-facing message id: ``locales.staff_gettext``, or a console language's.
Gettext = Callable[[str], str]

#: The tables of a summary, in the order they are shown; each is also a JSON key.
TABLES = (
    "by_category", "by_workplace", "by_status", "by_outcome", "by_month", "response_times",
    "first_validation", "site_validation", "lesson_feedback",
)  # fmt: skip

TOTAL = N_("Total")
#: The row of the cases whose worker typed a workplace, or named none.
UNLISTED = "(unlisted)"
#: How an outcome is named: a terminal status, or still open.
OPEN = "open"
OUTCOMES = (CaseStatus.CLOSED.value, CaseStatus.CLOSED_UNVALIDATED.value,
            CaseStatus.WITHDRAWN.value, OPEN)  # fmt: skip
OUTCOME_LABELS = {
    CaseStatus.CLOSED: N_("Closed with the worker's yes"),
    CaseStatus.CLOSED_UNVALIDATED: N_("Closed unvalidated"),
    CaseStatus.WITHDRAWN: N_("Withdrawn"),
    OPEN: N_("Still open"),
}
STATUS_LABELS = {
    CaseStatus.RECEIVED: N_("Received"),
    CaseStatus.ACKNOWLEDGED: N_("Acknowledged"),
    CaseStatus.INVESTIGATING: N_("Investigating"),
    CaseStatus.AWAITING_VALIDATION: N_("Awaiting validation"),
    CaseStatus.REOPENED: N_("Reopened"),
    CaseStatus.CLOSED: N_("Closed"),
    CaseStatus.CLOSED_UNVALIDATED: N_("Closed unvalidated"),
    CaseStatus.WITHDRAWN: N_("Withdrawn"),
}
ANSWER_LABELS = {
    Answer.YES: N_("Yes"),
    Answer.PARTLY: N_("Partly"),
    Answer.NO: N_("No"),
    Answer.UNSURE: N_("Not sure"),
}
#: The first remediation round of a case that no "yes", "partly" or "no" answered (yet).
NO_ANSWER = "none"
#: The worker's answers that end a remediation round, by the case event that records them.
_DECISIVE = {validation_action(answer): answer.value for answer in (Answer.YES, Answer.PARTLY,
                                                                     Answer.NO)}  # fmt: skip


@dataclass(frozen=True)
class Label:
    """A row's label: a message id to translate, or a name shown as it is (a workplace, a
    month)."""

    text: str
    translate: bool = True

    def show(self, gettext: Gettext) -> str:
        return gettext(self.text) if self.translate else self.text


@dataclass(frozen=True)
class Measure:
    """A statistic beside a table's counts, one per row (days, a share): a number, or
    ``HIDDEN`` where the count it rests on is hidden."""

    code: str
    label: str  # message id
    values: tuple[float | str, ...]
    percent: bool = False  # a share, shown as a percentage

    def text(self, row: int) -> str:
        value = self.values[row]
        if isinstance(value, str):
            return value
        return f"{value:.0%}" if self.percent else f"{value:.1f}"


@dataclass(frozen=True)
class ReportTable:
    """One suppressed table: every count is an int of at least 5 or ``HIDDEN`` ("<5").

    ``rows`` and ``columns`` are codes (category codes, statuses, ``YYYY-MM``, listed workplace
    names); ``title``, ``row_header`` and the column labels are message ids. A table publishes
    the margins it has: ``row_totals`` (a cell per row), ``column_totals`` (per column),
    ``total`` (the grand total); None where it has none."""

    key: str
    title: str
    row_header: str
    rows: tuple[str, ...]
    row_labels: tuple[Label, ...]
    columns: tuple[str, ...]
    column_labels: tuple[str, ...]
    cells: tuple[tuple[Count, ...], ...]
    row_totals: tuple[Count, ...] | None = None
    column_totals: tuple[Count, ...] | None = None
    total: Count | None = None
    measures: tuple[Measure, ...] = ()

    def row_label(self, row: int, gettext: Gettext = staff_gettext) -> str:
        return self.row_labels[row].show(gettext)

    def chart_counts(self) -> tuple[Count, ...]:
        """One count per row for a bar chart: the row totals, or the only column."""
        return self.row_totals or tuple(row[0] for row in self.cells)

    def text_rows(self, gettext: Gettext = staff_gettext) -> list[list[str]]:
        """The table as shown, header first and the totals last: what the CLI prints and the
        CSV holds, cell for cell."""
        header = [gettext(self.row_header), *map(gettext, self.column_labels)]
        if self.row_totals is not None:
            header.append(gettext(TOTAL))
        header += [gettext(measure.label) for measure in self.measures]
        shown = [header]
        for index, cells in enumerate(self.cells):
            line = [self.row_label(index, gettext), *map(str, cells)]
            if self.row_totals is not None:
                line.append(str(self.row_totals[index]))
            shown.append(line + [measure.text(index) for measure in self.measures])
        if self.column_totals is not None or self.total is not None:
            if self.column_totals is not None:
                footer = list(map(str, self.column_totals))
            elif self.row_totals is None:  # one column: its total is the table's
                footer = [str(self.total)]
            else:
                footer = [""] * len(self.columns)
            if self.row_totals is not None:
                footer.append("" if self.total is None else str(self.total))
            shown.append([gettext(TOTAL), *footer, *[""] * len(self.measures)])
        return shown

    def to_json(self, gettext: Gettext = staff_gettext) -> dict[str, object]:
        return {
            "title": gettext(self.title),
            "rows": list(self.rows),
            "columns": list(self.columns),
            "cells": [list(row) for row in self.cells],
            "row_totals": None if self.row_totals is None else list(self.row_totals),
            "column_totals": None if self.column_totals is None else list(self.column_totals),
            "total": self.total,
            "measures": {measure.code: list(measure.values) for measure in self.measures},
        }


@dataclass(frozen=True)
class Report:
    """The tables of one summary, over the cases opened from ``since`` to ``until``."""

    since: date | None
    until: date | None
    tables: tuple[ReportTable, ...]

    def table(self, key: str) -> ReportTable:
        for table in self.tables:
            if table.key == key:
                return table
        raise KeyError(key)

    def to_json(self, gettext: Gettext = staff_gettext) -> dict[str, object]:
        """``{table key: table}``: the document of `wvb reports summary --json`."""
        return {table.key: table.to_json(gettext) for table in self.tables}


def table_csv(table: ReportTable, gettext: Gettext = staff_gettext) -> str:
    """The table as CSV, the same cells as shown ("<5" as it is). A text that a spreadsheet
    would take for a formula (starting with = + - @, a tab or a return) gets a leading "'"."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    for line in table.text_rows(gettext):
        writer.writerow([_not_a_formula(text) for text in line])
    return output.getvalue()


def _not_a_formula(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# -- what is read --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What the reports need of one case: codes and moments, no content."""

    status: str
    categories: tuple[str, ...]  # known codes, each once; the first is the main one
    workplace_id: int | None
    opened: datetime
    acknowledged: datetime | None
    closed: datetime | None  # when it was closed or closed unvalidated
    reopened: bool
    first_answer: str | None  # the first remediation round's answer; None: never remediated


@dataclass(frozen=True)
class ReportFacts:
    cases: list[CaseFacts]
    workplaces: list[tuple[int, str]]  # every listed workplace, active or not, by name
    site_answers: dict[str, int]
    lesson_feedback: dict[str, tuple[int, int]]  # topic -> (helpful, not helpful)


@dataclass(frozen=True)
class _Event:
    action: str
    from_status: str | None
    to_status: str | None
    at: datetime


class ReportService:
    def __init__(self, database: Database, now: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self.now = now

    async def summary(
        self, actor: ActorLike, *, since: date | None = None, until: date | None = None
    ) -> Report:
        """Every table over the cases opened from ``since`` to ``until`` (UTC days, both
        included; open-ended when None), suppressed. The view is audited."""
        who = await require(self.database, actor, "reports.view", "reports.summary")
        if since is not None and until is not None and until < since:
            raise Refusal("until", "the period ends before it starts")
        async with self.database.transaction() as session:
            opened = select(Case.id)
            if since is not None:
                opened = opened.where(Case.created_at >= _midnight(since))
            if until is not None:
                opened = opened.where(Case.created_at < _midnight(until + timedelta(days=1)))
            facts = ReportFacts(
                cases=await _cases(session, opened),
                # By name in code points: the same order on every database and collation.
                workplaces=sorted(
                    (
                        (id_, name)
                        for id_, name in await session.execute(select(Workplace.id, Workplace.name))
                    ),
                    key=lambda workplace: workplace[1],
                ),
                site_answers=await _site_answers(session, opened),
                lesson_feedback={
                    row.topic: (int(row.helpful or 0), int(row.unhelpful or 0))
                    for row in await session.execute(
                        select(
                            LessonFeedback.topic,
                            func.sum(LessonFeedback.helpful_count).label("helpful"),
                            func.sum(LessonFeedback.unhelpful_count).label("unhelpful"),
                        ).group_by(LessonFeedback.topic)
                    )
                },
            )
            audit.record(
                session, who, "reports.view", None,
                since=since.isoformat() if since else None,
                until=until.isoformat() if until else None,
            )  # fmt: skip
        return build_report(facts, since, until, self.now().date())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def _cases(session: AsyncSession, opened: Select[int]) -> list[CaseFacts]:
    history: dict[int, list[_Event]] = defaultdict(list)
    events = await session.execute(
        select(CaseEvent.case_id, CaseEvent.action, CaseEvent.from_status, CaseEvent.to_status,
               CaseEvent.at)
        .where(CaseEvent.case_id.in_(opened.scalar_subquery()))
        .order_by(CaseEvent.case_id, CaseEvent.id)
    )  # fmt: skip
    for case_id, action, from_status, to_status, at in events:
        history[case_id].append(_Event(action, from_status, to_status, at))
    rows = await session.execute(
        select(Case.id, Case.status, Case.categories, Case.workplace_id, Case.created_at,
               Case.ended_at, Case.updated_at)
        .where(Case.id.in_(opened.scalar_subquery()))
        .order_by(Case.id)
    )  # fmt: skip
    return [
        _facts(status, categories, workplace_id, created, ended or updated, history[case_id])
        for case_id, status, categories, workplace_id, created, ended, updated in rows
    ]


def _facts(
    status: str,
    categories: Sequence[str] | None,
    workplace_id: int | None,
    opened: datetime,
    ended: datetime,
    events: list[_Event],
) -> CaseFacts:
    """``ended``: ``cases.ended_at``, which every move to an end sets (else its last change)."""
    closed = ended if status in (CaseStatus.CLOSED, CaseStatus.CLOSED_UNVALIDATED) else None
    return CaseFacts(
        status=status,
        categories=_category_codes(categories or ()),
        workplace_id=workplace_id,
        opened=opened,
        acknowledged=next(
            (
                event.at
                for event in events
                if event.from_status == CaseStatus.RECEIVED
                and event.to_status not in (None, CaseStatus.RECEIVED, CaseStatus.WITHDRAWN)
            ),
            None,
        ),
        closed=closed,
        reopened=any(event.to_status == CaseStatus.REOPENED for event in events),
        first_answer=_first_answer(events),
    )


def _category_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """Known codes in order, each once; an unknown (stale) code counts as "other", and a case
    naming none has "other" as its main category, so every case has exactly one."""
    known = set(Category)
    found = dict.fromkeys(code if code in known else Category.OTHER.value for code in codes)
    return tuple(found) or (Category.OTHER.value,)


def _first_answer(events: Sequence[_Event]) -> str | None:
    """How the worker answered the first remediation round: yes, partly, no, or ``NO_ANSWER``
    (waiting, only "not sure", or the case ended first); None when no round was asked."""
    rounds = 0
    for event in events:
        if event.action == CaseAction.REMEDIATION:
            rounds += 1
            if rounds > 1:
                break
        elif rounds == 1 and event.action in _DECISIVE:
            return _DECISIVE[event.action]
    return NO_ANSWER if rounds else None


async def _site_answers(session: AsyncSession, opened: Select[int]) -> dict[str, int]:
    rows = await session.execute(
        select(Validation.answer, func.count())
        .where(Validation.respondent == Respondent.SITE)
        .where(Validation.case_id.in_(opened.scalar_subquery()))
        .group_by(Validation.answer)
    )
    return {answer: int(count) for answer, count in rows}


# -- what is shown -------------------------------------------------------------------------------


def _months(first: date, last: date) -> list[str]:
    """Every month from ``first`` to ``last`` as ``YYYY-MM``, a month without cases included
    (leaving it out would say it had none)."""
    found = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _days(since: datetime, moment: datetime) -> float:
    return max(0.0, (moment - since) / timedelta(days=1))


def _outcome(status: str) -> str:
    return status if status in TERMINAL else OPEN


@dataclass
class _Layout:
    """A table being laid out: its keys in the linked tables, and how to show it."""

    keys: TableKeys
    key: str
    title: str
    row_header: str
    rows: list[str]
    row_labels: list[Label]
    columns: tuple[str, ...]
    column_labels: tuple[str, ...]
    measures: Callable[[Suppressed], tuple[Measure, ...]] = field(default=lambda shown: ())

    def publish(self, shown: Suppressed) -> ReportTable:
        keys = self.keys
        return ReportTable(
            key=self.key,
            title=self.title,
            row_header=self.row_header,
            rows=tuple(self.rows),
            row_labels=tuple(self.row_labels),
            columns=self.columns,
            column_labels=self.column_labels,
            cells=tuple(
                tuple(shown.count(keys.cell(i, j)) for j in range(len(self.columns)))
                for i in range(len(self.rows))
            ),
            row_totals=(
                tuple(shown.count(keys.row_total(i)) for i in range(len(self.rows)))
                if keys.row_totals
                else None
            ),
            column_totals=(
                tuple(shown.count(keys.column_total(j)) for j in range(len(self.columns)))
                if keys.column_totals
                else None
            ),
            total=shown.count(keys.total) if keys.has_total else None,
            measures=self.measures(shown),
        )


def build_report(facts: ReportFacts, since: date | None, until: date | None, today: date) -> Report:
    """The suppressed tables of these facts (pure: tests feed it facts of their own)."""
    cases = facts.cases
    tables = LinkedTables()
    layouts: list[_Layout] = []

    def add(
        key: str, title: str, row_header: str, rows: Sequence[tuple[str, Label]],
        columns: Sequence[tuple[str, str]], cells: list[list[int]], *, margins: bool = False,
        total: bool = True,
    ) -> _Layout:  # fmt: skip
        layout = _Layout(
            tables.add(key, cells, row_totals=margins, column_totals=margins, total=total),
            key, title, row_header, [code for code, _ in rows], [label for _, label in rows],
            tuple(code for code, _ in columns), tuple(label for _, label in columns),
        )  # fmt: skip
        layouts.append(layout)
        return layout

    # Cases by category: main (first named) and also named. No grand total: the mentions
    # add up to nothing a reader needs, and it would give a hidden column total away.
    category_rows = [(str(code), Label(CATEGORIES[code])) for code in Category]
    main = Counter(case.categories[0] for case in cases)
    also = Counter(code for case in cases for code in case.categories[1:])
    by_category = add(
        "by_category", N_("Cases by category"), N_("Category"), category_rows,
        [("main", N_("Main category")), ("also", N_("Also named"))],
        [[main[code], also[code]] for code, _ in category_rows], margins=True, total=False,
    )  # fmt: skip

    listed = {workplace_id for workplace_id, _ in facts.workplaces}
    at = Counter(case.workplace_id if case.workplace_id in listed else None for case in cases)
    by_workplace = add(
        "by_workplace", N_("Cases by workplace"), N_("Workplace"),
        [(name, Label(name, translate=False)) for _, name in facts.workplaces]
        + [(UNLISTED, Label(N_("Other or unlisted workplace")))],
        [("cases", N_("Cases"))],
        [[at[workplace_id]] for workplace_id, _ in facts.workplaces] + [[at[None]]],
    )  # fmt: skip

    statuses = Counter(case.status for case in cases)
    by_status = add(
        "by_status", N_("Cases by status"), N_("Status"),
        [(status.value, Label(STATUS_LABELS[status])) for status in CaseStatus],
        [("cases", N_("Cases"))], [[statuses[status]] for status in CaseStatus],
    )  # fmt: skip

    outcome_rows = [(outcome, Label(OUTCOME_LABELS[outcome])) for outcome in OUTCOMES]
    ended = Counter((_outcome(case.status), case.reopened) for case in cases)
    by_outcome = add(
        "by_outcome", N_("Cases by outcome"), N_("Outcome"), outcome_rows,
        [("never_reopened", N_("Never reopened")),
         ("reopened", N_("Reopened after a no or partly"))],
        [[ended[outcome, False], ended[outcome, True]] for outcome in OUTCOMES], margins=True,
    )  # fmt: skip

    first = since or min([case.opened.date() for case in cases] + [until or today])
    months = _months(first, max(first, until or today))
    per_month = Counter((f"{case.opened:%Y-%m}", _outcome(case.status)) for case in cases)
    by_month = add(
        "by_month", N_("Cases opened per month, by outcome"), N_("Month"),
        [(month, Label(month, translate=False)) for month in months],
        [(outcome, OUTCOME_LABELS[outcome]) for outcome in OUTCOMES],
        [[per_month[month, outcome] for outcome in OUTCOMES] for month in months],
        margins=True,
    )  # fmt: skip

    to_acknowledge = [_days(c.opened, c.acknowledged) for c in cases if c.acknowledged]
    to_close = [_days(c.opened, c.closed) for c in cases if c.closed]
    durations = (to_acknowledge, to_close)
    response_times = add(
        "response_times", N_("Days to acknowledgement and to closure"), N_("Measure"),
        [("acknowledgement", Label(N_("Acknowledgement"))), ("closure", Label(N_("Closure")))],
        [("cases", N_("Cases"))], [[len(days)] for days in durations], total=False,
    )  # fmt: skip
    response_times.measures = lambda shown: _percentiles(response_times.keys, shown, durations)

    first_rounds = Counter(case.first_answer for case in cases if case.first_answer)
    answers = (Answer.YES.value, Answer.PARTLY.value, Answer.NO.value, NO_ANSWER)
    first_validation = add(
        "first_validation", N_("The first remediation round: what the worker answered"),
        N_("Answer"),
        [(Answer.YES.value, Label(N_("Yes, confirmed at the first ask"))),
         (Answer.PARTLY.value, Label(ANSWER_LABELS[Answer.PARTLY])),
         (Answer.NO.value, Label(ANSWER_LABELS[Answer.NO])),
         (NO_ANSWER, Label(N_("No answer (yet)")))],
        [("remediations", N_("Remediations"))], [[first_rounds[answer]] for answer in answers],
    )  # fmt: skip
    first_validation.measures = lambda shown: (_shares(first_validation.keys, shown, 4),)

    add(
        "site_validation", N_("Site validation: other workers' answers"), N_("Answer"),
        [(answer.value, Label(ANSWER_LABELS[answer])) for answer in VALIDATION_ANSWERS],
        [("answers", N_("Answers"))],
        [[facts.site_answers.get(answer, 0)] for answer in VALIDATION_ANSWERS],
    )  # fmt: skip

    topics = list(TOPICS) + sorted(set(facts.lesson_feedback) - set(TOPICS))
    add(
        "lesson_feedback", N_("Was this lesson helpful?"), N_("Lesson"),
        [(topic, Label(TOPICS[topic]) if topic in TOPICS else Label(topic, translate=False))
         for topic in topics],
        [("helpful", N_("Helpful")), ("not_helpful", N_("Not helpful"))],
        [list(facts.lesson_feedback.get(topic, (0, 0))) for topic in topics], margins=True,
    )  # fmt: skip

    # What the tables share: a hidden count must stay hidden in every table that shows it.
    cases_total = by_outcome.keys.total
    for each in (by_category.keys.column_total(0), by_workplace.keys.total,
                 by_status.keys.total, by_month.keys.total):  # fmt: skip
        tables.same(each, cases_total)
    for index, outcome in enumerate(OUTCOMES):
        tables.same(by_month.keys.column_total(index), by_outcome.keys.row_total(index))
        if outcome != OPEN:
            status_row = list(CaseStatus).index(CaseStatus(outcome))
            tables.same(by_status.keys.cell(status_row, 0), by_outcome.keys.row_total(index))
    tables.sums(
        by_outcome.keys.row_total(OUTCOMES.index(OPEN)),
        [by_status.keys.cell(list(CaseStatus).index(s), 0) for s in CaseStatus if s in UNRESOLVED],
    )
    tables.sums(
        response_times.keys.cell(1, 0),
        [by_outcome.keys.row_total(OUTCOMES.index(s)) for s in (CaseStatus.CLOSED,
                                                                 CaseStatus.CLOSED_UNVALIDATED)],
    )  # fmt: skip
    shown = tables.suppress()
    return Report(since, until, tuple(layout.publish(shown) for layout in layouts))


def _percentiles(
    keys: TableKeys, shown: Suppressed, durations: Sequence[list[float]]
) -> tuple[Measure, ...]:
    """Median and 90th percentile (inclusive method: interpolated between the cases' own
    values) of each row's days, hidden with the row's count."""
    medians: list[float | str] = []
    highs: list[float | str] = []
    for row, days in enumerate(durations):
        if shown.is_hidden(keys.cell(row, 0)):
            medians.append(HIDDEN)
            highs.append(HIDDEN)
        else:
            medians.append(round(statistics.median(days), 1))
            highs.append(round(statistics.quantiles(days, n=10, method="inclusive")[8], 1))
    return (
        Measure("median_days", N_("Median days"), tuple(medians)),
        Measure("p90_days", N_("90th percentile, days"), tuple(highs)),
    )


def _shares(keys: TableKeys, shown: Suppressed, rows: int) -> Measure:
    """Each row's share of the total, where both are published (so it tells nothing more)."""
    total = shown.count(keys.total)
    values: list[float | str] = []
    for row in range(rows):
        count = shown.count(keys.cell(row, 0))
        if isinstance(count, int) and isinstance(total, int):
            values.append(round(count / total, 3))
        else:
            values.append(HIDDEN)
    return Measure("share", N_("Share"), tuple(values), percent=True)

"""`wvb reports summary`: the installed command, as scripts and staff run it, on SQLite and
PostgreSQL. `--json` is one object of tables whose every count is an int of at least 5 or "<5"
(CONTRACT.md); `--csv TABLE` is the same table as CSV, safe to open in a spreadsheet; the plain
output is tables; a wrong date or table is a usage mistake."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.app import open_app
from bot.settings import Settings
from domain.suppression import HIDDEN, THRESHOLD
from storage.models import AuditEntry
from tests.bot_driver import run_wvb
from tests.case_factory import NARRATIVE, TYPED_WORKPLACE, Programme
from tests.conftest import Backend

JANUARY = datetime(2026, 1, 12, tzinfo=UTC)
#: A workplace whose name a spreadsheet would run as a formula.
FORMULA = '=HYPERLINK("http://example.org","Mill")'


async def reports_of_a_small_programme(backend: Backend) -> tuple[Settings, dict[str, str]]:
    """Six cases at Golden Thread, one at a workplace named like a formula, one typed."""
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        programme = Programme(app)
        await programme.workplace("Golden Thread")
        await programme.workplace(FORMULA)
        for _ in range(6):
            await programme.report(("wages",), "Golden Thread", JANUARY)
        await programme.report(("hours",), FORMULA, JANUARY)
        await programme.report(("safety",), None, JANUARY)
    return settings, backend.environment(settings)


def counts_of(document: dict[str, Any]) -> list[Any]:
    found = []
    for table in document.values():
        found += [cell for row in table["cells"] for cell in row]
        found += (table["row_totals"] or []) + (table["column_totals"] or [])
        found += [] if table["total"] is None else [table["total"]]
    return found


async def test_summary_json_is_one_object_of_tables_with_counts_of_5_or_more_or_hidden(
    backend: Backend,
) -> None:
    settings, env = await reports_of_a_small_programme(backend)

    result = await run_wvb(env, "reports", "summary", "--since", "2026-01-01", "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {"by_category", "by_workplace", "by_status", "by_outcome", "by_month"} <= set(document)
    counts = counts_of(document)
    assert len(counts) > 50
    for count in counts:
        assert count == HIDDEN or (type(count) is int and count >= THRESHOLD), count
    workplaces = document["by_workplace"]
    assert workplaces["rows"] == ["=HYPERLINK(\"http://example.org\",\"Mill\")", "Golden Thread",
                                  "(unlisted)"]  # fmt: skip
    assert workplaces["cells"] == [[HIDDEN], [6], [HIDDEN]]
    assert workplaces["total"] == 8
    assert document["by_status"]["cells"][0] == [8], "eight received"
    assert document["by_month"]["rows"][0] == "2026-01"
    assert NARRATIVE not in result.stdout
    assert TYPED_WORKPLACE not in result.stdout

    async with open_app(settings) as app, app.database.sessions() as session:
        viewed = (await session.scalars(
                select(AuditEntry.actor).where(AuditEntry.action == "reports.view")
            )).all()  # fmt: skip
    assert len(viewed) == 1
    assert viewed[0].startswith("cli:")


async def test_one_table_as_csv_shows_the_same_cells_and_defuses_formulas(
    backend: Backend,
) -> None:
    _, env = await reports_of_a_small_programme(backend)

    result = await run_wvb(env, "reports", "summary", "--csv", "by_workplace")

    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        ["Workplace", "Cases"],
        ["'" + FORMULA, HIDDEN],
        ["Golden Thread", "6"],
        ["Other or unlisted workplace", HIDDEN],
        ["Total", "8"],
    ]


async def test_the_plain_summary_prints_every_table_with_hidden_counts(backend: Backend) -> None:
    _, env = await reports_of_a_small_programme(backend)
    env["COLUMNS"] = "120"

    result = await run_wvb(env, "reports", "summary")

    assert result.returncode == 0, result.stderr
    for title in (
        "Cases by category", "Cases by workplace", "Cases by status", "Cases by outcome",
        "Cases opened per month, by outcome", "Days to acknowledgement and to closure",
        "Was this lesson helpful?",
    ):  # fmt: skip
        assert title in result.stdout
    assert "Golden Thread" in result.stdout
    assert HIDDEN in result.stdout
    assert NARRATIVE not in result.stdout


async def test_a_wrong_date_or_table_is_a_usage_mistake_and_a_reversed_period_is_refused(
    backend: Backend,
) -> None:
    _, env = await reports_of_a_small_programme(backend)

    for words in (("--since", "yesterday"), ("--csv", "by_colour"),
                  ("--json", "--csv", "by_status")):  # fmt: skip
        mistake = await run_wvb(env, "reports", "summary", *words)
        assert mistake.returncode == 2, (words, mistake.stderr)
        assert mistake.stdout == ""
        assert mistake.stderr.count("\n") == 1, mistake.stderr
    reversed_ = await run_wvb(env, "reports", "summary", "--since", "2026-03-01",
                              "--until", "2026-02-01")  # fmt: skip
    assert reversed_.returncode == 1
    assert reversed_.stderr == "error: --until: the period ends before it starts\n"

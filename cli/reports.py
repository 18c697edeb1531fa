"""`wvb reports`: the programme's reports, small counts hidden. A thin caller of
``services.reports``: the web console's /reports page shows the same tables."""

from __future__ import annotations

import sys
from datetime import date

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.common import call_app, print_json
from cli.usage import JSON_OPTION, CommandGroup, usage_error
from locales import staff_gettext as _
from services.audit import cli_actor
from services.reports import TABLES, Report, table_csv

reports_app = CommandGroup(help="Reports on cases and lessons; counts below 5 are shown as <5.")


def _day(flag: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        usage_error(f"{flag} {text!r}: use a date as YYYY-MM-DD, such as 2026-01-31")


@reports_app.command("summary")
def reports_summary(
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="DATE",
        help="Count the cases opened on or after this day (YYYY-MM-DD, UTC); default: the first.",
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        metavar="DATE",
        help="Count the cases opened on or before this day (YYYY-MM-DD, UTC); default: today.",
    ),
    as_json: bool = JSON_OPTION,
    csv_table: str | None = typer.Option(
        None, "--csv", metavar="TABLE", help=f"Print one table as CSV instead: {', '.join(TABLES)}."
    ),
) -> None:
    """Every report over the cases opened in the period: by category, workplace, status,
    outcome and month; days to acknowledgement and to closure; what workers answered at the
    first ask; site-validation answers; lesson feedback.

    A count below 5, and any count that would let one be worked out from the totals, is shown
    as <5. No report holds anything a worker wrote. Each view is written to the audit log."""
    first, last = _day("--since", since), _day("--until", until)
    if as_json and csv_table is not None:
        usage_error("--json and --csv: choose one")
    if csv_table is not None and csv_table not in TABLES:
        usage_error(f"--csv {csv_table!r}: no such table; one of: {', '.join(TABLES)}")
    report = call_app(lambda app: app.reports.summary(cli_actor(), since=first, until=last))
    if as_json:
        print_json(report.to_json())
    elif csv_table is not None:
        sys.stdout.write(table_csv(report.table(csv_table)))
    else:
        _print(report)


def _print(report: Report) -> None:
    console = Console()
    for table in report.tables:
        header, *body = table.text_rows()
        shown = Table(title=Text(_(table.title), style="bold"), title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
        for index, name in enumerate(header):
            shown.add_column(Text(name), justify="left" if index == 0 else "right")
        with_totals = table.column_totals is not None or table.total is not None
        for index, line in enumerate(body):
            shown.add_row(*map(Text, line), end_section=with_totals and index == len(body) - 2)
        console.print(shown)
    console.print(
        Text(_("<5: fewer than 5, or hidden so that a count below 5 cannot be worked out.")),
        soft_wrap=True,
    )

"""Reports in the console: every table of ``ReportService.summary`` (suppressed: a count below 5
is "<5", and complementary cells are hidden with it), each with a server-drawn SVG chart beside
it, and the same table as CSV. Open to every role (``reports.view``); no free text anywhere."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.errors import Refusal
from services.reports import Report, table_csv
from services.staff_login import StaffSessionView
from web.charts import bar_chart_svg
from web.pages import actor_of, console_of, refused, render, staff_page, tr


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Refusal("since", "a date such as 2026-01-31") from None


async def _report(request: Request, session: StaffSessionView) -> Report:
    query = request.query_params
    return await console_of(request).app.reports.summary(
        actor_of(session), since=_day(query.get("since")), until=_day(query.get("until"))
    )


@staff_page
async def reports_page(request: Request, session: StaffSessionView) -> Response:
    gettext = tr(request).gettext
    try:
        report = await _report(request, session)
    except Refusal as refusal:
        return refused(request, session, refusal)
    tables = []
    for table in report.tables:
        counts = table.chart_counts()
        labels = [table.row_label(row, gettext) for row in range(len(table.rows))]
        chart = (
            Markup(bar_chart_svg(counts, title=gettext(table.title), labels=labels))  # noqa: S704 - escaped by charts.py
            if counts
            else None
        )
        tables.append({"key": table.key, "title": gettext(table.title),
                       "rows": table.text_rows(gettext), "chart": chart})  # fmt: skip
    return render(
        request, "reports.html", session=session, tables=tables,
        since=request.query_params.get("since", ""), until=request.query_params.get("until", ""),
    )  # fmt: skip


@staff_page
async def report_csv(request: Request, session: StaffSessionView) -> Response:
    try:
        report = await _report(request, session)
        table = report.table(request.path_params["table"])
    except KeyError:
        return render(request, "refused.html", 404, session=session,
                      reason=tr(request).gettext("There is no such page."))  # fmt: skip
    except Refusal as refusal:
        return refused(request, session, refusal)
    return Response(
        table_csv(table, tr(request).gettext),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{table.key}.csv"'},
    )


ROUTES = [
    Route("/reports", reports_page, methods=["GET"]),
    Route("/reports/{table}.csv", report_csv, methods=["GET"]),
]

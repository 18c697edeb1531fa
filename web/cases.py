"""Casework in the console: the case list with filters and pages, the case page with the file,
the history, the clocks, and every staff action. Each action is one service call with the
member as actor (``services/casework.py``); the lifecycle rule holds here as everywhere: there
is no "close" button, only "close without the worker's confirmation", with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from conversations.categories import AFFECTED, CATEGORIES, CONFIDENTIALITY, OCCURRED
from domain.access import Forbidden
from domain.errors import NotFound, Refusal
from domain.statuses import OPEN, TERMINAL, CaseStatus
from locales import LANGUAGES
from services.casework import Remediation
from services.lifecycle import STAFF_SETTABLE
from services.staff_login import StaffSessionView
from services.views import CaseDetail, CaseFilter
from web.pages import actor_of, console_of, render, staff_page
from web.pages import refused as _refused

#: Images shown inline on the case page (cleaned at intake, re-encoded by the media sandbox).
INLINE_IMAGES = frozenset({"image/jpeg", "image/png"})
MAX_TEXT = 4000


def _text(form: Any, name: str, limit: int = MAX_TEXT) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _filters(request: Request, session: StaffSessionView) -> CaseFilter:
    query = request.query_params
    workplace = query.get("workplace", "")
    page = query.get("page", "1")
    return CaseFilter(
        status=query.get("status") or None,
        category=query.get("category") or None,
        workplace_id=int(workplace) if workplace.isdecimal() else None,
        urgent=query.get("urgent") == "1",
        overdue=query.get("overdue") == "1",
        assigned_to=session.staff.name if query.get("mine") == "1" else None,
        page=max(1, int(page)) if page.isdecimal() else 1,
    )


@staff_page
async def case_list(request: Request, session: StaffSessionView) -> Response:
    app = console_of(request).app
    filters = _filters(request, session)
    try:
        page = await app.staff.find_cases(actor_of(session), filters)
    except Refusal as refusal:
        return _refused(request, session, refusal)
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    template = "cases_table.html" if "hx-request" in request.headers else "cases.html"
    return render(
        request, template, session=session, page=page, filters=filters,
        statuses=list(CaseStatus), categories=CATEGORIES,
        workplaces=await app.staff.list_workplaces(),
        page_link=lambda n: "/cases?" + urlencode({**query, "page": n}),
    )  # fmt: skip


def _clock(due: datetime, now: datetime) -> dict[str, Any]:
    due = due if due.tzinfo else due.replace(tzinfo=UTC)
    days = (due - now).total_seconds() / 86400
    return {"due": due, "days": round(days, 1), "overdue": days < 0}


@staff_page
async def case_page(request: Request, session: StaffSessionView) -> Response:
    return await _case_page(request, session)


async def _case_page(
    request: Request, session: StaffSessionView, *, error: str | None = None, status: int = 200
) -> Response:
    app = console_of(request).app
    reference = request.path_params["reference"]
    try:
        case: CaseDetail = await app.staff.show_case(actor_of(session), reference)
    except Refusal as refusal:
        return _refused(request, session, refusal)
    now = datetime.now(UTC)
    staff_names = [m["name"] for m in await app.staff_accounts.list() if m["active"]]
    return render(
        request, "case.html", status, session=session, case=case, error=error,
        done=request.query_params.get("done"),
        acknowledge_clock=_clock(case.acknowledge_due_at, now),
        response_clock=_clock(case.response_due_at, now),
        open_case=case.status in OPEN,
        ended=case.status in TERMINAL,
        settable=[s for s in STAFF_SETTABLE if s != case.status],
        staff_names=staff_names, categories=CATEGORIES, occurred=OCCURRED, affected=AFFECTED,
        confidentiality=CONFIDENTIALITY,
        inline_images=INLINE_IMAGES,
    )  # fmt: skip


async def _act(request: Request, session: StaffSessionView, action: str) -> Response:
    """Run one casework action from a posted form, then show the case again."""
    app = console_of(request).app
    reference = request.path_params["reference"]
    form = await request.form()
    actor = actor_of(session)
    casework = app.casework
    try:
        if action == "acknowledge":
            await casework.acknowledge(actor, reference)
        elif action == "status":
            await casework.set_status(actor, reference, _text(form, "status", 32))
        elif action == "assign":
            await casework.assign(actor, reference, _text(form, "assignee", 64))
        elif action == "note":
            await casework.add_note(actor, reference, _text(form, "text"))
        elif action == "reply":
            await casework.reply(actor, reference, _text(form, "text"))
        elif action == "remediate":
            translations = {
                code: _text(form, f"summary_{code}")
                for code in LANGUAGES
                if _text(form, f"summary_{code}").strip()
            }
            sample = _text(form, "site_sample", 4)
            await casework.remediate(
                actor, reference, Remediation(_text(form, "summary"), translations),
                site_sample=int(sample) if sample.isdecimal() else 0,
            )  # fmt: skip
        elif action == "close":
            await casework.close(
                actor, reference, unvalidated=True, reason=_text(form, "reason", 500) or None
            )
        else:  # pragma: no cover - the routes name only the actions above
            raise NotFound("action", action)
    except (Forbidden, NotFound) as refusal:
        return _refused(request, session, refusal)
    except Refusal as refusal:
        return await _case_page(request, session, error=refusal.reason, status=400)
    return RedirectResponse(f"/cases/{reference}?done={action}#top", status_code=303)


def _action(action: str) -> Any:
    @staff_page
    async def endpoint(request: Request, session: StaffSessionView) -> Response:
        return await _act(request, session, action)

    endpoint.__name__ = f"case_{action}"
    return endpoint


@staff_page
async def evidence(request: Request, session: StaffSessionView) -> Response:
    """One evidence file: a cleaned JPEG or PNG inline, anything else as a download. Audited
    each time (``case.file``). Files come from workers, so they are never run or rendered as a
    page here: a download is sent as bytes with a sandboxing policy."""
    app = console_of(request).app
    reference = request.path_params["reference"]
    entry = request.path_params["entry"]
    try:
        name, mime_type, content = await app.staff.evidence_file(
            actor_of(session), reference, int(entry)
        )
    except Refusal as refusal:
        return _refused(request, session, refusal)
    inline = mime_type in INLINE_IMAGES and request.query_params.get("download") != "1"
    headers = {
        "content-disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
        "content-security-policy": "default-src 'none'; sandbox",
        "cache-control": "no-store",
    }
    return Response(
        content, media_type=mime_type if inline else "application/octet-stream", headers=headers
    )


ROUTES = [
    Route("/cases", case_list, methods=["GET"]),
    Route("/cases/{reference}", case_page, methods=["GET"]),
    Route("/cases/{reference}/files/{entry:int}", evidence, methods=["GET"]),
    *(
        Route(f"/cases/{{reference}}/{action}", _action(action), methods=["POST"])
        for action in ("acknowledge", "status", "assign", "note", "reply", "remediate", "close")
    ),
]

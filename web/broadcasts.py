"""Broadcasts in the console: the list, the form (a lesson or per-language texts, a segment, a
schedule, the fallback and WhatsApp's outside-window choice) with a dry-run count per language,
the status page with a live progress bar, and cancel. Each is one call of
``services/broadcasts.py`` with the member as actor, the same calls `wvb broadcast` makes; the
service refuses roles without the ``broadcasts`` permission (the console answers 403)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from domain.access import Forbidden
from domain.errors import Refusal
from domain.statuses import OutsideWindow
from locales import LANGUAGES
from locales.education import topics
from services.broadcasts import FALLBACKS, settled, topic_texts
from services.staff_login import StaffSessionView
from web.pages import (
    actor_of,
    console_of,
    refusal_status,
    refused,
    render,
    staff_page,
    tr,
)

MAX_TEXT = 4000


@dataclass
class Draft:
    """What the form holds, re-shown after a count or a refusal."""

    topic: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    segment: str = "all"
    at: str = ""  # datetime-local, read as UTC
    fallback: str = "skip"
    outside_window: str = OutsideWindow.SKIP
    urgent: bool = False


def _field(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def _draft(request: Request) -> Draft:
    form = await request.form()
    texts = {code: _field(form, f"text_{code}", MAX_TEXT) for code in LANGUAGES}
    return Draft(
        topic=_field(form, "topic", 64),
        texts={code: text for code, text in texts.items() if text.strip()},
        segment=_field(form, "segment", 500).strip() or "all",
        at=_field(form, "at", 32).strip(),
        fallback=_field(form, "fallback", 16) or "skip",
        outside_window=_field(form, "outside_window", 16) or OutsideWindow.SKIP,
        urgent=_field(form, "urgent", 4) == "1",
    )


def _texts(request: Request, draft: Draft) -> dict[str, str]:
    """The texts to send: the lesson's in every language, or the staff member's own."""
    _ = tr(request).gettext
    if bool(draft.topic) == bool(draft.texts):
        raise Refusal("texts", _("Choose either a lesson or your own texts, not both."))
    return topic_texts(draft.topic) if draft.topic else draft.texts


def _moment(request: Request, draft: Draft) -> datetime | None:
    if not draft.at:
        return None
    try:
        moment = datetime.fromisoformat(draft.at)
    except ValueError:
        _ = tr(request).gettext
        raise Refusal("at", _("The time is not a date and time.")) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _form(
    request: Request,
    session: StaffSessionView,
    draft: Draft,
    *,
    preview: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request, "broadcast_new.html", status, session=session, draft=draft, preview=preview,
        error=error, topics=topics(), fallbacks=FALLBACKS,
        outside_window_choices=list(OutsideWindow),
    )  # fmt: skip


@staff_page
async def broadcast_list(request: Request, session: StaffSessionView) -> Response:
    try:
        rows = await console_of(request).app.broadcasts.list(actor_of(session))
    except Refusal as refusal:
        return refused(request, session, refusal)
    return render(request, "broadcasts.html", session=session, rows=rows, moment=_iso)


@staff_page
async def broadcast_new(request: Request, session: StaffSessionView) -> Response:
    # The count of nobody: the service refuses a role without broadcasts before the form shows.
    service = console_of(request).app.broadcasts
    try:
        await service.list(actor_of(session), limit=1)
    except Refusal as refusal:
        return refused(request, session, refusal)
    return _form(request, session, Draft())


@staff_page
async def broadcast_preview(request: Request, session: StaffSessionView) -> Response:
    service = console_of(request).app.broadcasts
    draft = await _draft(request)
    try:
        segment = await service.parse_segment(draft.segment)
        preview = await service.preview(
            actor_of(session), _texts(request, draft), segment, draft.fallback,
            draft.outside_window,
        )  # fmt: skip
    except Refusal as refusal:
        if isinstance(refusal, Forbidden):
            return refused(request, session, refusal)
        return _form(request, session, draft, error=refusal.reason, status=400)
    return _form(request, session, draft, preview=preview)


@staff_page
async def broadcast_create(request: Request, session: StaffSessionView) -> Response:
    service = console_of(request).app.broadcasts
    draft = await _draft(request)
    try:
        segment = await service.parse_segment(draft.segment)
        created = await service.create(
            actor_of(session), _texts(request, draft), segment, topic=draft.topic or None,
            at=_moment(request, draft), urgent=draft.urgent, fallback=draft.fallback,
            outside_window=draft.outside_window,
        )  # fmt: skip
    except Refusal as refusal:
        if isinstance(refusal, Forbidden):
            return refused(request, session, refusal)
        return _form(request, session, draft, error=refusal.reason, status=400)
    return RedirectResponse(f"/broadcasts/{created['id']}", status_code=303)


def _iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def progress_of(status: dict[str, Any]) -> dict[str, Any]:
    """What the progress bar shows: everything that will not be sent any more (sent, failed,
    skipped) out of the total, and whether to keep polling (as `wvb broadcast watch` judges)."""
    total = status["total"]
    done = status["sent"] + status["failed"] + status["skipped"]
    finished = settled(status)
    percent = (100 * done // total) if total else (100 if finished else 0)
    return {"done": done, "max": max(total, 1), "percent": percent, "finished": finished}


async def _status_page(
    request: Request,
    session: StaffSessionView,
    *,
    partial: bool,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    broadcast_id = request.path_params["broadcast_id"]
    service = console_of(request).app.broadcasts
    try:
        # The page view is audited; the 2-second polls of its bar are not (they would flood).
        status = await service.status(actor_of(session), broadcast_id, audited=not partial)
    except Refusal as refusal:
        return refused(request, session, refusal)
    template = "broadcast_progress.html" if partial else "broadcast.html"
    return render(
        request, template, status_code, session=session, b=status, bar=progress_of(status),
        error=error, done=request.query_params.get("done"), moment=_iso,
    )  # fmt: skip


@staff_page
async def broadcast_page(request: Request, session: StaffSessionView) -> Response:
    return await _status_page(request, session, partial=False)


@staff_page
async def broadcast_progress(request: Request, session: StaffSessionView) -> Response:
    return await _status_page(request, session, partial=True)


@staff_page
async def broadcast_cancel(request: Request, session: StaffSessionView) -> Response:
    broadcast_id = request.path_params["broadcast_id"]
    try:
        await console_of(request).app.broadcasts.cancel(actor_of(session), broadcast_id)
    except Refusal as refusal:
        if refusal_status(refusal) != 400:
            return refused(request, session, refusal)
        return await _status_page(
            request, session, partial=False, error=refusal.reason, status_code=400
        )
    return RedirectResponse(f"/broadcasts/{broadcast_id}?done=cancel", status_code=303)


ROUTES = [
    Route("/broadcasts", broadcast_list, methods=["GET"]),
    Route("/broadcasts", broadcast_create, methods=["POST"]),
    Route("/broadcasts/new", broadcast_new, methods=["GET"]),
    Route("/broadcasts/preview", broadcast_preview, methods=["POST"]),
    Route("/broadcasts/{broadcast_id:int}", broadcast_page, methods=["GET"]),
    Route("/broadcasts/{broadcast_id:int}/progress", broadcast_progress, methods=["GET"]),
    Route("/broadcasts/{broadcast_id:int}/cancel", broadcast_cancel, methods=["POST"]),
]

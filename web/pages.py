"""What every page of the console shares: templates in the staff member's language, the session
of the request, and how refusals and missing sessions are answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.app import App
from bot.settings import Settings
from domain.access import Actor, Forbidden
from domain.errors import NotFound, Refusal
from locales import LANGUAGES, SOURCE_LANGUAGE, Translator, translator
from services.staff_accounts import Staff
from services.staff_login import StaffSessionView

#: The session cookie: an opaque random token (``services/staff_login.py`` keeps its hash).
SESSION_COOKIE = "wvb_session"
LANGUAGE_COOKIE = "wvb_lang"

TEMPLATES = Environment(
    loader=PackageLoader("web", "templates"),
    autoescape=select_autoescape(default=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Console:
    """The console's share of the application, reached from every request."""

    app: App
    settings: Settings
    base_url: str  # the public base URL (WVB_CONSOLE_URL), without a trailing slash
    secure: bool  # served over https: cookies are Secure


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def language_of(request: Request) -> str:
    """The console's language: the one chosen (cookie), else the browser's best match."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in LANGUAGES:
            return code
    return SOURCE_LANGUAGE


def tr(request: Request) -> Translator:
    return translator(language_of(request))


def local(moment: datetime | None) -> str:
    """A time as staff read it: UTC, to the minute (the console's users are in many zones)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    session: StaffSessionView | None = None,
    **context: Any,
) -> HTMLResponse:
    language = tr(request)
    page = TEMPLATES.get_template(template).render(
        _=language.gettext,
        gettext=language.gettext,
        ngettext=language.ngettext,
        language=language.language,
        languages=LANGUAGES,
        staff=session.staff if session else None,
        csrf=session.csrf if session else context.pop("csrf", ""),
        may=(lambda permission: session.staff.may(permission)) if session else (lambda _: False),
        local=local,
        request=request,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def refusal_status(refusal: Refusal) -> int:
    """A role without the permission 403, nothing there 404, anything else 400."""
    if isinstance(refusal, Forbidden):
        return 403
    return 404 if isinstance(refusal, NotFound) else 400


def refused(request: Request, session: StaffSessionView, refusal: Refusal) -> HTMLResponse:
    """A service's refusal as a page, with its ``refusal_status``."""
    return render(
        request, "refused.html", refusal_status(refusal), session=session, reason=refusal.reason
    )


def session_of(request: Request) -> StaffSessionView | None:
    found: StaffSessionView | None = request.state.session
    return found


def actor_of(session: StaffSessionView) -> Actor:
    """The actor of every service call from the console: ``web:NAME`` with the member's role."""
    return session.staff.acting_on("web")


Page = Callable[[Request, StaffSessionView], Awaitable[Response]]


def staff_page(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for a logged-in member: without a session a GET goes to /login (back here after)
    and anything else is answered 401."""

    @wraps(page)
    async def endpoint(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            if request.method in ("GET", "HEAD") and "hx-request" not in request.headers:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response: Response = RedirectResponse(
                    "/login?next=" + _quote_next(target), status_code=303
                )
                return response
            return Response(tr(request).gettext("Please log in again."), status_code=401)
        return await page(request, session)

    return endpoint


def _quote_next(target: str) -> str:
    from urllib.parse import quote

    return quote(target, safe="/")


def safe_next(target: str | None) -> str:
    """Only a path of this console (never another site: ``//evil``, ``https://…``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def home_of(staff: Staff) -> str:
    """Where a member lands after login: the first thing their role may see."""
    if staff.may("cases.view"):
        return "/cases"
    if staff.may("broadcasts"):
        return "/broadcasts"
    return "/reports"

"""`wvb console`: the staff web console, in its own process beside `wvb run`, on the same
database and Redis, opened through the one composition root (``bot.app.open_app``).

Every request passes ``guard`` first: it finds the session of the cookie (``StaffLogin.session``,
which also ends idle ones) and refuses a state-changing request that did not come from the
console's own pages (``web/security.py``). The pages call the services with the member as
actor; the services decide what each role may do (``services/access.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.app import App, open_app
from bot.errors import ChannelStartError
from bot.settings import Settings
from web import auth, broadcasts, cases, reports
from web.pages import SESSION_COOKIE, Console, home_of, render, session_of, tr
from web.security import (
    LOGIN_CSRF_COOKIE,
    SAFE_METHODS,
    SecurityHeaders,
    origin_of,
    same_origin,
    tokens_match,
)

log = logging.getLogger(__name__)

#: Form bodies are small (a reply, a summary per language); anything bigger is refused.
MAX_FORM_BYTES = 256 * 1024


def console_url(settings: Settings) -> str:
    return settings.console_base_url


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    console: Console = request.app.state.console
    token = request.cookies.get(SESSION_COOKIE)
    request.state.session = await console.app.staff_login.session(token) if token else None
    if request.method not in SAFE_METHODS:
        # Browsers send a form with its length; a body without one (chunked) could be of any
        # size before the session or the token is even checked, so it is not read at all.
        length = request.headers.get("content-length")
        if length is None or not length.isdecimal():
            return Response(tr(request).gettext("That form is too large."), status_code=411)
        if int(length) > MAX_FORM_BYTES:
            return Response(tr(request).gettext("That form is too large."), status_code=413)
        if not same_origin(request, origin_of(console.base_url)) and not same_origin(
            request, f"{request.url.scheme}://{request.url.netloc}"
        ):
            log.warning("console: a %s from another site was refused", request.method)
            return Response(tr(request).gettext("Refused: not from this console."), 403)
        if not await _csrf_holds(request):
            log.warning("console: a %s without a valid form token was refused", request.method)
            return render(
                request, "refused.html", 403,
                session=session_of(request),
                reason=tr(request).gettext(
                    "This form had expired or was not sent by this console. Please try again."
                ),
            )  # fmt: skip
    return await call_next(request)


async def _csrf_holds(request: Request) -> bool:
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        await request.body()  # kept by the middleware, so the page can read the form again
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    session = session_of(request)
    if session is not None:
        return tokens_match(sent, session.csrf)
    # Before login (the login and enrolment forms): a double-submit cookie.
    return tokens_match(sent, request.cookies.get(LOGIN_CSRF_COOKIE))


async def home(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_of(session.staff), status_code=303)


async def not_found(request: Request, exc: Exception) -> Response:
    return render(
        request, "refused.html", 404, session=session_of(request),
        reason=tr(request).gettext("There is no such page."),
    )  # fmt: skip


def build(app: App, settings: Settings) -> Starlette:
    """The console as an ASGI application (tests serve it in process, `wvb console` by uvicorn)."""
    base = console_url(settings)
    static = StaticFiles(packages=[("web", "static")])
    routes = [
        Route("/", home),
        *auth.ROUTES,
        *cases.ROUTES,
        *broadcasts.ROUTES,
        *reports.ROUTES,
        Mount("/static", static, name="static"),
    ]
    web = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, secure=base.startswith("https://")),
            Middleware(BaseHTTPMiddleware, dispatch=guard),
        ],
        exception_handlers={404: not_found},
    )
    web.state.console = Console(app, settings, base, base.startswith("https://"))
    return web


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `wvb console` stops on the same stop event as
    every other `wvb` process (``cli.common.run_until_stopped``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(settings: Settings) -> socket.socket:
    host, port = settings.console_host_port
    try:
        return socket.create_server((host, port), reuse_port=False)
    except OSError as error:
        raise ConsoleStartError(
            f"WVB_CONSOLE_LISTEN: cannot listen on {host}:{port} ({error.strerror})"
        ) from None


class ConsoleStartError(ChannelStartError):
    """The console could not start; the message names the setting."""


async def serve(app: App, settings: Settings, stop: asyncio.Event) -> None:
    """Serve the console until ``stop`` is set, then finish the requests in flight."""
    sock = _bind(settings)
    config = uvicorn.Config(
        build(app, settings),
        log_config=None,
        access_log=False,  # an access log would name case references and client addresses
        server_header=False,
        date_header=True,
        lifespan="off",
        proxy_headers=True,  # behind the documented reverse proxy (README), on 127.0.0.1
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    host, port = settings.console_host_port
    log.info("staff console listening on %s:%d", host, port)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiter.cancel()
    await task
    sock.close()


async def run_console(settings: Settings, stop: asyncio.Event) -> None:
    """`wvb console`: open the application (no messenger channel: `wvb run` sends what the
    console queues) and serve the console until ``stop``."""
    async with open_app(settings) as app:
        await serve(app, settings, stop)
    log.info("staff console stopped cleanly")


__all__: list[Any] = ["ConsoleStartError", "build", "console_url", "run_console", "serve"]

"""What every response and every form of the console is protected by.

- Headers on every response: a strict Content-Security-Policy (only the console's own scripts
  and styles, no inline script or style, no frames of it anywhere, forms only to itself), no
  caching of pages (they hold case content), no referrer to any other site, no MIME sniffing.
  (``same-origin``, not ``no-referrer``: under ``no-referrer`` a browser sends ``Origin: null``
  with its own forms, and the origin check below would refuse every one.)
- A state-changing request (any method but GET/HEAD) must come from the console's own pages:
  ``Sec-Fetch-Site`` (when the browser sends it) must be ``same-origin`` or ``none``, and
  ``Origin`` (when sent) must be the console's own origin; then the form's ``csrf`` field (or an
  htmx request's ``X-CSRF-Token`` header) must match the session's token (or, before login, the
  login form's double-submit cookie). A failed check answers 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

SAFE_METHODS = frozenset({"GET", "HEAD"})
#: The login form's double-submit cookie (there is no session yet to hold its token).
LOGIN_CSRF_COOKIE = "wvb_login_csrf"


class SecurityHeaders:
    """ASGI middleware adding ``HEADERS`` (and no-store caching) to every response."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
                if self.secure:
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def same_origin(request: Request, origin: str) -> bool:
    """Whether a state-changing request comes from the console's own pages (see module doc)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    sent = request.headers.get("origin")
    if sent is None:
        return True  # an old browser without Origin: the CSRF token still has to match
    return sent == origin


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def tokens_match(sent: str | None, expected: str | None) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent), str(expected))


def new_token() -> str:
    return secrets.token_urlsafe(32)

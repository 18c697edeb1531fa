"""The staff console's routes, through the real Starlette app and the real services, on SQLite
and PostgreSQL (issue 13): every route as every role, no route without a session, CSRF and
cross-site refusals, sessions that end, login throttling, headers, no messenger id in any page,
and every case view in the audit log."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.app import App, open_app
from domain.access import PERMISSIONS
from domain.parties import StaffRole
from storage.models import AuditEntry, Case, OutboxMessage
from tests.case_factory import insert_case
from tests.conftest import Backend
from tests.web_client import ConsoleClient, add_staff, console_client

REFERENCE = "K7M3-9Q2X"
PSEUDONYM = "k7m3-9q2x" * 7

#: (method, path, form, permission) for every page and action of the console.
ROUTES: list[tuple[str, str, dict[str, str], str | None]] = [
    ("GET", "/cases", {}, "cases.view"),
    ("GET", "/cases?status=received&urgent=1&overdue=1&mine=1&page=2", {}, "cases.view"),
    ("GET", f"/cases/{REFERENCE}", {}, "cases.read"),
    ("POST", f"/cases/{REFERENCE}/note", {"text": "phoned the line manager"}, "cases.change"),
    ("POST", f"/cases/{REFERENCE}/assign", {"assignee": ""}, "cases.change"),
    ("POST", f"/cases/{REFERENCE}/reply", {"text": "We are looking into it."}, "cases.change"),
    ("POST", f"/cases/{REFERENCE}/acknowledge", {}, "cases.change"),
    ("POST", f"/cases/{REFERENCE}/status", {"status": "investigating"}, "cases.change"),
    ("POST", f"/cases/{REFERENCE}/remediate", {"summary": "Wages were paid."}, "cases.change"),
    ("POST", f"/cases/{REFERENCE}/close", {"reason": "The worker left."}, "cases.change"),
    ("GET", "/broadcasts", {}, "broadcasts"),
    ("GET", "/broadcasts/new", {}, "broadcasts"),
    ("POST", "/broadcasts/preview", {"topic": "pay", "segment": "all"}, "broadcasts"),
    ("GET", "/reports", {}, "reports.view"),
    ("GET", "/reports?since=2026-01-01&until=2027-12-31", {}, "reports.view"),
    ("GET", "/reports/by_category.csv", {}, "reports.view"),
]


async def _setup(app: App) -> None:
    await insert_case(app.database, PSEUDONYM, REFERENCE, app.keyring)


async def _pages_of_an_admin(backend: Backend, *paths: str) -> list[httpx.Response]:
    """The login page, then each of ``paths`` as an admin sees them."""
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await _setup(app)
        secret = await add_staff(app, "Ana", "admin")
        async with console_client(app, settings) as console:
            pages = [await console.get("/login")]
            await console.log_in("Ana", secret)
            return pages + [await console.get(path) for path in paths]


@asynccontextmanager
async def _logged_in(
    backend: Backend, name: str, role: str
) -> AsyncIterator[tuple[App, ConsoleClient]]:
    """The app with one case, and the console with ``name`` logged in as ``role``."""
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await _setup(app)
        secret = await add_staff(app, name, role)
        async with console_client(app, settings) as console:
            await console.log_in(name, secret)
            yield app, console


@pytest.mark.parametrize("role", list(StaffRole))
async def test_every_route_as_every_role(backend: Backend, role: StaffRole) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await _setup(app)
        secret = await add_staff(app, "Ana", role)
        async with console_client(app, settings) as console:
            assert (await console.log_in("Ana", secret)).status_code == 303
            for method, path, form, permission in ROUTES:
                allowed = permission is None or role in PERMISSIONS[permission]
                if method == "GET":
                    response = await console.get(path)
                    expected = 200 if allowed else 403
                else:
                    response = await console.post(path, form)
                    shown_again = path == "/broadcasts/preview"  # the form, with the counts
                    expected = (200 if shown_again else 303) if allowed else 403
                assert response.status_code == expected, (role, method, path, response.text[:300])


async def test_no_route_answers_without_a_session(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await _setup(app)
        async with console_client(app, settings) as console:
            for method, path, form, _ in ROUTES:
                if method == "GET":
                    response = await console.get(path)
                    assert response.status_code == 303, path
                    assert response.headers["location"].startswith("/login?next=")
                else:
                    response = await console.post(path, form)
                    assert response.status_code in (401, 403), path
            assert (await console.get("/login")).status_code == 200
        async with app.database.sessions() as session:
            case = await session.scalar(select(Case).where(Case.reference == REFERENCE))
            assert case is not None
            assert case.status == "received", "nothing changed"


async def test_a_form_without_its_token_or_from_another_site_changes_nothing(
    backend: Backend,
) -> None:
    async with _logged_in(backend, "Mai", "case_handler") as (app, console):
        path = f"/cases/{REFERENCE}/acknowledge"
        assert (await console.post(path, csrf=False)).status_code == 403
        assert (await console.post(path, {"csrf": "forged"})).status_code == 403
        other = {"origin": "https://evil.example"}
        assert (await console.post(path, headers=other)).status_code == 403
        cross = {"sec-fetch-site": "cross-site"}
        assert (await console.post(path, headers=cross)).status_code == 403
        async with app.database.sessions() as session:
            case = await session.scalar(select(Case).where(Case.reference == REFERENCE))
            assert case is not None
            assert case.status == "received"
        assert (await console.post(path)).status_code == 303, "the real form works"


async def test_a_stolen_session_cookie_stops_working(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await _setup(app)
        secret = await add_staff(app, "Mai", "case_handler")
        start = app.staff_login.now()
        async with console_client(app, settings) as console:
            await console.log_in("Mai", secret)
            assert (await console.get("/cases")).status_code == 200
            app.staff_login.now = lambda: start + timedelta(minutes=29)
            assert (await console.get("/cases")).status_code == 200, "still in use"
            app.staff_login.now = lambda: start + timedelta(minutes=29 + 31)
            idle = await console.get("/cases")
            assert idle.status_code == 303, "idle for over 30 minutes: the session ended"
            assert idle.headers["location"].startswith("/login")
        app.staff_login.now = lambda: start + timedelta(hours=1, minutes=1)
        async with console_client(app, settings) as console:
            await console.log_in("Mai", secret)
            cookie = dict(console.client.cookies)
            assert (await console.post("/logout")).status_code == 303
            async with console_client(app, settings) as thief:
                thief.client.cookies.update(cookie)
                assert (await thief.get("/cases")).status_code == 303, "logged out: gone"


async def test_login_attempts_are_throttled_per_account(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        secret = await add_staff(app, "Mai", "case_handler")
        async with console_client(app, settings) as console:
            await console.get("/login")
            for _ in range(5):
                wrong = await console.post(
                    "/login", {"username": "Mai", "password": "not the password", "totp": "000000"}
                )
                assert wrong.status_code == 401
                assert "wrong name, password or code" in wrong.text
            held = await console.log_in("Mai", secret)
            assert held.status_code == 429, "the right password is not even checked now"
            assert int(held.headers["retry-after"]) > 0


async def test_pages_carry_strict_headers_and_no_messenger_id(
    backend: Backend, tmp_path: Path
) -> None:
    pages = await _pages_of_an_admin(
        backend, "/cases", f"/cases/{REFERENCE}", "/static/console.css"
    )
    for page in pages:
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        everything = page.text + "".join(f"{k}:{v}" for k, v in page.headers.items())
        assert PSEUDONYM not in everything
        assert "style=" not in page.text, "the CSP forbids inline styles"
    assert "<script>" not in pages[2].text, "no inline script anywhere"
    cookie = pages[1].request.headers.get("cookie", "")
    assert "wvb_session" in cookie


async def test_every_case_view_is_in_the_audit_log(backend: Backend) -> None:
    async with _logged_in(backend, "Mai", "case_handler") as (app, console):
        for _ in range(3):
            assert (await console.get(f"/cases/{REFERENCE}")).status_code == 200
        async with app.database.sessions() as session:
            views = await session.scalar(
                select(func.count()).where(
                    AuditEntry.action == "case.view",
                    AuditEntry.actor == "web:Mai",
                    AuditEntry.subject == REFERENCE,
                )
            )
            logins = await session.scalar(
                select(func.count()).where(AuditEntry.action == "staff.login")
            )
        assert views == 3
        assert logins == 1


async def test_casework_from_the_case_page(backend: Backend) -> None:
    async with _logged_in(backend, "Mai", "case_handler") as (app, console):
        page = await console.get(f"/cases/{REFERENCE}")
        assert "Acknowledge (tells the worker)" in page.text
        assert "Close as unvalidated" in page.text
        assert ">Close<" not in page.text, "no plain close before the worker's yes"
        path = f"/cases/{REFERENCE}"
        assert (await console.post(f"{path}/acknowledge")).status_code == 303
        assert (
            await console.post(f"{path}/reply", {"text": "We visit on Monday."})
        ).status_code == 303
        empty = await console.post(f"{path}/note", {"text": "  "})
        assert empty.status_code == 400
        assert "must not be empty" in empty.text
        remediated = await console.post(
            f"{path}/remediate", {"summary": "Wages were paid.", "summary_en": ""}
        )
        assert remediated.status_code == 303
        page = await console.get(path)
        assert "awaiting_validation" in page.text
        assert "We visit on Monday." in page.text
        refused = await console.post(f"{path}/close", {"reason": ""})
        assert refused.status_code in (400, 403)
        async with app.database.sessions() as session:
            case = await session.scalar(select(Case).where(Case.reference == REFERENCE))
            assert case is not None
            assert case.status == "awaiting_validation"
            queued = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.case_id == case.id)
            )
            assert queued is not None
            assert queued >= 3


async def test_reports_show_small_counts_as_less_than_five(backend: Backend) -> None:
    async with _logged_in(backend, "Vi", "viewer") as (_, console):
        page = await console.get("/reports")
        assert page.status_code == 200
        assert '<td class="cell-hidden">&lt;5</td>' in page.text
        assert "<svg" in page.text
        assert ">1<" not in page.text, "the one case is never shown as a 1"
        csv = await console.get("/reports/by_category.csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert "<5" in csv.text
        assert (await console.get("/cases")).status_code == 403, "a viewer sees reports only"
        for path in ("/reports?since=soon", "/reports/by_category.csv?since=soon"):
            wrong = await console.get(path)
            assert wrong.status_code == 400, path
            assert "2026-01-31" in wrong.text, "says what a date looks like"


async def test_no_page_loads_or_links_anything_from_another_site(backend: Backend) -> None:
    """No CDN, no font or script from elsewhere: every src, href and action is this console's."""
    pages = await _pages_of_an_admin(
        backend, "/cases", f"/cases/{REFERENCE}", "/broadcasts", "/broadcasts/new", "/reports"
    )
    for page in pages:
        assert page.status_code == 200, page.request.url
        addresses = re.findall(r'(?:src|href|action|hx-get|hx-post)="([^"]*)"', page.text)
        assert addresses, page.request.url
        for address in addresses:
            assert address.startswith(("/", "#")), (page.request.url, address)
        assert "@import" not in page.text
        assert "url(http" not in page.text


async def test_a_form_too_large_or_of_unknown_length_is_not_read(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app, console_client(app, settings) as c:
        await c.get("/login")
        huge = await c.post("/login", {"username": "x" * 300_000, "password": "p", "totp": "1"})
        assert huge.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:
            yield b"username=x&password=y&totp=1&csrf=" + c.csrf.encode()

        unknown = await c.client.post(
            "/login", content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded",
                     "origin": "http://127.0.0.1:8081"},
        )  # fmt: skip
        assert unknown.status_code == 411
        async with app.database.sessions() as session:
            attempts = await session.scalar(
                select(func.count()).where(AuditEntry.action.like("staff.login%"))
            )
        assert attempts == 0, "neither was even tried as a login"


async def test_acknowledging_does_not_promise_to_tell_a_worker_who_cannot_be_reached(
    backend: Backend,
) -> None:
    async with _logged_in(backend, "Mai", "case_handler") as (app, console):
        async with app.database.transaction() as session:  # as /forget leaves it
            await session.execute(
                update(Case).where(Case.reference == REFERENCE)
                .values(reporter_tag=None, reporter_ciphertext=None)
            )  # fmt: skip
        page = await console.get(f"/cases/{REFERENCE}")
        assert "Acknowledge (the worker can no longer be told)" in page.text
        assert "tells the worker" not in page.text


def test_the_vendored_htmx_is_the_one_recorded() -> None:
    static = Path(__file__).parent.parent / "web" / "static"
    digest = hashlib.sha256((static / "htmx-2.0.11.min.js").read_bytes()).hexdigest()
    assert digest == "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    assert digest in (static / "VENDORED.md").read_text()


async def test_the_console_speaks_thai_when_chosen(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        async with console_client(app, settings) as console:
            english = await console.get("/login")
            assert 'lang="en"' in english.text
            assert "Code from your authenticator app" in english.text
            chosen = await console.get("/language?lang=th&next=/login")
            assert chosen.status_code == 303
            thai = await console.get("/login")
            assert '<html lang="th">' in thai.text
            assert "Code from your authenticator app" not in thai.text, "translated"
            assert any("\u0e00" <= ch <= "\u0e7f" for ch in thai.text), "in Thai script"
        async with console_client(app, settings) as fresh:  # no cookie: the browser's language
            asked = {"accept-language": "th-TH,th;q=0.9"}
            assert '<html lang="th">' in (await fresh.client.get("/login", headers=asked)).text
            other = {"accept-language": "de-DE,de;q=0.9"}
            assert '<html lang="en">' in (await fresh.client.get("/login", headers=other)).text

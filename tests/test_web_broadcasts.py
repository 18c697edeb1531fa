"""Broadcasts in the console (issue 13, point 5), through the real Starlette application in
process on both backends: an educator counts and sends a lesson, follows it on its page and in
the polled fragment, and cancels it; roles without ``broadcasts`` get 403 on every route; a post
without the form token is refused. No channel runs here, so nothing is sent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pyotp
import pytest
from sqlalchemy import select

from bot.app import App, open_app
from storage.models import AuditEntry, Broadcast
from tests.conftest import Backend
from tests.test_broadcast_service import add_worker
from web.app import build

BASE = "http://127.0.0.1:8081"
PASSWORD = "correct horse battery staple 42"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def console(backend: Backend) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    settings = backend.settings(quiet_hours="")
    async with open_app(settings, upgrade_schema=True) as app:
        transport = httpx.ASGITransport(app=build(app, settings))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield app, client


async def log_in(app: App, client: httpx.AsyncClient, name: str, role: str) -> None:
    await app.staff_accounts.add("cli:op", name, role, None)
    await app.staff_login.set_password("cli:op", name, PASSWORD)
    secret = (await app.staff_login.enrol_totp("cli:op", name)).secret
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": name,
            "password": PASSWORD,
            "totp": pyotp.TOTP(secret).now(),
            "csrf": csrf_of(page.text),
        },
    )
    assert response.status_code == 303, response.text


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no form token"
    return found.group(1)


def progress_of(page: str) -> dict[str, str]:
    found = re.search(r"<progress ([^>]*)>", page)
    assert found, "no progress bar"
    return dict(re.findall(r'([a-z-]+)="([^"]*)"', found.group(1)))


async def test_an_educator_counts_sends_follows_and_cancels_a_lesson_broadcast(
    backend: Backend,
) -> None:
    async with console(backend) as (app, client):
        for n, language in enumerate(["th", "th", "my", "en"]):
            await add_worker(app.database, f"{n}" * 64, language)
        await add_worker(app.database, "9" * 64, "th", subscribed=False)
        await log_in(app, client, "Kanya", "educator")

        form = await client.get("/broadcasts/new")
        assert form.status_code == 200
        assert 'name="text_km"' in form.text
        assert 'value="pay"' in form.text
        fields = {"csrf": csrf_of(form.text), "topic": "pay", "segment": "language=th,language=my"}
        counted = await client.post("/broadcasts/preview", data=fields)
        assert counted.status_code == 200, counted.text
        rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", counted.text)
        assert rows == [("မြန်မာ", "1"), ("ไทย", "2")]
        assert '<td id="preview-total">3</td>' in counted.text
        assert 'value="language=th,language=my"' in counted.text, "the form keeps what was typed"
        async with app.database.sessions() as session:
            assert await session.scalar(select(Broadcast.id)) is None, "a count sends nothing"

        sent = await client.post("/broadcasts", data=fields)
        assert sent.status_code == 303
        location = sent.headers["location"]
        assert re.fullmatch(r"/broadcasts/\d+", location)

        page = await client.get(location)
        assert page.status_code == 200
        bar = progress_of(page.text)
        assert bar["id"] == "progress"
        assert (bar["value"], bar["max"], bar["data-percent"]) == ("0", "3", "0")
        assert f'hx-get="{location}/progress"' in page.text
        assert 'hx-trigger="every 2s"' in page.text
        assert f'href="{location}"' in page.text, "a Refresh link works without JavaScript"
        fragment = await client.get(f"{location}/progress", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        assert 'hx-trigger="every 2s"' in fragment.text

        listed = await client.get("/broadcasts")
        assert f'href="{location}"' in listed.text
        assert "0 of 3" in listed.text

        cancelled = await client.post(f"{location}/cancel", data={"csrf": csrf_of(page.text)})
        assert cancelled.status_code == 303
        after = await client.get(f"{location}/progress")
        assert "hx-trigger" not in after.text, "a finished broadcast is not polled any more"
        assert progress_of(after.text)["data-percent"] == "100"
        again = await client.post(f"{location}/cancel", data={"csrf": csrf_of(page.text)})
        assert again.status_code == 400
        assert "already cancelled" in again.text

        async with app.database.sessions() as session:
            actions = list(
                await session.scalars(
                    select(AuditEntry.action).where(AuditEntry.actor == "web:Kanya")
                )
            )
        # The two page views (the second with the refusal) are audited; the polls are not.
        assert actions.count("broadcast.status") == 2
        assert {"broadcast.create", "broadcast.cancel"} <= set(actions)


async def test_a_refused_form_is_shown_again_with_the_reason(backend: Backend) -> None:
    async with console(backend) as (app, client):
        await log_in(app, client, "Kanya", "educator")
        form = await client.get("/broadcasts/new")
        token = csrf_of(form.text)
        both = await client.post(
            "/broadcasts", data={"csrf": token, "topic": "pay", "text_en": "Hello"}
        )
        assert both.status_code == 400
        assert "not both" in both.text
        assert "Hello</textarea>" in both.text
        bad = await client.post(
            "/broadcasts/preview", data={"csrf": token, "text_en": "Hi", "segment": "shift=night"}
        )
        assert bad.status_code == 400
        assert "use language=CODE" in bad.text


@pytest.mark.parametrize("role", ["viewer", "case_handler"])
async def test_roles_without_broadcasts_are_refused_on_every_route(
    backend: Backend, role: str
) -> None:
    async with console(backend) as (app, client):
        created = await app.broadcasts.create(
            "cli:op", {"en": "Hello"}, await app.broadcasts.parse_segment("all")
        )
        number = created["id"]
        await log_in(app, client, "Nu", role)
        token = csrf_of((await client.get("/broadcasts/new")).text)
        for method, path in [
            ("GET", "/broadcasts"),
            ("GET", "/broadcasts/new"),
            ("POST", "/broadcasts/preview"),
            ("POST", "/broadcasts"),
            ("GET", f"/broadcasts/{number}"),
            ("GET", f"/broadcasts/{number}/progress"),
            ("POST", f"/broadcasts/{number}/cancel"),
        ]:
            data = {"csrf": token, "topic": "pay"} if method == "POST" else None
            response = await client.request(method, path, data=data)
            assert response.status_code == 403, (method, path)
            assert "an admin or an educator can" in response.text
        async with app.database.sessions() as session:
            state = await session.scalar(select(Broadcast.state).where(Broadcast.id == number))
            count = await session.scalar(select(Broadcast.id).order_by(Broadcast.id.desc()))
        assert state == "sending", "nothing was cancelled"
        assert count == number, "nothing was created"


async def test_a_post_without_the_form_token_is_refused(backend: Backend) -> None:
    async with console(backend) as (app, client):
        created = await app.broadcasts.create(
            "cli:op", {"en": "Hello"}, await app.broadcasts.parse_segment("all")
        )
        await log_in(app, client, "Kanya", "educator")
        refused = await client.post(f"/broadcasts/{created['id']}/cancel", data={})
        assert refused.status_code == 403
        forged = await client.post("/broadcasts", data={"csrf": "forged", "topic": "pay"})
        assert forged.status_code == 403
        async with app.database.sessions() as session:
            assert list(await session.scalars(select(Broadcast.state))) == ["sending"]

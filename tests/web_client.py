"""Drive the staff console in process, as a browser would (cookies, the forms' CSRF fields,
Origin and Sec-Fetch-Site headers), through the real Starlette app and the real services.
Real-browser tests are in tests/test_console_browser.py; these are for every route and role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
import pyotp

from bot.app import App
from bot.settings import Settings
from web.app import build

BASE = "http://127.0.0.1:8081"
PASSWORD = "a long staff passphrase"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def add_staff(app: App, name: str, role: str, *, assigned_only: bool = False) -> str:
    """A staff member with a password (``PASSWORD``) and a second factor; returns its secret."""
    await app.staff_accounts.add("cli:operator", name, role, None, assigned_only=assigned_only)
    await app.staff_login.set_password("cli:operator", name, PASSWORD)
    return (await app.staff_login.enrol_totp("cli:operator", name)).secret


class ConsoleClient:
    def __init__(self, client: httpx.AsyncClient, app: App) -> None:
        self.client = client
        self.app = app
        self.csrf = ""

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = await self.client.get(path, **kwargs)  # type: ignore[arg-type]
        found = CSRF_FIELD.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        sent = {"origin": BASE, "sec-fetch-site": "same-origin", **(headers or {})}
        response = await self.client.post(path, data=form, headers=sent)
        found = CSRF_FIELD.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def log_in(self, name: str, secret: str, *, at: datetime | None = None) -> httpx.Response:
        await self.get("/login")
        moment = at or self.app.staff_login.now()
        code = pyotp.TOTP(secret).at(moment)
        response = await self.post("/login", {"username": name, "password": PASSWORD, "totp": code})
        if response.status_code == 303:
            await self.get(response.headers["location"])
        return response


@asynccontextmanager
async def console_client(app: App, settings: Settings) -> AsyncIterator[ConsoleClient]:
    web = build(app, settings)
    transport = httpx.ASGITransport(app=web, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield ConsoleClient(client, app)

"""The staff console in a real browser (headless Chromium, tests/browser.py), against a real
`wvb console` process and the real bot (`wvb run`) over the fake Bot API, on one database: a
staff member logs in with password and TOTP, handles a worker's case end to end, reads the
reports and sends a lesson as a broadcast; a newcomer enrols from their link.

One walk, on SQLite + memory only: the route tests cover PostgreSQL and Redis, and a browser
walk is slow enough to run once. Its screenshots are the guide's pictures (docs/images/).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from services.broadcasts import topic_texts
from tests.bot_driver import run_wvb
from tests.browser import Browser
from tests.chaos_servers import free_port
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer
from tests.messenger_driver import (
    TelegramMessenger,
    Worker,
    ask,
    has,
    onboard,
    press,
    reply,
    report,
)
from tests.test_run_process import WVB, kill_if_running, start_process

pytestmark = pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)

ADMIN = "Aroon"
PASSWORD = "correct horse battery staple"
REPLY = "Which month was not paid?"
REMEDIATION = "The employer says the back pay was paid on 1 December."


async def test_a_staff_member_handles_a_case_end_to_end_in_a_real_browser(
    backend: Backend, fake_telegram: FakeTelegramServer, browser: Browser, tmp_path: Path
) -> None:
    port = free_port()
    env = backend.environment(backend.settings())
    env.update(
        WVB_TELEGRAM_TOKEN=fake_telegram.token,
        WVB_TELEGRAM_API_BASE=fake_telegram.base_url,
        WVB_CONSOLE_LISTEN=f"127.0.0.1:{port}",
        WVB_QUIET_HOURS="",  # the broadcast goes now, whatever the hour of the test run
    )
    assert (await run_wvb(env, "db", "upgrade")).returncode == 0
    totp = await admin_with_password_and_totp(env)
    telegram = TelegramMessenger(fake_telegram)
    worker = telegram.user(5_500_001, language_code="en")

    bot = await start_process(env, tmp_path, fake_telegram)
    try:
        async with console(env, tmp_path, port, browser):
            await onboard(worker, "en", subscribe=True)
            receipt = await report(worker, details=("I was not paid for two months.",))
            assert receipt is not None
            ref = receipt.reference

            await log_in(browser, ADMIN, PASSWORD, totp.now())
            assert (await browser.path()).startswith("/cases")

            await browser.open("/cases", "cases")
            assert ref in await browser.text("table.cases")
            await browser.click(f"a[href='/cases/{ref}']", "case")
            assert ref in await browser.text("h1")
            assert "I was not paid for two months." in await browser.text(".entries")

            await browser.fill({"text": REPLY})
            await browser.click(f"form[action='/cases/{ref}/reply'] button", "case-replied")
            question = await reply(worker, lambda m: REPLY in m.text)
            assert f"ans:{ref}" in question.payloads, "the worker can answer it"

            await browser.fill({"summary": REMEDIATION})
            await browser.click(f"form[action='/cases/{ref}/remediate'] button", "remediated")
            assert await browser.text("h1 .status") == "awaiting_validation"

            prompt = await reply(worker, has(f"val:{ref}:no"))
            assert REMEDIATION in prompt.text
            await press(worker, f"val:{ref}:no", has("comment:skip"))
            await ask(worker, lambda: worker.text("Only half was paid."), has("menu:report"))
            await browser.open(f"/cases/{ref}", "case-reopened")
            assert await browser.text("h1 .status") == "reopened"
            assert "Only half was paid." in await browser.text(".entries")

            await browser.open("/reports", "reports")
            cells = [cell.text for cell in await browser.elements("td")]
            assert "<5" in cells, "one case: its counts are hidden"

            since = telegram.mark()
            await send_a_lesson(browser, "pay")
            await worker_receives_lesson(worker, "pay", since)
            await browser.shoot("broadcast-done")
    finally:
        await stop(bot)


async def test_a_newcomer_enrols_from_their_link_and_logs_in(
    backend: Backend, browser: Browser, tmp_path: Path
) -> None:
    port = free_port()
    env = backend.environment(backend.settings())
    env["WVB_CONSOLE_LISTEN"] = f"127.0.0.1:{port}"
    assert (await run_wvb(env, "db", "upgrade")).returncode == 0
    added = await run_wvb(env, "staff", "add", "Mai", "--role", "case_handler")
    assert added.returncode == 0, added.stderr
    link = re.search(r"https?://\S+/enrol/[\w-]+", added.stdout)
    assert link is not None, added.stdout

    async with console(env, tmp_path, port, browser) as base_url:
        assert link.group(0).startswith(base_url)
        await browser.open(link.group(0).removeprefix(base_url), "enrol")
        assert await browser.elements("figure.qr svg"), "the QR code is drawn by the server"
        secret = (await browser.text("code.secret")).replace(" ", "")
        totp = pyotp.TOTP(secret)
        await browser.fill({"password": PASSWORD, "password_again": PASSWORD, "totp": totp.now()})
        await browser.click("form[action^='/enrol/'] button", "enrolled")

        # The code just used is spent; the next one (accepted a step early) logs in.
        await log_in(browser, "Mai", PASSWORD, totp.at(time_step_later(totp)))
        assert (await browser.path()).startswith("/cases")
        await browser.open(link.group(0).removeprefix(base_url), "enrol-link-spent")
        assert not await browser.elements("code.secret"), "an enrolment link works once"


def time_step_later(totp: pyotp.TOTP) -> int:
    return int(time.time()) + totp.interval


async def admin_with_password_and_totp(env: dict[str, str]) -> pyotp.TOTP:
    """An administrator set up at the command line (`wvb staff password`, `wvb staff totp`)."""
    added = await run_wvb(env, "staff", "add", ADMIN, "--role", "admin")
    assert added.returncode == 0, added.stderr
    password = await run_wvb(env, "staff", "password", ADMIN, stdin=PASSWORD + "\n")
    assert password.returncode == 0, password.stderr
    enrolled = await run_wvb(env, "staff", "totp", ADMIN, "--json")
    assert enrolled.returncode == 0, enrolled.stderr
    document = json.loads(enrolled.stdout)
    assert document["uri"].startswith("otpauth://totp/")
    return pyotp.TOTP(document["secret"])


async def log_in(browser: Browser, name: str, password: str, code: str) -> None:
    await browser.open("/login", "login")
    await browser.fill({"username": name, "password": password, "totp": code})
    await browser.click("form[action='/login'] button", "logged-in")


async def send_a_lesson(browser: Browser, topic: str) -> None:
    """At /broadcasts/new: count the recipients of the lesson ``topic`` (the dry run), send it,
    and watch the progress bar (``<progress id="progress" data-percent=...>``) fill as the
    page updates itself."""
    await browser.open("/broadcasts/new", "broadcast-new")
    await browser.select("topic", topic)
    await browser.click("button[formaction='/broadcasts/preview']", "broadcast-preview")
    assert await browser.text("#preview-total") == "1", "the one subscribed worker"
    await browser.select("topic", topic)
    await browser.click("form[action='/broadcasts'] button:not([formaction])", "broadcast-sent")

    def full(driver: WebDriver) -> bool:
        found = driver.find_elements(By.ID, "progress")
        return bool(found) and found[0].get_attribute("data-percent") == "100"

    await browser.wait_for(full, "the broadcast's progress bar at 100 %", timeout=60)


async def worker_receives_lesson(worker: Worker, topic: str, since: int) -> None:
    title = topic_texts(topic)["en"].splitlines()[0]
    await reply(worker, lambda m: m.text.startswith(title), since)


@asynccontextmanager
async def console(
    env: dict[str, str], cwd: Path, port: int, browser: Browser
) -> AsyncIterator[str]:
    """`wvb console` on ``port``, as an operator starts it; its address once it answers. Its
    log goes beside the test's screenshots (it names no worker, by design)."""
    log = browser.artefact("console.log")
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            WVB, "console", env=env, cwd=cwd,
            stdout=output, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        try:
            await until_it_answers(process, f"{base_url}/login", log)
            browser.base_url = base_url
            yield base_url
        finally:
            await stop(process)


async def until_it_answers(process: Process, url: str, log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            if process.returncode is not None:
                raise AssertionError(f"wvb console exited: {log.read_text()}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"wvb console never answered at {url}")


async def stop(process: Process) -> None:
    """SIGTERM, as an operator stops it; it exits cleanly (0) or the test fails."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.communicate(), 30)
    finally:
        await kill_if_running(process)
    assert process.returncode == 0

"""`wvb run` as an operator runs it, on each Telegram runtime: a separate process, stopped by
SIGTERM, with its logs read."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import subprocess
import sys
import time
from asyncio.subprocess import Process
from pathlib import Path

import pytest

from tests.bot_driver import REFERENCE, ask, data_of, has, onboard, press, report, ticked
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer

WVB = str(Path(sys.executable).parent / "wvb")

WORKER_ID = 987_654_321
FIRST_NAME = "Somchai"
LAST_NAME = "Jaidee"
USERNAME = "somchai_w"
PHONE = "0812345678"
SECRET_TEXT = "the supervisor took my passport"


async def test_wvb_run_serves_workers_stops_on_sigterm_and_logs_nothing_identifying(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str, tmp_path: Path
) -> None:
    settings = backend.settings(telegram_runtime=telegram_runtime)
    env = backend.environment(settings)
    env.update(
        WVB_TELEGRAM_TOKEN=fake_telegram.token,
        WVB_TELEGRAM_API_BASE=fake_telegram.base_url,
        WVB_LOG_LEVEL="DEBUG",
    )
    upgrade = await asyncio.create_subprocess_exec(WVB, "db", "upgrade", env=env, cwd=tmp_path)
    assert await upgrade.wait() == 0

    process = await start_process(env, tmp_path, fake_telegram, stdout=asyncio.subprocess.PIPE)
    try:
        user = fake_telegram.user(
            WORKER_ID,
            first_name=FIRST_NAME,
            last_name=LAST_NAME,
            username=USERNAME,
            language_code="th",
        )
        await onboard(fake_telegram, user, "th")
        for text in (SECRET_TEXT, PHONE, f"{FIRST_NAME} {LAST_NAME}"):
            await ask(fake_telegram, user, functools.partial(user.send_text, text),
                      lambda m: "menu:report" in data_of(m))  # fmt: skip
        await ask(fake_telegram, user, lambda: user.send_command("menu"),
                  lambda m: "menu:report" in data_of(m))  # fmt: skip
        logs = await stop_and_read(process)
    finally:
        await kill_if_running(process)
    assert "stopped cleanly" in logs
    assert "conversation" in logs, "operators see each turn, by pseudonym prefix"
    token_secret = fake_telegram.token.split(":", 1)[1]
    for leak in (str(WORKER_ID), FIRST_NAME, LAST_NAME, USERNAME, PHONE, SECRET_TEXT,
                 "passport", token_secret, fake_telegram.token):  # fmt: skip
        assert leak not in logs, f"{leak!r} leaked into the log"
    assert "Traceback" not in logs


async def start_process(
    env: dict[str, str],
    cwd: Path,
    server: FakeTelegramServer,
    stdout: int = asyncio.subprocess.DEVNULL,
) -> Process:
    """`wvb run`, returned once it polls the fake Bot API (killed if it never does)."""
    process = await asyncio.create_subprocess_exec(
        WVB, "run", env=env, cwd=cwd, stdout=stdout, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not server.long_polling:
            assert process.returncode is None, "wvb run exited early"
            assert time.monotonic() < deadline, "wvb run never started polling"
            await asyncio.sleep(0.05)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    return process


async def stop_and_read(process: Process) -> str:
    """SIGTERM a process started with its output piped; everything it wrote, once it exited 0."""
    process.send_signal(signal.SIGTERM)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    logs = stdout.decode() + stderr.decode()
    assert process.returncode == 0, logs
    return logs


async def kill_if_running(process: Process) -> None:
    """What a test that failed before stopping ``process`` leaves: nothing running."""
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_killed_mid_report_the_draft_resumes_after_restart_and_cases_are_intact(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str, tmp_path: Path
) -> None:
    env = backend.environment(backend.settings(telegram_runtime=telegram_runtime))
    env.update(WVB_TELEGRAM_TOKEN=fake_telegram.token, WVB_TELEGRAM_API_BASE=fake_telegram.base_url)
    upgrade = await asyncio.create_subprocess_exec(WVB, "db", "upgrade", env=env, cwd=tmp_path)
    assert await upgrade.wait() == 0
    user = fake_telegram.user(WORKER_ID, language_code="ne")

    first = await start_process(env, tmp_path, fake_telegram)
    try:
        await onboard(fake_telegram, user, "ne")
        before_kill = await report(fake_telegram, user, details=("confirmed before the kill",))
        assert before_kill is not None
        await ask(fake_telegram, user, lambda: user.send_command("report"), has("cat:wages"))
        await press(fake_telegram, user, "cat:safety", ticked("cat:safety"))
        await press(fake_telegram, user, "report:done", has("wp:skip"))
        await press(fake_telegram, user, "wp:skip", has("agency:none"))
        await press(fake_telegram, user, "agency:none", has("report:done"))
        await ask(fake_telegram, user, lambda: user.send_text("typed before the kill"),
                  has("report:done"))  # fmt: skip
    finally:
        first.kill()  # SIGKILL: no clean shutdown, no chance to save anything more
        await first.wait()

    second = await start_process(env, tmp_path, fake_telegram)
    try:
        # If the kill fell inside a turn, the conversation lock is released by its lease.
        await press(fake_telegram, user, "report:done", has("when:ongoing"))
        await press(fake_telegram, user, "when:ongoing", has("who:me"))
        await press(fake_telegram, user, "who:many", has("danger:yes"))
        await press(fake_telegram, user, "danger:no", has("share:share"))
        await press(fake_telegram, user, "share:confidential", has("review:send"))
        receipt = await press(fake_telegram, user, "review:send", lambda m: m.protect_content)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)
    assert second.returncode == 0

    after = REFERENCE.search(receipt.text)
    assert after is not None
    for reference, text in ((before_kill.reference, "confirmed before the kill"),
                            (after.group(1), "typed before the kill")):  # fmt: skip
        shown = subprocess.run([WVB, "cases", "show", reference, "--json"], env=env,
                               capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert [e["text"] for e in json.loads(shown.stdout)["entries"]] == [text]

"""`wvb run` as an operator runs it: a separate process, stopped by SIGTERM, with its logs read."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from tests.bot_driver import ask, data_of, onboard
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
    backend: Backend, fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    settings = backend.settings()
    env = backend.environment(settings)
    env.update(
        WVB_TELEGRAM_TOKEN=fake_telegram.token,
        WVB_TELEGRAM_API_BASE=fake_telegram.base_url,
        WVB_LOG_LEVEL="DEBUG",
    )
    upgrade = await asyncio.create_subprocess_exec(WVB, "db", "upgrade", env=env, cwd=tmp_path)
    assert await upgrade.wait() == 0

    process = await asyncio.create_subprocess_exec(
        WVB, "run", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not fake_telegram.long_polling:
            assert process.returncode is None, "wvb run exited early"
            assert time.monotonic() < deadline, "wvb run never started polling"
            await asyncio.sleep(0.05)
        user = fake_telegram.user(
            WORKER_ID,
            first_name=FIRST_NAME,
            last_name=LAST_NAME,
            username=USERNAME,
            language_code="th",
        )
        await onboard(fake_telegram, user, "th")
        for text in (SECRET_TEXT, PHONE, f"{FIRST_NAME} {LAST_NAME}"):
            await ask(fake_telegram, user, lambda t=text: user.send_text(t),
                      lambda m: "menu:report" in data_of(m))  # fmt: skip
        await ask(fake_telegram, user, lambda: user.send_command("menu"),
                  lambda m: "menu:report" in data_of(m))  # fmt: skip
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    logs = stdout.decode() + stderr.decode()
    assert process.returncode == 0, logs
    assert "stopped cleanly" in logs
    assert "conversation" in logs, "operators see each turn, by pseudonym prefix"
    token_secret = fake_telegram.token.split(":", 1)[1]
    for leak in (str(WORKER_ID), FIRST_NAME, LAST_NAME, USERNAME, PHONE, SECRET_TEXT,
                 "passport", token_secret, fake_telegram.token):  # fmt: skip
        assert leak not in logs, f"{leak!r} leaked into the log"
    assert "Traceback" not in logs

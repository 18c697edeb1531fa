"""Staff commands in Telegram reveal less: /case is a summary, staff alerts carry reference,
urgency and categories with protect_content, they go only to a private chat or a private group,
staff commands are read only from typed (not forwarded, not captioned) text, and reading what a
worker wrote is for admins and case handlers. Over the fake Bot API on both runtimes."""

from __future__ import annotations

import json
import logging
import os
import pwd
from collections.abc import AsyncIterator

import pytest

from bot.app import open_app
from tests.bot_driver import (
    RunningBot,
    ask,
    bot_with_staff_chat,
    onboard,
    report,
    run_wvb,
    start_bot,
    stop_bot,
)
from tests.case_factory import insert_case
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer

STAFF_CHAT = -100_999_000
NARRATIVE = "The fire exit in shed 4 is chained shut."


@pytest.fixture
async def bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    async with bot_with_staff_chat(backend, fake_telegram, telegram_runtime, STAFF_CHAT) as running:
        yield running


async def case_status(bot: RunningBot, backend: Backend, reference: str) -> str:
    listed = await run_wvb(backend.environment(bot.settings), "cases", "list", "--json")
    [case] = [c for c in json.loads(listed.stdout) if c["reference"] == reference]
    return str(case["status"])


async def test_case_in_the_staff_chat_is_a_summary_and_commands_are_only_typed_text(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    env = backend.environment(bot.settings)
    added = await run_wvb(env, "staff", "add", "Mai", "--role", "case_handler",
                          "--telegram-id", "7100001")  # fmt: skip
    assert added.returncode == 0, added.stderr
    worker = server.user(5_400_001, language_code="en")
    await onboard(server, worker, "en")
    receipt = await report(server, worker, categories=("safety",), details=(NARRATIVE,),
                           danger="yes")  # fmt: skip
    assert receipt is not None
    ref = receipt.reference

    [alert] = await server.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=20)
    assert alert.protect_content, "staff alerts cannot be forwarded or saved"
    assert ref in alert.text
    assert "URGENT" in alert.text
    assert "Workplace" not in alert.text
    assert NARRATIVE not in alert.text

    handler = server.user(7_100_001, language_code="en")
    shown = await ask(server, handler, lambda: handler.send_text(f"/case {ref}"),
                      lambda m: ref in m.text)  # fmt: skip
    assert NARRATIVE not in shown.text
    assert "1 message(s)" in shown.text
    assert f"http://127.0.0.1:8081/cases/{ref}" in shown.text, "a link to the console page"
    assert shown.protect_content

    for not_typed in (lambda: handler.send_forwarded_text(f"/ack {ref}"),
                      lambda: handler.send_photo(caption=f"/ack {ref}")):  # fmt: skip
        answer = await ask(server, handler, not_typed, lambda m: True)
        assert "acknowledged" not in answer.text
        assert await case_status(bot, backend, ref) == "received"
    acked = await ask(server, handler, lambda: handler.send_text(f"/ack {ref}"),
                      lambda m: "acknowledged" in m.text)  # fmt: skip
    assert ref in acked.text


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
@pytest.mark.parametrize(
    "chat",
    [
        {"id": -100_999_001, "type": "supergroup", "title": "Staff", "username": "staff_public"},
        {"id": -100_999_002, "type": "channel", "title": "Alerts"},
    ],
    ids=["public-group", "channel"],
)
async def test_no_alert_goes_to_a_channel_or_a_public_group(
    backend: Backend,
    fake_telegram: FakeTelegramServer,
    telegram_runtime: str,
    chat: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    fake_telegram.register_chat(chat)
    bot = await start_bot(backend, fake_telegram, telegram_runtime, staff_chat_id=chat["id"])
    try:
        worker = fake_telegram.user(5_400_002, language_code="en")
        await onboard(fake_telegram, worker, "en")
        assert await report(fake_telegram, worker, danger="yes") is not None
        await ask(fake_telegram, worker, lambda: worker.send_command("menu"), lambda m: True)
    finally:
        await stop_bot(bot)
    assert [m for m in fake_telegram.sent if m.chat_id == chat["id"]] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("WVB_STAFF_CHAT_ID" in line and "not sent" in line for line in warnings), warnings


async def test_only_admins_and_case_handlers_read_case_content_at_the_command_line(
    backend: Backend,
) -> None:
    account = pwd.getpwuid(os.getuid()).pw_name
    settings = backend.settings()
    env = backend.environment(settings)
    async with open_app(settings, upgrade_schema=True) as app:
        await insert_case(app.database, "p" * 64, "K7M3-9Q2X", app.keyring)
    added = await run_wvb(env, "staff", "add", account, "--role", "viewer")
    assert added.returncode == 0, added.stderr
    refused = await run_wvb(env, "cases", "show", "K7M3-9Q2X", "--json")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "viewer" in refused.stderr
    listed = await run_wvb(env, "cases", "list", "--json")
    assert listed.returncode == 1, "a viewer sees reports only"
    promoted = await run_wvb(env, "staff", "add", account, "--role", "case_handler")
    assert promoted.returncode == 1, "nor can they promote themselves"
    async with open_app(settings) as app:
        await app.staff_accounts.add("cli:operator", account, "case_handler", None)
    allowed = await run_wvb(env, "cases", "show", "K7M3-9Q2X", "--json")
    assert allowed.returncode == 0, allowed.stderr

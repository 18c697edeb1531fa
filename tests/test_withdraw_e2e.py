"""A worker withdraws their report from /status over the fake Bot API, on both Telegram runtimes
and both backends: keeping it is the first choice, the content is gone at once, staff are told
the reference only, and the worker is told what was deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from storage.database import Database
from storage.models import Case, CaseEntry
from tests.bot_driver import (
    RunningBot,
    check_status,
    data_of,
    onboard,
    press,
    report,
    start_bot,
    stop_bot,
)
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer

STAFF_CHAT = -100_999_000


@pytest.fixture
async def bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    fake_telegram.register_chat({"id": STAFF_CHAT, "type": "supergroup", "title": "Staff"})
    running = await start_bot(backend, fake_telegram, telegram_runtime, staff_chat_id=STAFF_CHAT)
    try:
        yield running
    finally:
        await stop_bot(running)


async def test_a_worker_withdraws_their_report_with_the_receipt_code(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    user = server.user(5_300_001, language_code="en")
    await onboard(server, user, "en")
    receipt = await report(server, user, details=("The supervisor keeps our passports.",))
    assert receipt is not None
    found = await check_status(server, user, receipt.reference, receipt.code)
    assert "Received" in found.text

    confirm = await press(server, user, "status:withdraw", lambda m: "withdraw:yes" in data_of(m))
    assert [b["callback_data"] for b in confirm.buttons()] == ["withdraw:no", "withdraw:yes"]
    assert receipt.reference in confirm.text
    since = len(server.sent)
    done = await press(server, user, "withdraw:yes", lambda m: "is withdrawn" in m.text)
    assert "Deleted now" in done.text
    [told] = await server.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=20, start=since)
    assert receipt.reference in told.text
    assert "withdrawn" in told.text
    assert "passports" not in told.text

    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            case = await session.scalar(select(Case).where(Case.reference == receipt.reference))
            assert case is not None
            assert case.status == "withdrawn"
            assert case.purged_at is not None
            assert await session.scalar(select(func.count()).select_from(CaseEntry)) == 0
    finally:
        await database.dispose()
    again = await check_status(server, user, receipt.reference, receipt.code)
    assert "Withdrawn" in again.text

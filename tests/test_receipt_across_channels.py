"""A receipt code works across channels: a report made on one messenger can be checked with
/status (reference and receipt code) from another, and the other way round.

Nothing in the lookup is tied to the channel or the worker (services/cases.py ``check_status``
finds the case by its reference and checks the code; conversations/status.py asks for both on any
channel): these tests prove it with real parts, a Telegram worker over the fake Bot API and a
console worker (`wvb chat` in its own process) on one database, on SQLite + memory and PostgreSQL
+ Redis. The WhatsApp versions are in tests/test_whatsapp_e2e.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.bot_driver import RECEIPT_CODE, REFERENCE, check_status, onboard, report, running
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer
from tests.test_console_e2e import ConsoleWorker


async def console_status(console: ConsoleWorker, reference: str, code: str) -> str:
    """/status in the console (at its prompt), then the reference, then the code: what the bot
    answers, up to its next prompt."""
    await console.type("/status")
    await console.expect("K7M3-9Q2X")
    await console.prompt()
    await console.type(reference)
    await console.expect("receipt code")
    await console.prompt()
    await console.type(code)
    return await console.prompt()


async def test_a_report_checks_from_the_other_channel_both_ways(
    backend: Backend, fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    async with running(backend, fake_telegram, "aiogram") as bot:
        telegram = fake_telegram.user(4_300_001, language_code="en")
        await onboard(fake_telegram, telegram, "en")
        made_on_telegram = await report(fake_telegram, telegram)
        assert made_on_telegram is not None

        console = await ConsoleWorker.start(tmp_path, backend.environment(bot.settings))
        try:
            printed = await console.send_a_wages_report("The agency kept my first salary.")
            reference, code = REFERENCE.search(printed), RECEIPT_CODE.search(printed)
            assert reference is not None, printed
            assert code is not None, printed
            assert reference.group(1) != made_on_telegram.reference
            await console.prompt()

            # Telegram's report, checked from the console.
            answer = await console_status(
                console, made_on_telegram.reference, made_on_telegram.code
            )
            assert f"Case {made_on_telegram.reference}" in answer, answer
            assert "Stage: Received" in answer
            # A wrong code from the other channel finds nothing, as it would on the same one.
            wrong = await console_status(console, made_on_telegram.reference, code.group(1))
            assert f"Case {made_on_telegram.reference}" not in wrong, wrong
            assert "Stage:" not in wrong
        finally:
            assert await console.quit() == 0, console.output[-1500:]

        # The console's report, checked from Telegram.
        answer = await check_status(fake_telegram, telegram, reference.group(1), code.group(1))
        assert f"Case {reference.group(1)}" in answer.text, answer.text
        assert "Stage: Received" in answer.text

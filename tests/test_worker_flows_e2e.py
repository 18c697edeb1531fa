"""No dead ends and no silent loss for the worker, end to end on each messenger (Telegram on
both runtimes, WhatsApp), on SQLite + memory and PostgreSQL + Redis:

- fifty workers writing at once are each answered in their own language;
- an unfinished report resumes at its first open question, and Back walks to the earlier ones;
- a lone number typed where the bot asks for words is words ("3" while describing is not Menu);
- deleting a report and /forget ask once more, with the safe choice first;
- /forget while staff wait for the worker's answer about a fix warns first, and the case records
  it (staff are told, reminders stop, the case does not close), so /status tells the truth.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from locales import LANGUAGES, translator
from storage.database import Database
from storage.models import Worker as WorkerRow
from tests.bot_driver import run_wvb
from tests.messenger_driver import (
    Messenger,
    Said,
    Worker,
    ask,
    begin_report,
    check_status,
    has,
    is_details,
    onboard,
    press,
    reply,
    report,
)

STAFF_CHAT = -100_555_000
MENU_PROMPT = "Main menu. What would you like to do?"


@pytest.fixture
async def bot(messenger: Messenger) -> AsyncIterator[Messenger]:
    async with messenger.running():
        yield messenger


async def test_fifty_workers_at_once_each_answered_in_their_own_language(
    bot: Messenger,
) -> None:
    codes = list(LANGUAGES)
    users = [
        bot.user(5_000_000 + index, name=f"W{index}", language_code=codes[index % len(codes)])
        for index in range(50)
    ]

    async def one_worker(user: Worker, language: str) -> None:
        menu = await onboard(user, language)
        expected = translator(language).gettext(MENU_PROMPT)
        assert menu.text == expected
        again = await ask(user, lambda: user.command("menu"), has("menu:report"))
        assert again.text == expected

    await asyncio.gather(
        *(one_worker(user, codes[index % len(codes)]) for index, user in enumerate(users))
    )
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(WorkerRow))
            languages = (await session.execute(select(WorkerRow.language))).scalars().all()
    finally:
        await database.dispose()
    assert count == 50
    assert sorted(languages) == sorted(codes[index % len(codes)] for index in range(50))
    assert bot.all_requests_ok()


async def finish_report(worker: Worker) -> Said:
    """From "what happened?" (Done pressed) to the review screen."""
    await press(worker, "report:done", has("when:ongoing"))
    await press(worker, "when:week", has("who:me"))
    await press(worker, "who:few", has("danger:yes"))
    await press(worker, "danger:no", has("share:share"))
    return await press(worker, "share:confidential", has("review:send"))


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_resumed_report_opens_at_its_first_open_question_and_back_reaches_the_answers(
    bot: Messenger,
) -> None:
    user = bot.user(5_600_001, language_code="en")
    await onboard(user, "en")
    await begin_report(user)
    await ask(user, lambda: user.text("They kept my March wages."), is_details)
    await press(user, "report:done", has("when:ongoing"))
    await press(user, "nav:menu", has("menu:report"))  # leaves; the draft is kept

    await ask(user, lambda: user.command("report"), has("resume:continue"))
    question = await press(user, "resume:continue", lambda m: bool(m.choices))
    assert "when:ongoing" in question.payloads, "straight to the first unanswered question"
    assert "When did it happen?" in question.text

    described = await press(user, "nav:back", lambda m: bool(m.choices))
    assert is_details(described), "Back reaches the question answered before, not the menu"
    agency = await press(user, "nav:back", lambda m: bool(m.choices))
    assert "agency:none" in agency.payloads
    await press(user, "agency:none", is_details)
    review = await finish_report(user)
    assert "They kept my March wages." in review.text, "the earlier answers were kept"
    assert "Wages" in review.text


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_lone_number_typed_while_describing_is_part_of_the_story(bot: Messenger) -> None:
    user = bot.user(5_600_002, language_code="en")
    await onboard(user, "en")
    await begin_report(user)
    added = await ask(user, lambda: user.text("3"), lambda m: bool(m.choices))
    assert "menu:report" not in added.payloads, "3 is not the third button (Menu)"
    assert is_details(added)
    assert "Added" in added.text
    review = await finish_report(user)
    assert "“3”" in review.text


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_cancelling_a_report_asks_first_with_keeping_it_first(bot: Messenger) -> None:
    user = bot.user(5_600_003, language_code="en")
    await onboard(user, "en")
    await report(user, send=False)
    confirm = await press(user, "nav:cancel", lambda m: bool(m.choices))
    assert confirm.payload_list == ["cancel:no", "cancel:yes"]
    assert "No, keep it" in confirm.labels[0]
    kept = await press(user, "cancel:no", lambda m: bool(m.choices))
    assert "review:send" in kept.payloads, "back to the review, the report untouched"
    assert "I was not paid for two months." in kept.text

    await press(user, "nav:cancel", has("cancel:yes"))
    deleted = await press(user, "cancel:yes", has("menu:report"))
    assert any("deleted" in m.text for m in user.messages()[-2:]), deleted.text
    fresh = await ask(user, lambda: user.command("report"), has("nav:menu"))
    assert "resume:continue" not in fresh.payloads, "the report is gone"
    assert "cat:wages" in fresh.payloads


@pytest.fixture
async def staffed_bot(messenger: Messenger) -> AsyncIterator[Messenger]:
    async with messenger.running(staff_chat=STAFF_CHAT):
        yield messenger


async def test_forget_while_staff_wait_for_the_workers_answer_warns_and_the_case_records_it(
    staffed_bot: Messenger,
) -> None:
    bot = staffed_bot
    env = bot.environment()
    user = bot.user(5_600_004, language_code="en")
    await onboard(user, "en")
    receipt = await report(user)
    assert receipt is not None
    ref = receipt.reference
    remediated = await run_wvb(env, "cases", "remediate", ref, "--summary", "Wages were paid.")
    assert remediated.returncode == 0, remediated.stderr
    await reply(user, has(f"val:{ref}:yes"))

    confirm = await ask(user, lambda: user.command("forget"), has("forget:yes"))
    assert confirm.payload_list == ["forget:no", "forget:yes"]
    assert "staff will not be able to ask you whether it was fixed" in confirm.text
    assert ref in confirm.text
    await press(user, "forget:yes", lambda m: "/start" in m.text)

    [alert] = await bot.telegram.wait_for(
        lambda m: m.chat_id == STAFF_CHAT and ref in m.text and "/forget" in m.text, timeout=20
    )
    assert "--unvalidated" in alert.text, "staff are told what they can do now"
    shown = await run_wvb(env, "cases", "show", ref, "--json")
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["status"] == "awaiting_validation", "only the worker's yes may close it"
    assert [e["action"] for e in case["events"]][-1] == "reporter_forgot"
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            tasks = (await session.execute(text(
                "SELECT kind, done_at IS NOT NULL, outcome FROM case_tasks ORDER BY id"
            ))).all()  # fmt: skip
    finally:
        await database.dispose()
    reminders = [(done, outcome) for kind, done, outcome in tasks if kind == "validation_reminder"]
    assert reminders, tasks
    assert all(r == (True, "reporter_forgot") for r in reminders), "nobody left to remind"
    assert [done for kind, done, _ in tasks if kind == "validation_overdue"] == [False]

    other = bot.user(5_600_005, language_code="en")  # the worker on another account
    status = await check_status(other, ref, receipt.code)
    assert "Waiting for your answer" in status.text
    assert "We will ask you" not in status.text
    assert "/forget" in status.text

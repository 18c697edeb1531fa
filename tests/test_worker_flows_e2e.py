"""No dead ends and no silent loss for the worker, end to end over the fake Telegram Bot API:

- an unfinished report resumes at its first open question, and Back walks to the earlier ones;
- a lone number typed where the bot asks for words is words ("3" while describing is not Menu);
- deleting a report and /forget ask once more, with the safe choice first;
- /forget while staff wait for the worker's answer about a fix warns first, and the case records
  it (staff are told, reminders stop, the case does not close), so /status tells the truth.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text

from storage.database import Database
from tests.bot_driver import (
    DETAILS_CHOICES,
    RunningBot,
    ask,
    bot_with_staff_chat,
    check_status,
    data_of,
    has,
    onboard,
    press,
    report,
    run_wvb,
    start_bot,
    stop_bot,
    ticked,
)
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser

STAFF_CHAT = -100_555_000


def is_details(message: SentMessage) -> bool:
    return data_of(message) == DETAILS_CHOICES


@pytest.fixture
async def bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    running = await start_bot(backend, fake_telegram, telegram_runtime)
    try:
        yield running
    finally:
        await stop_bot(running)


async def begin_report(server: FakeTelegramServer, user: SimulatedUser) -> None:
    """/report, Wages, Done, no workplace, no agency: the bot now asks what happened."""
    await ask(server, user, lambda: user.send_command("report"), has("cat:wages"))
    await press(server, user, "cat:wages", ticked("cat:wages"))
    await press(server, user, "report:done", has("wp:skip"))
    await press(server, user, "wp:skip", has("agency:none"))
    await press(server, user, "agency:none", is_details)


async def finish_report(
    server: FakeTelegramServer, user: SimulatedUser, *, first: Callable[[], object]
) -> SentMessage:
    """From "When did it happen?" (reached by ``first``) to the review screen."""
    await ask(server, user, first, has("when:ongoing"))
    await press(server, user, "when:week", has("who:me"))
    await press(server, user, "who:few", has("danger:yes"))
    await press(server, user, "danger:no", has("share:share"))
    return await press(server, user, "share:confidential", has("review:send"))


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_resumed_report_opens_at_its_first_open_question_and_back_reaches_the_answers(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    user = server.user(5_600_001, language_code="en")
    await onboard(server, user, "en")
    await begin_report(server, user)
    await ask(server, user, lambda: user.send_text("They kept my March wages."), is_details)
    await press(server, user, "report:done", has("when:ongoing"))
    await press(server, user, "nav:menu", has("menu:report"))  # leaves; the draft is kept

    await ask(server, user, lambda: user.send_command("report"), has("resume:continue"))
    question = await press(server, user, "resume:continue", lambda m: bool(m.buttons()))
    assert "when:ongoing" in data_of(question), "straight to the first unanswered question"
    assert "When did it happen?" in question.text

    described = await press(server, user, "nav:back", lambda m: bool(m.buttons()))
    assert is_details(described), "Back reaches the question answered before, not the menu"
    agency = await press(server, user, "nav:back", lambda m: bool(m.buttons()))
    assert "agency:none" in data_of(agency)
    await press(server, user, "agency:none", is_details)
    review = await finish_report(
        server, user, first=lambda: user.press("report:done", user.last_message())
    )
    assert "They kept my March wages." in review.text, "the earlier answers were kept"
    assert "Wages" in review.text


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_lone_number_typed_while_describing_is_part_of_the_story(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    user = server.user(5_600_002, language_code="en")
    await onboard(server, user, "en")
    await begin_report(server, user)
    added = await ask(server, user, lambda: user.send_text("3"), lambda m: bool(m.buttons()))
    assert "menu:report" not in data_of(added), "3 is not the third button (Menu)"
    assert is_details(added)
    assert "Added" in added.text
    review = await finish_report(
        server, user, first=lambda: user.press("report:done", user.last_message())
    )
    assert "“3”" in review.text


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_cancelling_a_report_asks_first_with_keeping_it_first(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    user = server.user(5_600_003, language_code="en")
    await onboard(server, user, "en")
    await report(server, user, send=False)
    confirm = await press(server, user, "nav:cancel", lambda m: bool(m.buttons()))
    assert [b["callback_data"] for b in confirm.buttons()] == ["cancel:no", "cancel:yes"]
    assert "No, keep it" in confirm.buttons()[0]["text"]
    kept = await press(server, user, "cancel:no", lambda m: bool(m.buttons()))
    assert "review:send" in data_of(kept), "back to the review, the report untouched"
    assert "I was not paid for two months." in kept.text

    await press(server, user, "nav:cancel", has("cancel:yes"))
    deleted = await press(server, user, "cancel:yes", has("menu:report"))
    assert any("deleted" in m.text for m in user.messages()[-2:]), deleted.text
    fresh = await ask(server, user, lambda: user.send_command("report"), has("nav:menu"))
    assert "resume:continue" not in data_of(fresh), "the report is gone"
    assert "cat:wages" in data_of(fresh)


@pytest.fixture
async def staffed_bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    async with bot_with_staff_chat(backend, fake_telegram, telegram_runtime, STAFF_CHAT) as running:
        yield running


async def test_forget_while_staff_wait_for_the_workers_answer_warns_and_the_case_records_it(
    backend: Backend, staffed_bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    env = backend.environment(staffed_bot.settings)
    user = server.user(5_600_004, language_code="en")
    await onboard(server, user, "en")
    receipt = await report(server, user)
    assert receipt is not None
    ref = receipt.reference
    remediated = await run_wvb(env, "cases", "remediate", ref, "--summary", "Wages were paid.")
    assert remediated.returncode == 0, remediated.stderr
    await server.wait_for(lambda m: m.chat_id == user.chat_id and f"val:{ref}:yes" in data_of(m),
                          timeout=20)  # fmt: skip

    confirm = await ask(server, user, lambda: user.send_command("forget"), has("forget:yes"))
    assert [b["callback_data"] for b in confirm.buttons()] == ["forget:no", "forget:yes"]
    assert "staff will not be able to ask you whether it was fixed" in confirm.text
    assert ref in confirm.text
    await press(server, user, "forget:yes", lambda m: "/start" in m.text)

    [alert] = await server.wait_for(
        lambda m: m.chat_id == STAFF_CHAT and ref in m.text and "/forget" in m.text, timeout=20
    )
    assert "--unvalidated" in alert.text, "staff are told what they can do now"
    shown = await run_wvb(env, "cases", "show", ref, "--json")
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["status"] == "awaiting_validation", "only the worker's yes may close it"
    assert [e["action"] for e in case["events"]][-1] == "reporter_forgot"
    database = Database(staffed_bot.settings.database_url)
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

    other = server.user(5_600_005, language_code="en")  # the worker on another account
    status = await check_status(server, other, ref, receipt.code)
    assert "Waiting for your answer" in status.text
    assert "We will ask you" not in status.text
    assert "/forget" in status.text

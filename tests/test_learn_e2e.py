"""A lesson end to end: each real Telegram runtime against the fake Bot API, on SQLite + memory
and on PostgreSQL + Redis: /learn, a topic, Next, the bold title sent as an entity, and the
anonymous "Was this helpful?" counter in the database."""

from __future__ import annotations

from typing import Any

from locales.education import load_lesson
from services.education import LearningService
from storage.database import Database
from tests.bot_driver import ask, has, onboard, press, start_bot, stop_bot
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entities(message: SentMessage) -> list[dict[str, Any]]:
    found = message.params.get("entities") or []
    assert isinstance(found, list)
    for entity in found:
        assert entity["type"] == "bold"
        assert entity["offset"] >= 0
        assert entity["length"] > 0
        assert entity["offset"] + entity["length"] <= utf16(message.text)
    return found


async def test_a_lesson_over_telegram_with_a_bold_title_and_feedback_counted(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    lesson = load_lesson("pay", "en")
    assert lesson is not None
    assert len(lesson.pages) > 1, "the English pay lesson runs over more than one page"
    bot = await start_bot(backend, fake_telegram, telegram_runtime)
    try:
        user = fake_telegram.user(7_100_001, first_name="Mai", language_code="en")
        await onboard(fake_telegram, user, "en")
        await ask(fake_telegram, user, lambda: user.send_command("learn"), has("learn:open:pay"))
        page = await press(fake_telegram, user, "learn:open:pay", has("learn:page:pay:2"))
        assert page.text.startswith(lesson.title + "\n\n")
        title = entities(page)[0]
        assert (title["offset"], title["length"]) == (0, utf16(lesson.title))
        for number in range(2, len(lesson.pages) + 1):
            expected = f"learn:page:pay:{number + 1}"
            if number == len(lesson.pages):
                expected = "learn:rate:pay:yes"
            page = await press(fake_telegram, user, f"learn:page:pay:{number}", has(expected))
            entities(page)  # any bold inside the text
            assert f"Page {number} of {len(lesson.pages)}" in page.text
        assert "Was this helpful?" in page.text
        await press(fake_telegram, user, "learn:rate:pay:yes", has("learn:open:pay"))
        database = Database(bot.settings.database_url)
        try:
            assert await LearningService(database).feedback() == {("pay", "en"): (1, 0)}
        finally:
            await database.dispose()
    finally:
        await stop_bot(bot)

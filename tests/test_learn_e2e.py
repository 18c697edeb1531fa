"""A lesson end to end on each messenger (Telegram on both runtimes, WhatsApp), on SQLite + memory
and on PostgreSQL + Redis: /learn, a topic, Next, the bold title (a Telegram entity, WhatsApp's
``*…*``), and the anonymous "Was this helpful?" counter in the database."""

from __future__ import annotations

from locales.education import load_lesson
from services.education import LearningService
from storage.database import Database
from tests.fake_telegram_api import SentMessage
from tests.messenger_driver import Messenger, Said, ask, has, onboard, press


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def bold_parts(page: Said) -> tuple[str, ...]:
    """The page's bold parts; on Telegram each entity checked against the Bot API's rules."""
    if isinstance(page.raw, SentMessage):
        for entity in page.raw.params.get("entities") or []:
            assert entity["type"] == "bold"
            assert entity["offset"] >= 0
            assert entity["length"] > 0
            assert entity["offset"] + entity["length"] <= utf16(page.text)
    return page.bold


def starts_bold(page: Said, title: str) -> bool:
    """The page opens with ``title`` in bold, as its messenger marks it."""
    if isinstance(page.raw, SentMessage):  # an entity, counted in UTF-16 code units
        first = page.raw.params["entities"][0]
        return (first["offset"], first["length"]) == (0, utf16(title))
    return str(page.raw.text).startswith(f"*{title}*\n\n")  # WhatsApp's own markup


async def test_a_lesson_with_a_bold_title_and_feedback_counted(messenger: Messenger) -> None:
    lesson = load_lesson("pay", "en")
    assert lesson is not None
    assert len(lesson.pages) > 1, "the English pay lesson runs over more than one page"
    async with messenger.running():
        user = messenger.user(7_100_001, name="Mai", language_code="en")
        await onboard(user, "en")
        await ask(user, lambda: user.command("learn"), has("learn:open:pay"))
        page = await press(user, "learn:open:pay", has("learn:page:pay:2"))
        assert page.text.startswith(lesson.title + "\n\n")
        assert bold_parts(page)[0] == lesson.title
        assert starts_bold(page, lesson.title)
        for number in range(2, len(lesson.pages) + 1):
            expected = f"learn:page:pay:{number + 1}"
            if number == len(lesson.pages):
                expected = "learn:rate:pay:yes"
            page = await press(user, f"learn:page:pay:{number}", has(expected))
            bold_parts(page)  # any bold inside the text
            assert f"Page {number} of {len(lesson.pages)}" in page.text
        assert "Was this helpful?" in page.text
        await press(user, "learn:rate:pay:yes", has("learn:open:pay"))
        database = Database(messenger.settings.database_url)
        try:
            assert await LearningService(database).feedback() == {("pay", "en"): (1, 0)}
        finally:
            await database.dispose()

"""First contact without dead ends: what a worker asked for before onboarding is kept, the
language picker never reorders itself, the first screen greets in several scripts, Back works on
the language, privacy and opt-in screens, and a multi-select takes "2, 12" typed at once.

The engine is driven turn by turn (``Chat``), then the same paths run end to end over the fake
Telegram Bot API on both runtimes and through `wvb chat` in a terminal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conversations.engine import Turn
from conversations.messages import Choice
from conversations.turn import typed_choices
from locales import LANGUAGES, translator
from tests import bot_driver
from tests.bot_driver import ask, data_of, has, press, ticked
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer
from tests.test_conversation_core import WORKER, Chat, last_text, payloads
from tests.test_settings_and_cli import wvb

#: Scripts of the shipped languages other than Latin, as character ranges.
SCRIPTS = {
    "Thai": "[\u0e00-\u0e7f]",
    "Myanmar": "[\u1000-\u109f]",
    "Khmer": "[\u1780-\u17ff]",
    "Devanagari": "[\u0900-\u097f]",
    "Bengali": "[\u0980-\u09ff]",
}
LANGUAGE_PAYLOADS = [f"lang:{code}" for code in LANGUAGES]
TYPED_LISTS = {"2, 12", "2 12", "2,12", "๒ ๑๒", "၂၊ ၁၂", "２，１２"}


def labels(turn: Turn) -> list[str]:
    return [choice.label for choice in turn.replies[-1].choices]


async def accept_the_notice_and_decline_messages(chat: Chat) -> str:
    """From the privacy notice to wherever onboarding leads; return the step reached."""
    await chat.press("privacy:ok")
    await chat.press("sub:no")
    assert chat.state is not None
    return chat.state.step


# --- 5. Intent kept -------------------------------------------------------------------------


async def test_report_sent_before_onboarding_opens_the_report_once_the_notice_is_accepted() -> None:
    chat = Chat()
    first = await chat.command("report")
    assert "lang:en" in payloads(first), "language and privacy notice come first"
    await chat.press("lang:th")
    await chat.press("privacy:ok")
    report = await chat.press("sub:no")
    assert chat.state is not None
    assert chat.state.step == "report.categories"
    assert "cat:wages" in payloads(report)
    assert translator("th").gettext("Thank you. You are ready.") in report.replies[0].text
    assert "onboarding" not in chat.state.data, "the kept intent is used once"


async def test_learn_sent_before_onboarding_opens_the_topics_after_subscribing() -> None:
    chat = Chat()
    await chat.command("learn")
    await chat.press("lang:en")
    await chat.press("privacy:ok")
    await chat.press("sub:yes")  # workplaces are listed: they are asked first
    topics = await chat.press("sub:wp-skip")
    assert chat.state is not None
    assert chat.state.step == "learn.topics"
    assert chat.profiles.subscribed == {WORKER.pseudonym}
    assert "menu:report" not in payloads(topics)


async def test_report_sent_at_the_privacy_notice_is_kept_through_it() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.press("lang:en")
    again = await chat.command("report")
    assert chat.state is not None
    assert chat.state.step == "privacy", "the notice is shown again, not skipped"
    assert "privacy:ok" in payloads(again)
    assert await accept_the_notice_and_decline_messages(chat) == "report.categories"


async def test_only_the_command_name_is_kept_never_what_the_worker_typed() -> None:
    chat = Chat()
    await chat.command("report")
    await chat.text("my supervisor took my passport")  # not understood at the picker
    assert chat.state is not None
    stored = chat.state.to_json()
    assert "passport" not in stored
    assert json.loads(stored)["data"] == {"onboarding": {"intent": "report"}}


@pytest.mark.parametrize("typed", ["back", "menu", "/menu", "/report"])
async def test_back_or_menu_at_the_first_picker_keeps_the_intent(typed: str) -> None:
    chat = Chat()
    await chat.command("report")
    turn = await (chat.command(typed[1:]) if typed.startswith("/") else chat.text(typed))
    assert payloads(turn) == LANGUAGE_PAYLOADS, "the picker again"
    await chat.press("lang:en")
    assert await accept_the_notice_and_decline_messages(chat) == "report.categories"


async def test_start_drops_a_kept_intent() -> None:
    chat = Chat()
    await chat.command("report")
    await chat.command("start")
    menu = await chat.onboard("en")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert "menu:report" in payloads(menu)


async def test_status_works_before_onboarding_without_waiting_for_the_notice() -> None:
    # Decision: /status needs no keeping; a worker on a new phone checks a case at once.
    chat = Chat()
    await chat.command("status")
    assert chat.state is not None
    assert chat.state.step == "status.reference"


# --- 8a. One order for the language picker ----------------------------------------------------


@pytest.mark.parametrize("hint", [None, "th-TH", "km", "es-419", "xx"])
async def test_the_language_picker_keeps_one_order_whatever_the_messenger_language(
    hint: str | None,
) -> None:
    turn = await Chat(language_hint=hint).command("start")
    assert payloads(turn) == LANGUAGE_PAYLOADS
    names = [label.removesuffix(" ✓") for label in labels(turn)]
    assert names == list(LANGUAGES.values()), "each language's name in its own script"


async def test_the_messenger_language_is_marked_not_moved() -> None:
    turn = await Chat(language_hint="th-TH").command("start")
    marked = [label for label in labels(turn) if label.endswith(" ✓")]
    assert marked == ["ไทย ✓"]
    assert "ภาษา" in last_text(turn), "the picker speaks the messenger's language"


async def test_no_language_is_marked_when_nothing_suggests_one() -> None:
    turn = await Chat().command("start")
    assert not [label for label in labels(turn) if "✓" in label]


async def test_a_returning_worker_sees_their_language_marked_in_the_same_order() -> None:
    chat = Chat(language_hint="th")
    await chat.onboard("es")
    turn = await chat.command("language")
    assert payloads(turn)[: len(LANGUAGES)] == LANGUAGE_PAYLOADS
    assert [label for label in labels(turn) if "✓" in label] == ["Español ✓"]


# --- 8b. A multi-select takes several typed numbers -------------------------------------------


@pytest.mark.parametrize("typed", sorted(TYPED_LISTS))
async def test_categories_typed_as_a_list_are_all_chosen(typed: str) -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    turn = await chat.text(typed)
    assert chat.state is not None
    assert chat.state.data["report"]["categories"] == ["hours", "retaliation"]
    ticked_labels = [label for label in labels(turn) if label.startswith("✅")]
    assert len(ticked_labels) == 2


async def test_a_typed_list_adds_to_the_choice_and_keeps_what_was_chosen() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:hours")
    await chat.text("2 3")
    assert chat.state is not None
    assert chat.state.data["report"]["categories"] == ["hours", "fees"]


@pytest.mark.parametrize("typed", ["2, 99", "2, 14", "2, x", "2, 0"])
async def test_a_list_with_a_number_that_is_no_category_changes_nothing(typed: str) -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    turn = await chat.text(typed)  # 14 is Done: a list names problems, not buttons to press
    assert chat.state is not None
    assert chat.state.step == "report.categories"
    assert chat.state.data["report"]["categories"] == []
    assert "cat:wages" in payloads(turn)


def test_typed_choices_reads_numbers_in_any_script_with_commas_or_spaces() -> None:
    choices = tuple(Choice(str(n), f"c{n}") for n in range(1, 13))
    assert typed_choices(choices, "2, 12") == ["c2", "c12"]
    assert typed_choices(choices, " ๒  ๑๒ ") == ["c2", "c12"]
    assert typed_choices(choices, "2") is None, "one number is an ordinary choice"
    assert typed_choices(choices, "2, 13") is None
    assert typed_choices(choices, "2²") is None


# --- 8c. The first screen greets in several scripts --------------------------------------------


def greetings() -> list[str]:
    return [translator(code).gettext("Welcome") for code in LANGUAGES]


async def test_the_first_screen_greets_in_every_shipped_language_before_one_is_chosen() -> None:
    turn = await Chat().command("start")
    picker = last_text(turn)
    first_line = picker.splitlines()[0]
    assert len(set(greetings())) == len(LANGUAGES), "each catalog has its own greeting"
    for greeting in greetings():
        assert greeting in first_line
    assert len(first_line) <= 120, "short enough for a cheap phone's screen"


async def test_a_returning_worker_changing_language_is_not_greeted_again() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.command("language")
    assert translator("th").gettext("Welcome") not in last_text(turn)


def test_wvb_chat_greets_in_several_scripts_on_its_first_screen(tmp_path: Path) -> None:
    result = wvb("chat", cwd=tmp_path, stdin="/quit\n")
    assert result.returncode == 0, result.stderr
    first_screen = result.stdout.split("\n> ", 1)[0]
    assert "  1. English" in first_screen
    assert "  2. ไทย" in first_screen
    above_the_picker = first_screen.split("  1. English", 1)[0]
    for script, letters in SCRIPTS.items():
        assert re.search(letters, above_the_picker), f"no {script} greeting above the picker"


# --- 8d. Back on the language, privacy and opt-in screens ------------------------------------


async def test_the_first_picker_has_no_back_and_keeps_its_numbers() -> None:
    turn = await Chat().command("start")
    assert "nav:back" not in payloads(turn)


async def test_back_from_the_privacy_notice_reaches_the_picker_however_it_was_reached() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.press("lang:th")
    await chat.command("menu")  # the notice again, now without a trail to go back on
    assert chat.state is not None
    assert chat.state.step == "privacy"
    picker = await chat.press("nav:back")
    assert chat.state.step == "language"
    assert payloads(picker) == LANGUAGE_PAYLOADS
    await chat.press("lang:es")
    assert chat.state.step == "privacy"
    assert chat.state.language == "es"


async def test_back_from_the_opt_in_reaches_the_notice_and_onboarding_goes_on_from_there() -> None:
    chat = Chat()
    await chat.command("report")
    await chat.press("lang:en")
    offer = await chat.press("privacy:ok")
    assert payloads(offer) == ["sub:yes", "sub:no", "nav:back"], "Back comes last"
    notice = await chat.press("nav:back")
    assert chat.state is not None
    assert chat.state.step == "privacy"
    assert "privacy:ok" in payloads(notice)
    await chat.press("nav:back")
    assert chat.state.step == "language"
    privacy_in_spanish = await chat.press("lang:es")
    assert chat.state.step == "privacy", "still onboarding: the notice comes again"
    assert "privacidad" in last_text(privacy_in_spanish).casefold()
    step = await accept_the_notice_and_decline_messages(chat)
    assert step == "report.categories", "and the kept /report is still kept"
    assert chat.profiles.saved[WORKER.pseudonym][0] == "es"


async def test_a_returning_worker_goes_back_from_the_picker_to_the_menu_unchanged() -> None:
    chat = Chat()
    await chat.onboard("th")
    picker = await chat.command("language")
    assert payloads(picker) == [*LANGUAGE_PAYLOADS, "nav:back"], "Back comes last"
    menu = await chat.press("nav:back")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert chat.state.language == "th"
    assert "menu:report" in payloads(menu)


async def test_leaving_onboarding_after_the_notice_ends_it() -> None:
    chat = Chat()
    await chat.command("report")
    await chat.press("lang:en")
    await chat.press("privacy:ok")
    await chat.command("menu")  # skips the opt-in question
    await chat.command("language")
    await chat.press("lang:es")
    assert chat.state is not None
    assert chat.state.step == "menu", "an onboarded worker changing language, not a newcomer"


# --- end to end over the fake Telegram Bot API, both runtimes --------------------------------


async def test_telegram_newcomer_who_sends_report_first_reaches_the_report(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    server = fake_telegram
    user = server.user(7_100_001, language_code="th")
    async with bot_driver.running(backend, server, telegram_runtime):
        picker = await ask(
            server, user, lambda: user.send_command("report"), lambda m: "lang:en" in data_of(m)
        )
        assert [button["callback_data"] for button in picker.buttons()] == LANGUAGE_PAYLOADS
        assert "ไทย ✓" in picker.button_labels()
        assert re.search(SCRIPTS["Myanmar"], picker.text), "greeted in Burmese too"
        notice = await press(server, user, "lang:th", has("privacy:ok"))
        again = await press(server, user, "nav:back", lambda m: "lang:en" in data_of(m))
        assert again.message_id > notice.message_id, "Back from the notice: the picker"
        await press(server, user, "lang:th", has("privacy:ok"))
        await press(server, user, "privacy:ok", has("sub:yes", "nav:back"))
        await press(server, user, "sub:no", has("cat:wages"))


async def test_telegram_worker_types_several_category_numbers_at_once(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    server = fake_telegram
    user = server.user(7_100_002, language_code="en")
    async with bot_driver.running(backend, server, telegram_runtime):
        await bot_driver.onboard(server, user, "en")
        await ask(server, user, lambda: user.send_command("report"), has("cat:wages"))
        both = await ask(
            server,
            user,
            lambda: user.send_text("2, 12"),
            lambda m: ticked("cat:hours")(m) and ticked("cat:retaliation")(m),
        )
        assert not ticked("cat:wages")(both)

"""The conversation core on its own: no messenger, no database, microseconds per test.

The worker profiles here are a small in-memory implementation of the ``WorkerProfiles`` port;
the real, database-backed one is exercised in ``test_storage.py`` and the end-to-end tests.
"""

from __future__ import annotations

import pytest

from conversations.engine import ConversationEngine, Turn
from conversations.messages import Inbound, InboundKind
from conversations.ports import Services, WorkerProfile, WorkerRef
from conversations.state import ConversationState
from locales import LANGUAGES


class ProfilesInMemory:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[str, str]] = {}

    async def find(self, pseudonym: str) -> WorkerProfile | None:
        if pseudonym not in self.saved:
            return None
        return WorkerProfile(self.saved[pseudonym][0], subscribed=False)

    async def save(self, worker: WorkerRef, language: str) -> None:
        self.saved[worker.pseudonym] = (language, worker.address)


WORKER = WorkerRef(pseudonym="p" * 64, channel="test", address="42")


class Chat:
    """Drives the engine turn by turn, keeping the state the way a state store would."""

    def __init__(self, language_hint: str | None = None) -> None:
        self.profiles = ProfilesInMemory()
        self.engine = ConversationEngine(Services(profiles=self.profiles))
        self.state: ConversationState | None = None
        self.hint = language_hint

    async def send(self, inbound: Inbound) -> Turn:
        if self.state is not None:  # round-trip through JSON, as every store does
            self.state = ConversationState.from_json(self.state.to_json())
        turn = await self.engine.handle(WORKER, inbound, self.state)
        self.state = turn.state
        assert turn.replies, "the bot must always answer"
        return turn

    async def command(self, name: str) -> Turn:
        return await self.send(Inbound.command_of(name, self.hint))

    async def text(self, text: str) -> Turn:
        return await self.send(Inbound.text_of(text, self.hint))

    async def press(self, payload: str) -> Turn:
        return await self.send(Inbound.choice_of(payload, self.hint))

    async def onboard(self, language: str = "en") -> Turn:
        await self.command("start")
        await self.press(f"lang:{language}")
        return await self.press("privacy:ok")


def last_text(turn: Turn) -> str:
    return turn.replies[-1].text


def payloads(turn: Turn) -> list[str]:
    return [choice.payload for choice in turn.replies[-1].choices]


async def test_start_offers_every_language_named_in_its_own_script() -> None:
    turn = await Chat().command("start")
    labels = [choice.label for choice in turn.replies[-1].choices]
    assert labels == [
        "English",
        "ไทย",
        "မြန်မာ",
        "ខ្មែរ",
        "नेपाली",
        "বাংলা",
        "Bahasa Indonesia",
        "Español",
    ]
    assert set(labels) == set(LANGUAGES.values())


async def test_messenger_language_is_preselected_first_and_prompts_in_it() -> None:
    turn = await Chat(language_hint="th-TH").command("start")
    assert turn.replies[-1].choices[0].payload == "lang:th"
    assert "ภาษา" in last_text(turn)  # the picker speaks Thai before anything is chosen


async def test_onboarding_picks_language_shows_privacy_then_menu_and_saves_profile() -> None:
    chat = Chat()
    await chat.command("start")
    privacy = await chat.press("lang:th")
    assert chat.state is not None
    assert chat.state.step == "privacy"
    assert "/forget" in last_text(privacy)
    assert chat.profiles.saved == {}, "nothing is stored before the privacy notice is accepted"
    menu = await chat.press("privacy:ok")
    assert chat.state.step == "menu"
    assert payloads(menu) == [
        "menu:learn",
        "menu:report",
        "menu:status",
        "menu:language",
        "menu:help",
    ]
    assert chat.profiles.saved == {WORKER.pseudonym: ("th", "42")}


async def test_typed_number_presses_that_choice() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.text("2")  # ไทย is the second choice
    assert chat.state is not None
    assert chat.state.language == "th"
    assert chat.state.step == "privacy"


async def test_language_name_typed_out_is_understood() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.text("Español")
    assert chat.state is not None
    assert chat.state.language == "es"


@pytest.mark.parametrize(
    "inbound",
    [
        Inbound.text_of(""),
        Inbound.text_of("   "),
        Inbound.text_of("x" * 10_000),
        Inbound.text_of("99"),
        Inbound.media_of("sticker"),
        Inbound.media_of("photo", caption="look"),
        Inbound(InboundKind.UNSUPPORTED),
        Inbound.choice_of("no-such-button"),
        Inbound.choice_of("lang:xx"),
    ],
    ids=[
        "empty",
        "blank",
        "10k",
        "out-of-range",
        "sticker",
        "photo",
        "edited",
        "unknown-callback",
        "unknown-lang",
    ],
)
@pytest.mark.parametrize("step", ["language", "privacy", "menu"])
async def test_unexpected_input_gets_a_short_reprompt_at_every_step(
    step: str, inbound: Inbound
) -> None:
    chat = Chat()
    await chat.command("start")
    if step in ("privacy", "menu"):
        await chat.press("lang:en")
    if step == "menu":
        await chat.press("privacy:ok")
    assert chat.state is not None
    assert chat.state.step == step
    turn = await chat.send(inbound)
    assert chat.state.step == step, "garbage must not move the conversation"
    assert len(turn.replies) == 1
    reply = turn.replies[0]
    assert reply.choices, "the re-prompt repeats the question with its choices"
    assert len(reply.text) < 1500
    assert "x" * 100 not in reply.text, "the worker's text is never echoed back"


async def test_back_returns_to_the_previous_step() -> None:
    chat = Chat()
    await chat.command("start")
    await chat.press("lang:en")
    turn = await chat.press("nav:back")
    assert chat.state is not None
    assert chat.state.step == "language"
    assert "lang:en" in payloads(turn)


async def test_back_cancel_and_menu_are_understood_as_typed_words_in_the_workers_language() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press("menu:language")
    assert chat.state is not None
    assert chat.state.step == "language"
    await chat.text("back")
    assert chat.state.step == "menu"
    await chat.press("menu:language")
    await chat.text("Cancel")
    assert chat.state.step == "menu"
    await chat.press("menu:language")
    await chat.text("MENU")
    assert chat.state.step == "menu"


async def test_menu_help_and_language_work_from_anywhere() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press("menu:language")
    help_turn = await chat.command("help")
    assert "/report" in help_turn.replies[0].text
    assert chat.state is not None
    assert chat.state.step == "menu"
    await chat.command("language")
    assert chat.state.step == "language"
    await chat.command("menu")
    assert chat.state.step == "menu"


async def test_changing_language_after_onboarding_updates_profile_and_returns_to_menu() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("language")
    turn = await chat.press("lang:es")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert "Español" in turn.replies[0].text
    assert chat.profiles.saved[WORKER.pseudonym][0] == "es"


@pytest.mark.parametrize("command", ["learn", "report", "status", "stop", "subscribe", "forget"])
async def test_features_still_to_come_answer_coming_soon_translated(command: str) -> None:
    chat = Chat()
    await chat.onboard("es")
    turn = await chat.command(command)
    assert "coming soon" not in turn.replies[0].text  # Spanish, not the English source
    assert chat.state is not None
    assert chat.state.step == "menu"


async def test_unknown_command_lists_the_commands() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.command("frobnicate")
    assert "/start" in turn.replies[0].text
    assert "/forget" in turn.replies[0].text


async def test_first_message_without_start_begins_onboarding() -> None:
    chat = Chat(language_hint="km")
    turn = await chat.text("hello")
    assert chat.state is not None
    assert chat.state.step == "language"
    assert turn.replies[-1].choices[0].payload == "lang:km"


async def test_returning_worker_with_expired_state_lands_in_the_menu_in_their_language() -> None:
    chat = Chat()
    await chat.onboard("th")
    chat.state = None  # the idle draft expired; the profile remains
    turn = await chat.text("hello")
    assert chat.state is not None
    assert chat.state.step == "menu"
    assert chat.state.language == "th"
    assert "menu:report" in payloads(turn)


async def test_state_from_an_unknown_version_starts_over() -> None:
    assert ConversationState.from_json('{"v": 999, "step": "x"}') == ConversationState()

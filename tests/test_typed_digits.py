"""Numbers typed in any script: Thai, Myanmar and full-width digits press a choice like ASCII
ones; digit-like characters that are not numbers ("②", "²") are just text and never crash a turn
(they used to raise inside int(), and the worker's text reached the log in the traceback)."""

from __future__ import annotations

import io

import pytest

from bot.channels.console import ConsoleChannel
from bot.channels.gateway import ConversationGateway
from conversations.messages import Choice, InboundKind, Outbound
from conversations.turn import match_typed_choice
from domain.references import normalize_reference
from storage.conversation_state import MemoryConversationStore
from storage.crypto import Keyring, Pseudonymizer
from tests.test_conversation_core import Chat, payloads

CHOICES = (Choice("One", "one"), Choice("Two", "two"), Choice("Three", "three"))


@pytest.mark.parametrize("typed", ["2", "๒", "၂", "２", "2."])
def test_a_number_in_any_script_presses_that_choice(typed: str) -> None:
    assert match_typed_choice(CHOICES, typed) == "two"


@pytest.mark.parametrize("typed", ["②", "²", "₂", "2²"])
def test_digit_like_characters_are_not_choices(typed: str) -> None:
    assert match_typed_choice(CHOICES, typed) is None


@pytest.mark.parametrize("typed", ["②", "²"])
async def test_typing_a_circled_or_superscript_digit_gets_a_reprompt(typed: str) -> None:
    chat = Chat()
    menu = await chat.onboard()
    turn = await chat.text(typed)
    assert turn.replies, "answered, not crashed"
    assert payloads(turn) == payloads(menu), "the same menu again"


async def test_the_console_reads_a_superscript_digit_as_text() -> None:
    chat = Chat()
    gateway = ConversationGateway(
        chat.engine, MemoryConversationStore(Keyring((b"k" * 32,)), 3600), Pseudonymizer(b"s" * 32)
    )
    typed = iter(["²", "๓"])
    console = ConsoleChannel(gateway, read_line=lambda: next(typed), output=io.StringIO())
    console.arrive(Outbound("A message from staff", CHOICES))  # then shown before the prompt
    assert console.inbound(await console.read() or "").kind is InboundKind.TEXT
    assert console.inbound(await console.read() or "").payload == "three"


@pytest.mark.parametrize(
    "typed",
    ["K7M3-9Q2X", "k7m3 9q2x", "Ｋ７Ｍ３－９Ｑ２Ｘ", "K๗M๓ ๙Q๒X", "K၇M၃-၉Q၂X"],
)
def test_a_reference_typed_with_any_script_digits_is_read_back(typed: str) -> None:
    assert normalize_reference(typed) == "K7M3-9Q2X"


def test_a_reference_with_letters_of_another_script_is_no_reference() -> None:
    assert normalize_reference("K7M3-9Qกก") is None


@pytest.mark.parametrize("typed", ["2" * 5000, "๒" * 4301, "0" * 4400 + "2"])
def test_a_number_thousands_of_digits_long_is_no_choice(typed: str) -> None:
    # Found by tests/test_fuzz.py: int() refuses strings of over 4300 digits (ValueError).
    assert match_typed_choice(CHOICES, typed) is None


async def test_typing_thousands_of_digits_gets_a_reprompt() -> None:
    chat = Chat()
    menu = await chat.onboard()
    turn = await chat.text("7" * 9772)
    assert payloads(turn) == payloads(menu), "the same menu again, not a failed turn"


async def test_the_console_reads_thousands_of_digits_as_text() -> None:
    chat = Chat()
    gateway = ConversationGateway(
        chat.engine, MemoryConversationStore(Keyring((b"k" * 32,)), 3600), Pseudonymizer(b"s" * 32)
    )
    console = ConsoleChannel(gateway, read_line=lambda: "", output=io.StringIO())
    console.arrive(Outbound("A message from staff", CHOICES))
    await console.read()  # shows the message and its choices
    assert console.inbound("2" * 5000).kind is InboundKind.TEXT
    assert console.inbound("๒").payload == "two"

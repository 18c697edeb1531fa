"""A service refuses with a field and a reason; each surface says it in its own syntax."""

from __future__ import annotations

from bot.channels.staff_chat import StaffChat
from cli.common import refusal_line
from domain.errors import CaseNotFound, Refusal
from services.lifecycle import LifecycleError


def test_the_cli_names_the_flag_of_the_refused_field() -> None:
    assert refusal_line(Refusal("text", "must not be empty")) == "--text: must not be empty"
    assert refusal_line(Refusal("summary_in", "unknown language 'xx'")) == (
        "--summary-in: unknown language 'xx'"
    )
    assert refusal_line(Refusal("texts", "the th text is empty")) == (
        "--text-file: the th text is empty"
    )
    assert refusal_line(Refusal("assignee", "no active staff member named 'Ana'")) == (
        "--to: no active staff member named 'Ana' (see `wvb staff list`)"
    )


def test_the_cli_says_a_refusal_of_an_argument_or_of_the_case_as_it_is_plainly() -> None:
    assert refusal_line(CaseNotFound("k7m3 9q2x")) == "no case with reference 'k7m3 9q2x'"
    assert refusal_line(Refusal("tag", "a tag is 1-40 letters")) == "a tag is 1-40 letters"
    assert refusal_line(LifecycleError(None, "the case is already closed")) == (
        "the case is already closed"
    )


def test_the_staff_chat_shows_the_usage_of_the_command_when_what_was_typed_is_at_fault() -> None:
    assert StaffChat.refused("note", Refusal("text", "must not be empty")) == (
        "Refused: text: must not be empty\nUsage: /note REFERENCE text"
    )
    assert StaffChat.refused("close", LifecycleError("reason", "needs a reason")) == (
        "Refused: reason: needs a reason\nUsage: /close REFERENCE [unvalidated reason]"
    )
    assert StaffChat.refused("case", CaseNotFound("K7M3")) == (
        "Refused: no case with reference 'K7M3'"
    )
    assert StaffChat.refused("ack", LifecycleError(None, "the case is already acknowledged")) == (
        "Refused: the case is already acknowledged"
    )

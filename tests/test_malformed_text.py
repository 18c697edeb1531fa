"""Text that is not valid Unicode — lone UTF-16 surrogates, which a malformed update's JSON
("\\ud800") or a terminal's undecodable bytes (surrogateescape) produce — is answered like any
other text. It used to fail the turn after the engine ran: the state could not be encoded to be
saved, outside the gateway's error handling, so the worker got no answer (found by
tests/test_fuzz.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conversations.messages import Effects, Inbound, Outbound
from tests.test_conversation_core import Chat
from tests.test_gateway_logs import gateway_of

LONE = ["x\ud800y", "\udcff", "ok \udbff"]


@pytest.mark.parametrize("typed", LONE)
async def test_a_lone_surrogate_typed_where_text_is_kept_gets_an_answer(typed: str) -> None:
    gateway = gateway_of(Chat())
    worker = gateway.worker("telegram", 7, 7)
    answers: list[Sequence[Outbound]] = []

    async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
        answers.append(replies)

    walk = [
        Inbound.command_of("start"),
        Inbound.choice_of("lang:en"),
        Inbound.choice_of("privacy:ok"),
        Inbound.choice_of("sub:no"),
        Inbound.command_of("report"),
        Inbound.choice_of("cat:wages"),
        Inbound.choice_of("report:done"),
        Inbound.choice_of("wp:other"),
        Inbound.text_of(typed),  # the workplace, kept in the conversation state
        Inbound.text_of(typed + " agency"),
    ]
    for inbound in walk:
        await gateway.handle(worker, inbound, deliver)
    assert len(answers) == len(walk), "every turn answered"
    state = await gateway.store.load(worker.pseudonym)
    assert state is not None
    assert state.step == "report.details", "the conversation went on"
    assert "\ufffd" in state.to_json(), "the broken character is kept as U+FFFD"


@pytest.mark.parametrize("typed", LONE)
async def test_a_lone_surrogate_in_a_command_payload_or_hint_gets_an_answer(typed: str) -> None:
    gateway = gateway_of(Chat())
    worker = gateway.worker("telegram", 8, 8)
    answers: list[Sequence[Outbound]] = []

    async def deliver(replies: Sequence[Outbound], effects: Effects) -> None:
        answers.append(replies)

    for inbound in (
        Inbound.command_of(typed, language_hint=typed),
        Inbound.choice_of(typed, language_hint=typed),
        Inbound.media_of("document", typed, typed, mime=typed),
    ):
        await gateway.handle(worker, inbound, deliver)
    assert len(answers) == 3

"""What the gateway writes to the log: a random id per turn, never the worker's pseudonym, and
for a failed turn where it failed but not the exception's message (it may quote the worker)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from bot.channels.gateway import ConversationGateway
from conversations.messages import Effects, Inbound, Outbound
from storage.conversation_state import MemoryConversationStore
from storage.crypto import Keyring, Pseudonymizer
from tests.test_conversation_core import Chat

TYPED = "my supervisor Ko Aung took my passport"


def gateway_of(chat: Chat) -> ConversationGateway:
    store = MemoryConversationStore(Keyring((b"k" * 32,)), 3600)
    return ConversationGateway(chat.engine, store, Pseudonymizer(b"s" * 32))


async def nowhere(replies: Sequence[Outbound], effects: Effects) -> None:
    return None


async def test_turns_are_logged_by_a_random_id_not_the_pseudonym(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    gateway = gateway_of(Chat())
    worker = gateway.worker("telegram", 4_242_424_242, 4_242_424_242)
    for _ in range(2):
        await gateway.handle(worker, Inbound.command_of("start"), nowhere)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.channels.gateway"]
    assert len(lines) == 2
    assert all(worker.pseudonym[:8] not in line for line in lines)
    first, second = (line.split(":")[0] for line in lines)
    assert first != second, "two turns of one worker cannot be linked by their ids"


async def test_a_failed_turn_logs_where_not_what_the_worker_typed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = Chat()

    async def broken(*args: object) -> object:
        raise ValueError(f"invalid literal: {TYPED!r}")

    chat.engine.handle = broken  # type: ignore[method-assign]
    gateway = gateway_of(chat)
    replies: list[Outbound] = []

    async def deliver(sent: Sequence[Outbound], effects: Effects) -> None:
        replies.extend(sent)

    worker = gateway.worker("telegram", 1, 1)
    await gateway.handle(worker, Inbound.text_of(TYPED), deliver)
    assert replies, "the worker is told to try again"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "ValueError" in logged
    assert "test_gateway_logs.py" in logged
    assert "Ko Aung" not in logged

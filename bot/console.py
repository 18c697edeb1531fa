"""The console channel: the same conversations in a terminal, with numbered choices.

It is the newcomer's first contact with the bot and a tool for translators checking their work.
Typing a choice's number presses it; ``/quit`` or end of input leaves.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from bot.gateway import ConversationGateway
from conversations.messages import Effects, Inbound, Outbound

CHANNEL = "console"
QUIT_WORDS = frozenset({"/quit", "/exit"})


def render(reply: Outbound) -> str:
    lines = [reply.text]
    if reply.choices:
        lines.append("")
        lines.extend(
            f"  {number}. {choice.label}" for number, choice in enumerate(reply.choices, start=1)
        )
    return "\n".join(lines)


def parse(line: str, language_hint: str | None = None) -> Inbound:
    text = line.strip()
    if text.startswith("/") and len(text) > 1:
        return Inbound.command_of(text[1:].split(maxsplit=1)[0], language_hint)
    return Inbound.text_of(text, language_hint)


class ConsoleChannel:
    def __init__(
        self,
        gateway: ConversationGateway,
        *,
        identity: str = "local",
        read_line: Callable[[], str] | None = None,
        output: TextIO | None = None,
    ) -> None:
        self.gateway = gateway
        self.worker = gateway.worker(CHANNEL, identity, identity)
        self._read_line = read_line or _prompt
        self._output = output or sys.stdout

    async def deliver(self, replies: Sequence[Outbound], effects: Effects) -> None:
        if effects.erase_chat:
            self._output.write("\n(" + "the conversation history would be erased here" + ")\n")
        for reply in replies:
            self._output.write("\n" + render(reply) + "\n")
        self._output.flush()

    async def run(self, first: str = "/menu") -> None:
        line: str | None = first
        while line is not None:
            if line.strip().lower() in QUIT_WORDS:
                break
            await self.gateway.handle(self.worker, parse(line), self.deliver)
            try:
                line = await asyncio.to_thread(self._read_line)
            except EOFError:
                line = None
        self._output.write("\n")
        self._output.flush()


def _prompt() -> str:
    return input("\n> ")

"""The console channel: the same conversations in a terminal, with numbered choices.

It is the newcomer's first contact with the bot and a tool for translators checking their work.
Typing a choice's number presses it (where the bot asks for words, choices are bullets and a
typed number is words; typing a choice's word presses it); ``/quit`` or end of input leaves.

It is a full channel: messages that reach a worker outside a turn (an acknowledgement, a staff
reply, a validation prompt, a reminder, a broadcast) come through its ``Sender`` from the relays
that `wvb chat` runs, and are printed at once (or before the next prompt while a turn runs).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from bot.channels.gateway import ConversationGateway
from bot.channels.sending import ChannelDown, Sender
from conversations.messages import ChannelCapabilities, Choice, Effects, Inbound, Outbound
from conversations.turn import typed_number
from storage.send_rate import MemorySendRate, SendRate

CHANNEL = "console"
#: A terminal can neither delete what is on the screen nor stop it being copied: the worker is
#: told to clear it instead of being told it was deleted.
CAPABILITIES = ChannelCapabilities(can_delete_messages=False, can_protect_content=False)
QUIT_WORDS = frozenset({"/quit", "/exit"})
PROMPT = "\n> "


def render(reply: Outbound) -> str:
    """The text, then the choices: numbered, or where the bot asks for words (and a typed
    number is words) as bullets, pressed by typing their word ("Done", "Back")."""
    lines = [reply.text]
    if reply.choices:
        lines.append("")
        if reply.numbered:
            lines.extend(
                f"  {number}. {choice.label}"
                for number, choice in enumerate(reply.choices, start=1)
            )
        else:
            lines.extend(f"  • {choice.label}" for choice in reply.choices)
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
        rate: SendRate | None = None,
    ) -> None:
        self.gateway = gateway
        self.rate: SendRate = rate or MemorySendRate(100)
        self.identity = identity
        self.worker = gateway.worker(CHANNEL, identity, identity, CAPABILITIES)
        self._read_line = read_line or _prompt
        self._output = output or sys.stdout
        self._at_prompt = False  # waiting for the worker to type: print arrivals at once
        self._arrived: list[Outbound] = []
        self._sent = 0
        # The choices of a message that arrived outside a turn, while it is the last menu on
        # screen: a typed number then presses its button (on Telegram the worker would tap it).
        self._arrival_choices: tuple[Choice, ...] = ()

    @property
    def name(self) -> str:
        return CHANNEL

    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def sender(self) -> Sender:
        return ConsoleSender(self)

    def broadcast_sender(self) -> Sender:
        return ConsoleSender(self)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    def _next_ids(self, count: int) -> list[str]:
        self._sent += count
        return [str(number) for number in range(self._sent - count + 1, self._sent + 1)]

    def arrive(self, message: Outbound) -> list[str]:
        """A message from outside the turn (relays): shown now if the worker is at the prompt,
        else right after the turn's own replies."""
        if self._at_prompt:
            self._show(message)
            self._output.write(PROMPT)
            self._output.flush()
        else:
            self._arrived.append(message)
        return self._next_ids(1)

    def _show(self, message: Outbound) -> None:
        self._output.write("\n" + render(message) + "\n")
        if message.choices:
            self._arrival_choices = message.choices

    async def deliver(self, replies: Sequence[Outbound], effects: Effects) -> None:
        # Erasing effects are not for a terminal (CAPABILITIES): the core told the worker so.
        for reply in replies:
            self._output.write("\n" + render(reply) + "\n")
            if reply.choices:
                self._arrival_choices = ()
        self._output.flush()

    def _show_arrived(self) -> None:
        arrived, self._arrived = self._arrived, []
        for message in arrived:
            self._show(message)
        self._output.flush()

    def inbound(self, line: str) -> Inbound:
        """What the typed line means: a number presses a choice of a message that arrived
        outside the turn if that is the last menu shown; anything else goes to the core."""
        text = line.strip()
        index = typed_number(text, len(self._arrival_choices))
        if index is not None:
            return Inbound.choice_of(self._arrival_choices[index].payload)
        return parse(line)

    async def read(self) -> str | None:
        """The next line the worker types (None at end of input)."""
        self._show_arrived()
        self._at_prompt = True
        try:
            return await asyncio.to_thread(self._read_line)
        except EOFError:
            return None
        finally:
            self._at_prompt = False

    async def run(self, stop: asyncio.Event | None = None, first: str = "/menu") -> None:
        """The conversation until /quit or end of input (then ``stop`` is set, if given)."""
        line: str | None = first
        while line is not None and not (stop is not None and stop.is_set()):
            if line.strip().lower() in QUIT_WORDS:
                break
            await self.gateway.handle(self.worker, self.inbound(line), self.deliver)
            line = await self.read()
        self._output.write("\n")
        self._output.flush()
        if stop is not None:
            stop.set()


class ConsoleSender:
    """The relays' way into the terminal. Only the worker chatting in this terminal can be
    reached; a message for another console worker (``wvb chat --as`` someone else) waits until
    they chat, without spending its attempts."""

    channel = CHANNEL

    def __init__(self, console: ConsoleChannel) -> None:
        self.console = console

    async def send(self, address: str, message: Outbound) -> list[str]:
        if address != self.console.identity:
            raise ChannelDown("that console worker is not chatting now")
        return self.console.arrive(message)


def _prompt() -> str:
    return input(PROMPT)

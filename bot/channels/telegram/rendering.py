"""Render the core's ``Outbound`` messages the way Telegram shows them, on either runtime.

Nothing here imports aiogram or python-telegram-bot: the policy (where text is split, which
spans are bold, which part carries the buttons, when a pressed message is edited in place) is
written once, and each runtime only turns the result into its own types and API calls
(``MessageApi``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from conversations.messages import Choice, Outbound, utf16_length

#: Telegram's limit on message text, counted in UTF-16 code units.
MAX_MESSAGE_LENGTH = 4096


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split text into parts within ``limit``, preferring paragraph, line and word breaks."""
    if utf16_length(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while utf16_length(rest) > limit:
        cut = _largest_prefix(rest, limit)
        window = rest[:cut]
        for separator in ("\n\n", "\n", " "):
            position = window.rfind(separator)
            if position > cut // 2:
                cut = position + len(separator)
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest.strip():
        parts.append(rest)
    return [part for part in parts if part]


def _largest_prefix(text: str, limit: int) -> int:
    """The number of characters whose UTF-16 length fits within ``limit``."""
    units = 0
    for index, character in enumerate(text):
        units += 2 if ord(character) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


@dataclass(frozen=True)
class Entity:
    """A Telegram message entity as the Bot API counts it (UTF-16 offset and length)."""

    type: str
    offset: int
    length: int


def bold_entities(text: str, spans: tuple[tuple[int, int], ...]) -> list[Entity] | None:
    """Bold spans (Python string indices) as Telegram entities (UTF-16 offsets and lengths)."""
    entities = []
    for start, length in spans:
        if start < 0 or length <= 0 or start + length > len(text):
            continue  # never send an entity Telegram would reject the whole message for
        entities.append(
            Entity(
                type="bold",
                offset=utf16_length(text[:start]),
                length=utf16_length(text[start : start + length]),
            )
        )
    return entities or None


def keyboard_rows(message: Outbound) -> list[list[Choice]] | None:
    """The message's buttons laid out in rows of ``columns``; None without buttons."""
    if not message.choices:
        return None
    columns = max(1, message.columns)
    choices = list(message.choices)
    return [choices[index : index + columns] for index in range(0, len(choices), columns)]


class MessageApi(Protocol):
    """The two Bot API calls rendering needs, in a runtime's own types."""

    async def edit_text(
        self, chat_id: int, message_id: int, reply: Outbound, entities: list[Entity] | None
    ) -> bool:
        """Replace the text and buttons of ``message_id`` with ``reply``'s; False when
        Telegram refuses (too old, or not modified), so a new message goes instead."""

    async def send_text(
        self,
        chat_id: int,
        text: str,
        reply: Outbound,
        *,
        with_buttons: bool,
        entities: list[Entity] | None,
    ) -> int:
        """Send one part of ``reply``; return its message id."""


async def send_rendered(
    api: MessageApi, chat_id: int, reply: Outbound, *, pressed_message_id: int | None = None
) -> list[int]:
    """Send one ``Outbound`` as Telegram shows it (or, for a toggled choice, update the pressed
    message in place); return the ids of the new messages."""
    parts = split_text(reply.text)
    # Formatting only on a message sent whole: a split one goes out as plain parts.
    entities = bold_entities(reply.text, reply.bold) if len(parts) == 1 else None
    pressed = pressed_message_id if reply.replace_previous and len(parts) == 1 else None
    if pressed is not None and await api.edit_text(chat_id, pressed, reply, entities):
        return []
    sent: list[int] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent.append(await api.send_text(chat_id, part, reply, with_buttons=last, entities=entities))
    return sent


async def send_replies(
    api: MessageApi,
    chat_id: int,
    replies: Sequence[Outbound],
    *,
    pressed_message_id: int | None = None,
) -> list[int]:
    """Send a turn's replies in order (a toggle updates the pressed message in place); return
    the ids of the new messages."""
    sent: list[int] = []
    for reply in replies:
        sent += await send_rendered(api, chat_id, reply, pressed_message_id=pressed_message_id)
    return sent

"""Render the core's ``Outbound`` messages the way Telegram shows them."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity

from conversations.messages import Outbound, utf16_length

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


def bold_entities(text: str, spans: tuple[tuple[int, int], ...]) -> list[MessageEntity] | None:
    """Bold spans (Python string indices) as Telegram entities (UTF-16 offsets and lengths)."""
    entities = []
    for start, length in spans:
        if start < 0 or length <= 0 or start + length > len(text):
            continue  # never send an entity Telegram would reject the whole message for
        entities.append(
            MessageEntity(
                type="bold",
                offset=utf16_length(text[:start]),
                length=utf16_length(text[start : start + length]),
            )
        )
    return entities or None


def keyboard(message: Outbound) -> InlineKeyboardMarkup | None:
    if not message.choices:
        return None
    columns = max(1, message.columns)
    buttons = [
        InlineKeyboardButton(text=choice.label, callback_data=choice.payload)
        for choice in message.choices
    ]
    rows = [buttons[index : index + columns] for index in range(0, len(buttons), columns)]
    return InlineKeyboardMarkup(inline_keyboard=rows)

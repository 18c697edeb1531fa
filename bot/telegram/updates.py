"""Turn Telegram messages and button presses into the core's ``Inbound`` events."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message

from conversations.messages import Inbound, InboundKind

# Message attributes that carry a file, in the order Telegram documents them.
_MEDIA_KINDS = (
    "photo",
    "voice",
    "audio",
    "document",
    "video",
    "video_note",
    "animation",
    "sticker",
)


def language_hint(message_or_query: Message | CallbackQuery) -> str | None:
    user = message_or_query.from_user
    return user.language_code if user else None


def inbound_from_message(message: Message, bot_username: str | None) -> Inbound:
    hint = language_hint(message)
    if message.text is not None:
        text = message.text
        if text.startswith("/"):
            word = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
            name, _, addressee = word.partition("@")
            if name and (not addressee or addressee.lower() == (bot_username or "").lower()):
                return Inbound.command_of(name, hint)
        return Inbound.text_of(text, hint)
    for kind in _MEDIA_KINDS:
        if getattr(message, kind, None):
            return Inbound.media_of(kind, message.caption or "", hint)
    return Inbound(InboundKind.UNSUPPORTED, language_hint=hint)


def inbound_from_callback(query: CallbackQuery) -> Inbound:
    return Inbound.choice_of(query.data or "", language_hint(query))

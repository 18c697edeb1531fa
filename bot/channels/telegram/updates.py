"""Turn Telegram messages and button presses into the core's ``Inbound`` events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiogram.types import CallbackQuery, Message

from conversations.messages import FetchMedia, Inbound, InboundKind

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


@dataclass(frozen=True)
class MediaFile:
    kind: str
    file_id: str
    size: int | None
    mime: str


def language_hint(message_or_query: Message | CallbackQuery) -> str | None:
    user = message_or_query.from_user
    return user.language_code if user else None


def media_file(message: Message) -> MediaFile | None:
    """The file a message carries (for a photo, its largest size)."""
    for kind in _MEDIA_KINDS:
        value = getattr(message, kind, None)
        if not value:
            continue
        item = value[-1] if isinstance(value, list) else value
        mime = getattr(item, "mime_type", None) or ("image/jpeg" if kind == "photo" else "")
        return MediaFile(kind, item.file_id, getattr(item, "file_size", None), mime)
    return None


def inbound_from_message(
    message: Message,
    bot_username: str | None,
    fetcher: Callable[[MediaFile], FetchMedia],
) -> Inbound:
    hint = language_hint(message)
    if message.text is not None:
        text = message.text
        if text.startswith("/"):
            word = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
            name, _, addressee = word.partition("@")
            if name and (not addressee or addressee.lower() == (bot_username or "").lower()):
                return Inbound.command_of(name, hint)
        return Inbound.text_of(text, hint)
    media = media_file(message)
    if media is not None:
        return Inbound.media_of(
            media.kind, message.caption or "", hint, mime=media.mime, fetch=fetcher(media)
        )
    return Inbound(InboundKind.UNSUPPORTED, language_hint=hint)


def inbound_from_callback(query: CallbackQuery) -> Inbound:
    return Inbound.choice_of(query.data or "", language_hint(query))

"""Turn Telegram messages and button presses into the core's ``Inbound`` events.

Written against the Bot API's field names only (``text``, ``caption``, ``from_user``, ``photo``
...), which aiogram's and python-telegram-bot's objects both carry, so both runtimes translate
updates with this one module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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


class _User(Protocol):
    @property
    def language_code(self) -> str | None: ...


class _Sent(Protocol):
    """A message or a button press: something a user sent."""

    @property
    def from_user(self) -> _User | None: ...


class TelegramMessage(_Sent, Protocol):
    @property
    def text(self) -> str | None: ...

    @property
    def edit_date(self) -> object | None: ...

    @property
    def caption(self) -> str | None: ...


class TelegramCallback(_Sent, Protocol):
    @property
    def data(self) -> str | None: ...


@dataclass(frozen=True)
class MediaFile:
    kind: str
    file_id: str
    size: int | None
    mime: str


def language_hint(message_or_query: _Sent) -> str | None:
    user = message_or_query.from_user
    return user.language_code if user else None


def media_file(message: object) -> MediaFile | None:
    """The file a message carries (for a photo, its largest size)."""
    for kind in _MEDIA_KINDS:
        value = getattr(message, kind, None)
        if not value:
            continue
        item = value[-1] if isinstance(value, list | tuple) else value
        mime = getattr(item, "mime_type", None) or ("image/jpeg" if kind == "photo" else "")
        return MediaFile(kind, item.file_id, getattr(item, "file_size", None), mime)
    return None


def typed_text(message: object) -> str | None:
    """The text of a message its sender typed: None for a forwarded message (someone else's
    words, perhaps a staff command copied from elsewhere) and for a file's caption. Staff
    commands are read only from this."""
    if getattr(message, "forward_origin", None) is not None:
        return None
    text = getattr(message, "text", None)
    return text if isinstance(text, str) else None


def command_name(text: str, bot_username: str | None) -> str | None:
    """The command ``text`` gives this bot (``/name`` or ``/name@this_bot``); None for plain
    text and for a command addressed to another bot."""
    if not text.startswith("/"):
        return None
    word = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
    name, _, addressee = word.partition("@")
    if name and (not addressee or addressee.lower() == (bot_username or "").lower()):
        return name
    return None


def inbound_from_message(
    message: TelegramMessage,
    bot_username: str | None,
    fetcher: Callable[[MediaFile], FetchMedia],
) -> Inbound:
    hint = language_hint(message)
    if message.edit_date is not None:  # an edited message: ask for a new one instead
        return Inbound(InboundKind.UNSUPPORTED, language_hint=hint)
    if message.text is not None:
        name = command_name(message.text, bot_username)
        if name is not None:
            return Inbound.command_of(name, hint)
        return Inbound.text_of(message.text, hint)
    media = media_file(message)
    if media is not None:
        return Inbound.media_of(
            media.kind, message.caption or "", hint, mime=media.mime, fetch=fetcher(media)
        )
    return Inbound(InboundKind.UNSUPPORTED, language_hint=hint)


def inbound_from_callback(query: TelegramCallback) -> Inbound:
    return Inbound.choice_of(query.data or "", language_hint(query))

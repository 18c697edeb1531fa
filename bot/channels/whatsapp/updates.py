"""Read a WhatsApp Cloud API webhook body into small typed records, and those into ``Inbound``.

Written by hand instead of using pywa's receive side (docs/design/whatsapp.md §1): pywa reads only
the first message of a batched POST and raises on payloads without ``user_id``, on a list reply
without ``context`` and on ``{}``. This parser never raises, whatever JSON (or non-JSON) it gets,
and keeps every entry, every change and every message and status of a batch, in order.

A wamid encodes the recipient's phone number, and ``from`` / ``wa_id`` are phone numbers: the
records keep them out of their ``repr`` so a stray log line or traceback cannot show them.

A message keeps both of its sender's ids, the phone number (``wa_id``) and the business-scoped
user id (``user_id``, a BSUID), each when the payload has it: who the sender is, and where to
write back, is decided from both in ``identity.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial

from bot.channels.whatsapp.identity import is_user_id, is_wa_id, language_hint
from conversations.messages import Inbound, InboundKind

#: A timestamp longer than this is not a Unix time (and ``int()`` of a huge digit string raises).
_MAX_TIMESTAMP_DIGITS = 12
#: The ``Inbound.media`` name of each WhatsApp media kind: the names the core already knows from
#: Telegram ("photo" for a picture).
_MEDIA_NAMES = {"image": "photo", "document": "document", "audio": "audio", "voice": "voice"}


class MessageKind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"  # a reply button or a list row
    TEMPLATE_REPLY = "template_reply"  # the quick-reply button of a template ("Show message")
    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VOICE = "voice"
    UNSUPPORTED = "unsupported"  # a reaction, location, sticker, contact card, anything else


class StatusKind(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"  # "deleted", or anything Meta adds later


@dataclass(frozen=True)
class WaMedia:
    media_id: str = field(repr=False)
    mime: str = ""
    caption: str = field(default="", repr=False)
    filename: str = field(default="", repr=False)


@dataclass(frozen=True)
class WaMessage:
    """One message a user sent, with each of the sender's ids the payload gave: ``wa_id`` (their
    phone number, digits) and ``user_id`` (their business-scoped user id); at least one is set,
    the other may be empty."""

    wa_id: str = field(repr=False)
    user_id: str = field(repr=False)
    message_id: str = field(repr=False)
    timestamp: int
    kind: MessageKind
    text: str = field(default="", repr=False)
    payload: str = ""  # the id of the button or list row pressed
    media: WaMedia | None = None

    @property
    def sender(self) -> str:
        """The id the sender is known by: the BSUID when there is one, else the wa_id
        (``identity.identify`` says why, and what becomes of the other)."""
        return self.user_id or self.wa_id


@dataclass(frozen=True)
class WaStatus:
    """What happened to a message we sent."""

    message_id: str = field(repr=False)
    status: StatusKind
    timestamp: int
    error_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class WebhookUpdates:
    """Everything one webhook POST carried. ``ignored`` counts what could not be read (no id, no
    sender, a group message, a change of another field, a body that is not JSON)."""

    messages: tuple[WaMessage, ...] = ()
    statuses: tuple[WaStatus, ...] = ()
    ignored: int = 0

    def __bool__(self) -> bool:
        return bool(self.messages or self.statuses)


def parse_body(raw: bytes | str) -> WebhookUpdates:
    """The updates in a webhook body; an empty result (``ignored=1``) for anything not JSON."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError, TypeError):  # UnicodeDecodeError is a ValueError
        return WebhookUpdates(ignored=1)
    return parse_document(document)


def parse_document(document: object) -> WebhookUpdates:
    """The updates in an already decoded webhook body; never raises."""
    messages: list[WaMessage] = []
    statuses: list[WaStatus] = []
    ignored = 0
    if not isinstance(document, dict):
        return WebhookUpdates(ignored=1)
    for entry in _dicts(document.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                ignored += 1
                continue
            contacts = list(_dicts(value.get("contacts")))
            for item in _items(value.get("messages")):
                message = _message(item, contacts)
                if message is None:
                    ignored += 1
                else:
                    messages.append(message)
            for item in _items(value.get("statuses")):
                status = _status(item)
                if status is None:
                    ignored += 1
                else:
                    statuses.append(status)
    return WebhookUpdates(tuple(messages), tuple(statuses), ignored)


def _items(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _dicts(value: object) -> list[dict[str, object]]:
    return [item for item in _items(value) if isinstance(item, dict)]


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _timestamp(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < 10**_MAX_TIMESTAMP_DIGITS else 0
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) if len(value) <= _MAX_TIMESTAMP_DIGITS else 0
    return 0


def _sender_ids(message: dict[str, object], contacts: list[dict[str, object]]) -> tuple[str, str]:
    """The sender's (wa_id, user_id), each "" when the payload gives no well-formed one. A
    ``from`` that is not digits is taken for a user id (a phone-less user's ``from``, should Meta
    send one); an id the message lacks is taken from its contact card, matched by the other."""
    sent_from = _str(message.get("from"))
    wa_id = sent_from if is_wa_id(sent_from) else ""
    user_id = _str(message.get("from_user_id")) or ("" if wa_id else sent_from)
    user_id = user_id if is_user_id(user_id) else ""
    for contact in contacts:
        contact_wa_id, contact_user_id = _str(contact.get("wa_id")), _str(contact.get("user_id"))
        if wa_id and not user_id and contact_wa_id == wa_id and is_user_id(contact_user_id):
            user_id = contact_user_id
        elif user_id and not wa_id and contact_user_id == user_id and is_wa_id(contact_wa_id):
            wa_id = contact_wa_id
    return wa_id, user_id


def _message(item: object, contacts: list[dict[str, object]]) -> WaMessage | None:
    if not isinstance(item, dict) or item.get("group_id") is not None:
        return None  # group messages: the bot talks to one worker at a time
    kind = _str(item.get("type"))
    if kind == "system":
        # "user_changed_number" / "user_changed_user_id": Meta telling us of an id change,
        # written by nobody; answering it would write to the old number (docs/design/whatsapp.md,
        # "Decisions (built): identity").
        return None
    wa_id, user_id = _sender_ids(item, contacts)
    message_id = _str(item.get("id"))
    if not (wa_id or user_id) or not message_id:
        return None
    timestamp = _timestamp(item.get("timestamp"))
    base = WaMessage(wa_id, user_id, message_id, timestamp, MessageKind.UNSUPPORTED)
    if kind == "text":
        body = _str(_dict(item.get("text")).get("body"))
        return replace(base, kind=MessageKind.TEXT, text=body) if body else base
    if kind == "interactive":
        interactive = _dict(item.get("interactive"))
        reply = _dict(interactive.get(_str(interactive.get("type"))))
        if _str(interactive.get("type")) in ("button_reply", "list_reply"):
            return _choice(base, _str(reply.get("id")))
        return base
    if kind == "button":  # a template's quick-reply button: whatever its payload, "show me"
        payload = _str(_dict(item.get("button")).get("payload"))
        return replace(base, kind=MessageKind.TEMPLATE_REPLY, payload=payload)
    if kind in ("image", "document", "audio", "voice"):
        media = _dict(item.get(kind))
        media_id = _str(media.get("id"))
        if not media_id:
            return base
        is_voice = kind == "voice" or (kind == "audio" and media.get("voice") is True)
        return replace(
            base,
            kind=MessageKind.VOICE if is_voice else MessageKind(kind),
            text=_str(media.get("caption")),
            media=WaMedia(
                media_id,
                _str(media.get("mime_type")),
                _str(media.get("caption")),
                _str(media.get("filename")),
            ),
        )
    return base


def _choice(base: WaMessage, payload: str) -> WaMessage:
    return replace(base, kind=MessageKind.CHOICE, payload=payload) if payload else base


def _status(item: object) -> WaStatus | None:
    if not isinstance(item, dict):
        return None
    message_id = _str(item.get("id"))
    if not message_id:
        return None
    raw = _str(item.get("status"))
    status = StatusKind(raw) if raw in StatusKind.__members__.values() else StatusKind.UNKNOWN
    codes = tuple(
        code
        for error in _dicts(item.get("errors"))
        if isinstance(code := error.get("code"), int) and not isinstance(code, bool)
    )
    return WaStatus(message_id, status, _timestamp(item.get("timestamp")), codes)


#: Downloads a media id's bytes (the Graph client, once it exists).
DownloadMedia = Callable[[str], Awaitable[bytes]]


def command_name(text: str) -> str | None:
    """The command a text gives (``/menu`` → ``menu``); None for plain text."""
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return None
    return text[1:].split(maxsplit=1)[0]


def to_inbound(message: WaMessage, download: DownloadMedia) -> Inbound:
    """The core's event for a message; media is fetched only if the core asks (``fetch``). The
    language hint comes from the BSUID's country (``identity.language_hint``), never from the
    phone number."""
    hint = language_hint(message.user_id)
    if message.kind is MessageKind.TEXT:
        name = command_name(message.text)
        return Inbound.command_of(name, hint) if name else Inbound.text_of(message.text, hint)
    if message.kind is MessageKind.CHOICE:
        return Inbound.choice_of(message.payload, hint)
    if message.kind is MessageKind.TEMPLATE_REPLY:  # "Show message" with nothing held: where am I
        return Inbound.command_of("menu", hint)
    if message.media is not None and message.kind.value in _MEDIA_NAMES:
        return Inbound.media_of(
            _MEDIA_NAMES[message.kind.value],
            message.media.caption,
            mime=message.media.mime,
            fetch=partial(download, message.media.media_id),
            language_hint=hint,
        )
    return Inbound(InboundKind.UNSUPPORTED, language_hint=hint)

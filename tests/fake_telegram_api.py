"""An in-process fake of the Telegram Bot API, for tests and benchmarks.

Why it exists: the bot must be exercised through the *real* Telegram runtimes, aiogram (``Bot``,
``AiohttpSession``, ``Dispatcher.start_polling``, webhooks, error mapping into
``TelegramRetryAfter`` / ``TelegramForbiddenError`` / ``TelegramBadRequest``) and
python-telegram-bot (``Application``, ``Updater``, ``HTTPXRequest``, ``RetryAfter`` /
``Forbidden`` / ``BadRequest``), without touching the network or a real bot token.  Mocking
``Bot`` methods would skip exactly the layers that break in production (serialisation, long
polling, flood limits, parse errors, 4096-character limits, blocked users), so this module
instead serves the Bot API wire format over HTTP on 127.0.0.1 and records what the bot did.

Usage::

    server = FakeTelegramServer()
    await server.start()
    api = TelegramAPIServer.from_base(server.base_url)
    bot = Bot(server.token, session=AiohttpSession(api=api))
    user = server.user(1001)
    user.send_text("/start")
    [reply] = await server.wait_for(lambda m: m.chat_id == user.chat_id)
    user.press_button("English")
    await server.stop()

Files: media a simulated user sends (``send_photo``/``send_document``/``send_voice``/
``send_sticker``, optionally with real ``data=`` bytes) is stored under its ``file_id``;
``getFile`` returns a ``File`` with a ``file_path`` and ``GET /file/bot<token>/<file_path>``
serves the bytes, so ``await bot.download(file_id, destination=io.BytesIO())`` works.  Without
``data`` the file holds placeholder bytes of the advertised ``file_size``.

Deletion follows the Bot API rules that matter for a private-chat bot: ``deleteMessage`` and
``deleteMessages`` delete the bot's own messages and the user's incoming ones, but not messages
sent 48 hours ago or earlier (``age_messages`` moves a chat's messages into the past).  Admin
rights in groups are not modelled: messages there are deletable as if the bot were an admin.
Deletions are recorded in ``deleted`` (a list, in order) and ``deleted_ids`` (a set).

Everything runs on one event loop (no threads).  Per-request work is O(1) in the number of
messages already sent (messages are indexed by chat and by ``(chat_id, message_id)``; files by
``file_id`` and by ``file_path``), so the same server can sustain benchmark traffic.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Self

from aiohttp import ClientSession, ClientTimeout, MultipartReader, web

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.client.telegram import TelegramAPIServer

__all__ = [
    "DEFAULT_TOKEN",
    "FakeTelegramServer",
    "RecordedRequest",
    "SentMessage",
    "SimulatedUser",
]

JSONDict = dict[str, Any]

DEFAULT_TOKEN: Final = "123456:TEST-TOKEN-abcdefghijklmnopqrstuvwxyz"

MAX_TEXT_LENGTH: Final = 4096
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_CALLBACK_ANSWER_LENGTH: Final = 200
MAX_COMMANDS: Final = 100
MAX_LONG_POLL_TIMEOUT: Final = 50
MAX_DOWNLOAD_FILE_SIZE: Final = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_DELETE_MESSAGES: Final = 100
DELETE_WINDOW_SECONDS: Final = 48 * 60 * 60  # messages this old can't be deleted any more

_METHODS: Final = (
    "getMe",
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "deleteMessages",
    "getFile",
    "answerCallbackQuery",
    "sendChatAction",
    "setMyCommands",
    "deleteMyCommands",
    "getMyCommands",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "getChat",
    "close",
    "logOut",
)
# Bot API method names are case-insensitive.
_CANONICAL_METHODS: Final = {name.lower(): name for name in _METHODS}

# Fields that arrive as JSON strings in form encodings.
_JSON_FIELDS: Final = frozenset(
    [
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
        "entities",
        "caption_entities",
        "media",
        "results",
        "options",
        "reaction",
        "permissions",
        "message_ids",
    ]
)
_INT_FIELDS: Final = frozenset(
    [
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "reply_to_message_id",
        "message_thread_id",
        "max_connections",
        "cache_time",
        "from_chat_id",
    ]
)
_BOOL_FIELDS: Final = frozenset(
    [
        "protect_content",
        "disable_notification",
        "disable_web_page_preview",
        "drop_pending_updates",
        "show_alert",
        "allow_sending_without_reply",
        "allow_paid_broadcast",
        "revoke_messages",
    ]
)
_TRUE_STRINGS: Final = frozenset({"true", "1", "yes", "on"})

_ALL_UPDATE_TYPES: Final = frozenset(
    [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    ]
)
# What getUpdates delivers when allowed_updates is unset or [] (see the Bot API docs).
_DEFAULT_UPDATE_TYPES: Final = _ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

_CHAT_ACTIONS: Final = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
_COMMAND_SCOPES: Final = frozenset(
    [
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    ]
)
_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_BOT_COMMAND_ENTITY_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,32})?")

# Real Bot API descriptions.
_UNAUTHORIZED: Final = "Unauthorized"
_METHOD_NOT_FOUND: Final = "Not Found: method not found"
_CONFLICT_OTHER_POLLER: Final = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_CONFLICT_WEBHOOK_ACTIVE: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_CONFLICT_SET_WEBHOOK: Final = "Conflict: terminated by setWebhook request"
_TEXT_EMPTY: Final = "Bad Request: message text is empty"
_TEXT_TOO_LONG: Final = "Bad Request: message is too long"
_CHAT_ID_EMPTY: Final = "Bad Request: chat_id is empty"
_CHAT_NOT_FOUND: Final = "Bad Request: chat not found"
_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_EDIT_NOT_FOUND: Final = "Bad Request: message to edit not found"
_DELETE_NOT_FOUND: Final = "Bad Request: message to delete not found"
_DELETE_TOO_OLD: Final = "Bad Request: message can't be deleted for everyone"
_NO_MESSAGE_IDS: Final = "Bad Request: message identifiers are not specified"
_MESSAGE_IDS_NOT_ARRAY: Final = "Bad Request: expected an Array of message identifiers"
_TOO_MANY_MESSAGE_IDS: Final = "Bad Request: too many message identifiers specified"
_MESSAGE_ID_NOT_NUMBER: Final = "Bad Request: message identifier must be a Number"
_MESSAGE_ID_UNPARSABLE: Final = "Bad Request: can't parse message identifier as a Number"
_MESSAGE_ID_INVALID: Final = "Bad Request: invalid message identifier specified"
_INVALID_FILE_ID: Final = "Bad Request: invalid file_id"
_FILE_TOO_BIG: Final = "Bad Request: file is too big"
_NO_MESSAGE_ID: Final = "Bad Request: message identifier is not specified"
_QUERY_INVALID: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
_BUTTON_DATA_INVALID: Final = "Bad Request: BUTTON_DATA_INVALID"
_TEXT_BUTTONS_UNALLOWED: Final = (
    "Bad Request: can't parse inline keyboard button: "
    "Text buttons are unallowed in the inline keyboard"
)
_BLOCKED_DESCRIPTIONS: Final = {
    "private": "Forbidden: bot was blocked by the user",
    "group": "Forbidden: bot was kicked from the group chat",
    "supergroup": "Forbidden: bot was kicked from the supergroup chat",
    "channel": "Forbidden: bot is not a member of the channel chat",
}
_DEFAULT_FAILURE_DESCRIPTIONS: Final = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: _CONFLICT_OTHER_POLLER,
    500: "Internal Server Error",
    502: "Bad Gateway",
}


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SentMessage:
    """One message the bot sent (``sendMessage``) or changed (``editMessage*``).

    ``text`` is the text exactly as the bot sent it (markup included); ``plain_text`` is what a
    user would see after ``parse_mode`` was applied.  For ``editMessageReplyMarkup`` records the
    text is the message's current text.
    """

    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    protect_content: bool
    method: str
    params: dict[str, Any]
    plain_text: str = ""
    deleted: bool = False

    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard buttons, row by row, flattened."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or []
        return [button for row in rows for button in row]

    def button_labels(self) -> list[str]:
        return [str(button.get("text", "")) for button in self.buttons()]

    def describe(self) -> str:
        text = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        labels = self.button_labels()
        extra = f" buttons={labels}" if labels else ""
        gone = " (deleted)" if self.deleted else ""
        return f"{self.method} chat={self.chat_id} id={self.message_id}{gone}: {text!r}{extra}"


@dataclass(slots=True)
class RecordedRequest:
    """One Bot API call as the server saw it (parameters decoded)."""

    method: str
    params: dict[str, Any]
    status: int
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, description)


class _EntityParseError(Exception):
    pass


@dataclass(slots=True)
class _Ok:
    """A successful result that also carries a ``description`` (setWebhook does this)."""

    result: Any
    description: str


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int

    def to_error(self) -> _ApiError:
        parameters = {"retry_after": self.retry_after} if self.status == 429 else None
        return _ApiError(self.status, self.description, parameters)


@dataclass(slots=True)
class _StoredMessage:
    message: JSONDict
    from_bot: bool
    text: str | None = None
    plain_text: str | None = None
    markup: JSONDict | None = None
    protect_content: bool = False
    deleted: bool = False
    records: list[SentMessage] = field(default_factory=list)


# The first bytes of placeholder file content by MIME type (the rest is zero padding).
_PLACEHOLDER_MAGIC: Final = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "audio/ogg": b"OggS\x00\x02",
    "application/pdf": b"%PDF-1.4\n",
}
_FILE_EXTENSION_RE: Final = re.compile(r"[A-Za-z0-9]{1,16}")


@dataclass(slots=True)
class _StoredFile:
    """A file a simulated user sent; ``data`` is None for placeholder content of ``size``."""

    file_id: str
    file_unique_id: str
    size: int
    mime_type: str
    directory: str  # the file_path folder: "photos", "documents", "voice", "stickers"
    extension: str  # without the dot; "" for none
    data: bytes | None = None
    file_path: str | None = None  # assigned by the first getFile, like Telegram does

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        magic = _PLACEHOLDER_MAGIC.get(self.mime_type, b"fake file\n")
        return magic[: self.size].ljust(self.size, b"\0")


class _Poller:
    __slots__ = ("conflict", "event")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.conflict: str | None = None

    def terminate(self, reason: str) -> None:
        self.conflict = reason
        self.event.set()


class _Waiter:
    """Messages sent while a ``wait_for`` is pending; the waiting test evaluates them."""

    __slots__ = ("event", "inbox")

    def __init__(self) -> None:
        self.inbox: deque[SentMessage] = deque()
        self.event = asyncio.Event()

    def offer(self, message: SentMessage) -> None:
        self.inbox.append(message)
        self.event.set()


class _TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Refill, then return 0.0 if a token is available, else seconds until one is."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate


def _utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


# ---- parse_mode rendering (modelled on tdlib's parsers, which produce the real errors) ----

_HTML_TAGS: Final = frozenset(
    [
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    ]
)
_HTML_SPACES: Final = frozenset(" \t\r\n\v\f\0")
_HTML_SPECIAL_RE: Final = re.compile(r"[<&]")
_HTML_ENTITY_RE: Final = re.compile(r"&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z]{2,8});")
_HTML_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(text: str, index: int) -> tuple[str, int]:
    match = _HTML_ENTITY_RE.match(text, index)
    if match is None:
        return "&", index + 1
    name = match.group(1)
    if name[0] == "#":
        digits = name[2:] if name[1] in "xX" else name[1:]
        code = int(digits, 16 if name[1] in "xX" else 10)
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), match.end()
        return "&", index + 1
    char = _HTML_NAMED_ENTITIES.get(name)
    if char is None:  # unsupported named entities are left as they are
        return "&", index + 1
    return char, match.end()


def _parse_html(text: str) -> str:
    """Strip Telegram-HTML tags and decode entities; raise like the Bot API on bad markup."""
    if "<" not in text and "&" not in text:
        return text
    out: list[str] = []
    stack: list[str] = []
    length = len(text)
    pos = 0
    while True:
        match = _HTML_SPECIAL_RE.search(text, pos)
        if match is None:
            out.append(text[pos:])
            break
        begin = match.start()
        out.append(text[pos:begin])
        if text[begin] == "&":
            char, pos = _decode_html_entity(text, begin)
            out.append(char)
            continue
        if begin + 1 < length and text[begin + 1] == "/":
            if not stack:
                msg = f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
                raise _EntityParseError(msg)
            i = begin + 2
            while i < length and text[i] not in _HTML_SPACES and text[i] != ">":
                i += 1
            end_name = text[begin + 2 : i].lower()
            while i < length and text[i] in _HTML_SPACES:
                i += 1
            if i >= length or text[i] != ">":
                msg = f"Unclosed end tag at byte offset {_byte_offset(text, begin)}"
                raise _EntityParseError(msg)
            expected = stack.pop()
            if end_name and end_name != expected:
                msg = (
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{expected}>", found "</{end_name}>"'
                )
                raise _EntityParseError(msg)
            pos = i + 1
            continue
        i = begin + 1
        while i < length and text[i] not in _HTML_SPACES and text[i] != ">":
            i += 1
        if i >= length:
            msg = f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
            raise _EntityParseError(msg)
        name = text[begin + 1 : i].lower()
        if name not in _HTML_TAGS:
            msg = f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            raise _EntityParseError(msg)
        while i < length and text[i] != ">":
            if text[i] in "\"'":
                close = text.find(text[i], i + 1)
                i = length if close < 0 else close + 1
            else:
                i += 1
        if i >= length:
            msg = f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
            raise _EntityParseError(msg)
        stack.append(name)
        pos = i + 1
    if stack:
        msg = f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
        raise _EntityParseError(msg)
    return "".join(out)


_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")


def _skip_pre_language(text: str, i: int) -> int:
    """After an opening triple backtick: skip a language name and then one line break."""
    end = i
    while end < len(text) and text[end] not in _HTML_SPACES and text[end] != "`":
        end += 1
    if end != i and end < len(text) and text[end] != "`":
        i = end
    if text[i : i + 2] in ("\r\n", "\n\r"):
        return i + 2
    if text[i : i + 1] in ("\n", "\r"):
        return i + 1
    return i


def _mdv2_closes(kind: str, text: str, i: int) -> bool:
    char = text[i]
    following = text[i + 1 : i + 2]
    if kind == "Bold":
        return char == "*"
    if kind == "Italic":
        return char == "_" and following != "_"
    if kind == "Underline":
        return char == "_" and following == "_"
    if kind == "Strikethrough":
        return char == "~"
    if kind == "Spoiler":
        return char == "|" and following == "|"
    if kind == "Code":
        return char == "`"
    if kind == "Pre":
        return text.startswith("```", i)
    return char == "]"  # TextUrl, CustomEmoji


def _parse_markdown_v2(text: str) -> str:
    """Strip MarkdownV2 markup; raise like the Bot API on unescaped reserved characters."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    length = len(text)
    i = 0
    while i < length:
        char = text[i]
        if char == "\\" and i + 1 < length and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            i += 2
            continue
        top = stack[-1][0] if stack else None
        if top in ("Code", "Pre"):
            if char != "`":
                out.append(char)
                i += 1
                continue
        elif char not in _MDV2_RESERVED:
            out.append(char)
            i += 1
            continue
        if top is not None and _mdv2_closes(top, text, i):
            stack.pop()
            if top in ("TextUrl", "CustomEmoji"):
                i += 1
                if i < length and text[i] == "(":
                    j = i + 1
                    while j < length and text[j] != ")":
                        j += 2 if text[j] == "\\" else 1
                    if j >= length:
                        offset = _byte_offset(text, i + 1)
                        msg = f"Can't find end of a URL at byte offset {offset}"
                        raise _EntityParseError(msg)
                    i = j + 1
                elif top == "CustomEmoji":
                    msg = "Custom emoji entity must contain a tg://emoji URL"
                    raise _EntityParseError(msg)
            elif top in ("Underline", "Spoiler"):
                i += 2
            elif top == "Pre":
                i += 3
            else:
                i += 1
            continue
        start = i
        following = text[i + 1 : i + 2]
        if char == "_":
            kind = "Underline" if following == "_" else "Italic"
            i += 2 if following == "_" else 1
        elif char == "*":
            kind, i = "Bold", i + 1
        elif char == "~":
            kind, i = "Strikethrough", i + 1
        elif char == "|" and following == "|":
            kind, i = "Spoiler", i + 2
        elif char == "[":
            kind, i = "TextUrl", i + 1
        elif char == "!" and following == "[":
            kind, i = "CustomEmoji", i + 2
        elif char == "`":
            if text.startswith("```", i):
                kind, i = "Pre", _skip_pre_language(text, i + 3)
            else:
                kind, i = "Code", i + 1
        elif char == ">" and not stack and (i == 0 or text[i - 1] == "\n"):
            i += 1  # block quotation marker at the start of a line
            continue
        else:
            msg = f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            raise _EntityParseError(msg)
        stack.append((kind, start))
    if stack:
        kind, start = stack[-1]
        msg = f"Can't find end of {kind} entity at byte offset {_byte_offset(text, start)}"
        raise _EntityParseError(msg)
    return "".join(out)


def _parse_markdown(text: str) -> str:
    """Strip legacy Markdown markup."""
    out: list[str] = []
    length = len(text)
    i = 0
    while i < length:
        char = text[i]
        if char == "\\" and i + 1 < length and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            i += 1
            continue
        error = f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
        if char == "[":
            close = text.find("]", i + 1)
            if close < 0:
                raise _EntityParseError(error)
            out.append(text[i + 1 : close])
            i = close + 1
            if i < length and text[i] == "(":
                end = text.find(")", i)
                if end < 0:
                    raise _EntityParseError(error)
                i = end + 1
            continue
        if text.startswith("```", i):
            begin = _skip_pre_language(text, i + 3)
            close = text.find("```", begin)
            if close < 0:
                raise _EntityParseError(error)
            out.append(text[begin:close])
            i = close + 3
            continue
        close = text.find(char, i + 1)
        if close < 0:
            raise _EntityParseError(error)
        out.append(text[i + 1 : close])
        i = close + 1
    return "".join(out)


def _render(text: str, parse_mode: Any) -> str:
    if not parse_mode:
        return text
    mode = str(parse_mode).lower()
    try:
        if mode == "html":
            return _parse_html(text)
        if mode == "markdownv2":
            return _parse_markdown_v2(text)
        if mode == "markdown":
            return _parse_markdown(text)
    except _EntityParseError as exc:
        raise _bad_request(f"Bad Request: can't parse entities: {exc}") from None
    raise _bad_request("Bad Request: unsupported parse_mode")


def _normalize_markup(markup: JSONDict | None) -> JSONDict | None:
    """An inline keyboard without buttons is the same as no keyboard."""
    if markup is None:
        return None
    rows = markup.get("inline_keyboard")
    if isinstance(rows, list) and not any(rows):
        return None
    return markup


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _int_param(params: JSONDict, key: str, default: int) -> int:
    value = _as_int(params.get(key))
    return default if value is None else value


def _message_ids_param(raw: Any) -> list[int]:
    """deleteMessages' ``message_ids``: a JSON array of 1-100 positive message identifiers."""
    if raw is None or raw == "":
        raise _bad_request(_NO_MESSAGE_IDS)
    if not isinstance(raw, list):
        raise _bad_request(_MESSAGE_IDS_NOT_ARRAY)
    if len(raw) > MAX_DELETE_MESSAGES:
        raise _bad_request(_TOO_MANY_MESSAGE_IDS)
    if not raw:
        raise _bad_request(_NO_MESSAGE_IDS)
    message_ids: list[int] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            raise _bad_request(_MESSAGE_ID_NOT_NUMBER)
        number = None if isinstance(item, float) else _as_int(item)
        if number is None or number >= 2**31:
            raise _bad_request(_MESSAGE_ID_UNPARSABLE)
        if number <= 0:
            raise _bad_request(_MESSAGE_ID_INVALID)
        message_ids.append(number)
    return message_ids


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeTelegramServer:
    """A Telegram Bot API server on 127.0.0.1 that a real aiogram ``Bot`` can talk to."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        global_rate_per_second: float | None = None,
        per_chat_rate_per_second: float | None = None,
        bot_username: str = "wvb_test_bot",
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            msg = f"token must look like '<digits>:<secret>', got {token!r}"
            raise ValueError(msg)
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_username = bot_username
        self.global_rate_per_second = global_rate_per_second
        self.per_chat_rate_per_second = per_chat_rate_per_second

        # Public records.
        self.sent: list[SentMessage] = []
        self.requests: list[RecordedRequest] = []
        self.record_requests = True  # turn off for very long benchmarks to save memory
        # Off for benchmarks: count what each chat received, keep no message bodies.
        self.keep_messages = True
        self.delivery_counts: Counter[int] = Counter()  # sendMessage successes per chat
        self.deliveries_per_second: Counter[int] = Counter()  # by whole Unix second
        self.commands: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] | None = None
        self.too_many_requests = 0
        self.deleted: list[tuple[int, int]] = []  # (chat_id, message_id), in deletion order
        self.deleted_ids: set[tuple[int, int]] = set()  # the same pairs, for membership tests
        self.downloads: list[str] = []  # file_paths served by the file download route
        self.callback_answers: list[dict[str, Any]] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.dropped_updates: list[JSONDict] = []
        self.webhook_deliveries: list[tuple[JSONDict, int]] = []

        self._bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Test Bot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._updates: deque[JSONDict] = deque()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] = _DEFAULT_UPDATE_TYPES
        self._poller: _Poller | None = None
        self._users: dict[int, SimulatedUser] = {}
        self._chats: dict[int, JSONDict] = {}
        self._blocked: set[int] = set()
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._messages: dict[tuple[int, int], _StoredMessage] = {}
        self._last_message_id: dict[int, int] = {}
        self._callbacks: dict[str, bool] = {}  # callback query id -> answered
        self._callback_seq = itertools.count(4_000_000_000_000_000_001)
        self._file_seq = itertools.count(1)
        self._file_path_seq = itertools.count(0)
        self._files: dict[str, _StoredFile] = {}  # by file_id
        self._files_by_path: dict[str, _StoredFile] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._waiters: list[_Waiter] = []
        self._recent_errors: deque[RecordedRequest] = deque(maxlen=20)
        self._global_bucket: _TokenBucket | None = None
        self._chat_buckets: dict[int, _TokenBucket] = {}
        self._handlers: dict[str, Callable[[JSONDict], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "getFile": self._get_file,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getChat": self._get_chat,
            "close": self._return_true,
            "logOut": self._return_true,
        }
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = False
        self._client: ClientSession | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and start serving."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_http)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file_download)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._closing = False

    async def stop(self) -> None:
        """Release long pollers, close the webhook client and the listening socket."""
        self._closing = True
        if self._poller is not None:
            self._poller.event.set()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            msg = "FakeTelegramServer is not started"
            raise RuntimeError(msg)
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_server(self) -> TelegramAPIServer:
        """An aiogram ``TelegramAPIServer`` pointing at this fake."""
        from aiogram.client.telegram import TelegramAPIServer

        return TelegramAPIServer.from_base(self.base_url)

    def make_bot(self, **kwargs: Any) -> Bot:
        """A real aiogram ``Bot`` whose session talks to this server (close it when done)."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession

        return Bot(self.token, session=AiohttpSession(api=self.api_server), **kwargs)

    # ---- simulated world ------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        *,
        first_name: str = "Worker",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> SimulatedUser:
        """The simulated user ``user_id`` (created on first use; profile updated on later use)."""
        existing = self._users.get(user_id)
        if existing is not None:
            existing._set_profile(first_name, last_name, username, language_code)
            return existing
        simulated = SimulatedUser(self, user_id, first_name, last_name, username, language_code)
        self._users[user_id] = simulated
        return simulated

    def register_chat(self, chat: JSONDict) -> None:
        """Make a chat known to the server (so the bot may send to it)."""
        self._chats[int(chat["id"])] = dict(chat)

    def block(self, chat_id: int) -> None:
        """Further sends to ``chat_id`` get 403 (the user blocked the bot / bot was kicked)."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def _with_update_id(self, update: dict[str, Any]) -> tuple[JSONDict, int]:
        """A copy of ``update`` with an update_id (the next one, unless it has its own)."""
        update = dict(update)
        update_id = _as_int(update.get("update_id"))
        if update_id is None:
            update_id = self._next_update_id
            update["update_id"] = update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        return update, update_id

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; assign update_id if missing; wake a long poller."""
        update, update_id = self._with_update_id(update)
        kind = next((key for key in update if key != "update_id"), None)
        if kind is not None and kind not in self._allowed_updates:
            # Telegram does not create updates of types the bot opted out of.
            self.dropped_updates.append(update)
            return update_id
        if not self._updates or self._updates[-1]["update_id"] < update_id:
            self._updates.append(update)
        else:
            position = next(
                (n for n, queued in enumerate(self._updates) if queued["update_id"] > update_id),
                len(self._updates),
            )
            self._updates.insert(position, update)
        if self._poller is not None:
            self._poller.event.set()
        return update_id

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    @property
    def long_polling(self) -> bool:
        """True while a getUpdates request is waiting for updates."""
        return self._poller is not None

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        return list(self._sent_by_chat.get(chat_id, ()))

    def age_messages(self, chat_id: int, seconds: float) -> None:
        """Move the dates of all messages in ``chat_id`` (the bot's and users') into the past.

        Use it to simulate time passing, e.g. ``age_messages(chat_id, 48 * 3600)`` makes every
        message so far too old for ``deleteMessage``.  Messages sent later are not affected;
        updates already queued keep the dates they had.
        """
        if seconds < 0:
            msg = f"seconds must not be negative, got {seconds}"
            raise ValueError(msg)
        shift = math.ceil(seconds)
        for message_id in range(1, self._last_message_id.get(chat_id, 0) + 1):
            stored = self._messages.get((chat_id, message_id))
            if stored is None:
                continue
            message = {**stored.message, "date": int(stored.message["date"]) - shift}
            if "edit_date" in message:
                message["edit_date"] = int(message["edit_date"]) - shift
            stored.message = message

    def is_deleted(self, chat_id: int, message_id: int) -> bool:
        """True if ``deleteMessage``/``deleteMessages`` deleted that message."""
        return (chat_id, message_id) in self.deleted_ids

    def file_content(self, file_id: str) -> bytes:
        """The bytes stored under ``file_id`` (what downloading it returns)."""
        stored = self._files.get(file_id)
        if stored is None:
            msg = f"no file with file_id {file_id!r} was sent to the server"
            raise AssertionError(msg)
        return stored.content()

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status``.

        429 replies carry ``parameters.retry_after`` (aiogram raises ``TelegramRetryAfter``).
        """
        canonical = _CANONICAL_METHODS.get(method.lower(), method)
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _DEFAULT_FAILURE_DESCRIPTIONS.get(status, f"Error {status}")
        queue = self._failures.setdefault(canonical, deque())
        queue.extend(_Failure(status, description, retry_after) for _ in range(times))

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        *,
        count: int = 1,
        timeout: float = 10.0,
        start: int = 0,
    ) -> list[SentMessage]:
        """Wait until ``count`` messages in ``sent[start:]`` match ``predicate``; return them.

        Messages already sent count too.  On timeout raise ``AssertionError`` with a summary.
        """
        matches: list[SentMessage] = []
        waiter = _Waiter()
        waiter.inbox.extend(itertools.islice(self.sent, start, None))
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    while waiter.inbox:
                        message = waiter.inbox.popleft()
                        if predicate(message):
                            matches.append(message)
                            if len(matches) >= count:
                                return matches
                    waiter.event.clear()
                    await waiter.event.wait()
        except TimeoutError:
            summary = self._timeout_summary(predicate, matches, count, timeout)
            raise AssertionError(summary) from None
        finally:
            self._waiters.remove(waiter)

    def _timeout_summary(
        self,
        predicate: Callable[[SentMessage], bool],
        matches: list[SentMessage],
        count: int,
        timeout: float,
    ) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate))
        lines = [
            (
                f"wait_for({name}) timed out after {timeout}s: "
                f"{len(matches)} of {count} matching messages."
            ),
            f"The bot sent {len(self.sent)} message(s) in total; the last ones:",
        ]
        lines += [f"  {message.describe()}" for message in self.sent[-10:]] or ["  (none)"]
        if self._recent_errors:
            lines.append("Recent failed API calls:")
            lines += [
                f"  {req.method} -> {req.status} {req.description} params={req.params}"
                for req in list(self._recent_errors)[-5:]
            ]
        if self.dropped_updates:
            lines.append(
                f"{len(self.dropped_updates)} update(s) were dropped because getUpdates' "
                f"allowed_updates excluded their type (see .dropped_updates)"
            )
        lines.append(
            f"{len(self._updates)} update(s) still unconfirmed by getUpdates; "
            f"long poll pending: {self._poller is not None}; webhook: "
            f"{self.webhook.get('url') if self.webhook else None}"
        )
        return "\n".join(lines)

    async def deliver_webhook(self, update: dict[str, Any], *, secret: str | None) -> int:
        """POST ``update`` to the registered webhook; return the HTTP status.

        Like Telegram, a method call in the webhook reply (aiogram's
        ``handle_in_background=False`` mode) is executed, and a successfully delivered update
        is removed from the getUpdates queue if it was queued there.
        """
        if self.webhook is None:
            msg = "no webhook is registered (setWebhook was not called or was deleted)"
            raise AssertionError(msg)
        update, update_id = self._with_update_id(update)
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        if self._client is None or self._client.closed:
            self._client = ClientSession(timeout=ClientTimeout(total=60))
        async with self._client.post(
            str(self.webhook["url"]), data=json.dumps(update), headers=headers
        ) as response:
            status = response.status
            reply: JSONDict = {}
            if status == 200:
                if response.content_type == "multipart/form-data":
                    reply = await _read_multipart(MultipartReader.from_response(response))
                elif response.content_type == "application/json":
                    body = await response.json()
                    if isinstance(body, dict):
                        reply = body
            else:
                await response.read()
        self.webhook_deliveries.append((update, status))
        if 200 <= status < 300:  # delivered: Telegram forgets it
            for queued in self._updates:
                if queued["update_id"] == update_id:
                    self._updates.remove(queued)
                    break
        method = reply.pop("method", None)
        if isinstance(method, str) and method:
            await self._call(method, _decode_params(reply))
        return status

    # ---- HTTP plumbing ----------------------------------------------------------------------

    async def _handle_unknown_path(self, request: web.Request) -> web.Response:
        return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    async def _handle_file_download(self, request: web.Request) -> web.Response:
        """``GET /file/bot<token>/<file_path>``: the file bytes (file_path comes from getFile)."""
        if request.match_info["token"] != self.token:
            return _json_response(
                401, {"ok": False, "error_code": 401, "description": _UNAUTHORIZED}
            )
        path = request.match_info["path"]
        stored = self._files_by_path.get(path)
        if stored is None:
            return await self._handle_unknown_path(request)
        if self.record_requests:
            self.downloads.append(path)
        return web.Response(body=stored.content(), headers={"Content-Type": stored.mime_type})

    async def _handle_http(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self._record(method, {}, 401, _UNAUTHORIZED)
            return _json_response(
                401, {"ok": False, "error_code": 401, "description": _UNAUTHORIZED}
            )
        try:
            params = await _read_request_params(request)
        except _ApiError as exc:
            self._record(method, {}, exc.status, exc.description)
            return _json_response(exc.status, exc.payload())
        status, payload = await self._call(method, params)
        return _json_response(status, payload)

    async def _call(self, method: str, params: JSONDict) -> tuple[int, JSONDict]:
        canonical = _CANONICAL_METHODS.get(method.lower())
        try:
            if canonical is None:
                raise _ApiError(404, _METHOD_NOT_FOUND)
            injected = self._failures.get(canonical)
            if injected:
                failure = injected.popleft()
                raise failure.to_error()
            result = await self._handlers[canonical](params)
        except _ApiError as exc:
            if exc.status == 429:
                self.too_many_requests += 1
            self._record(canonical or method, params, exc.status, exc.description)
            return exc.status, exc.payload()
        payload: JSONDict
        if isinstance(result, _Ok):
            payload = {"ok": True, "result": result.result, "description": result.description}
        else:
            payload = {"ok": True, "result": result}
        self._record(canonical, params, 200, None)
        return 200, payload

    def _record(self, method: str, params: JSONDict, status: int, description: str | None) -> None:
        if not self.record_requests and status == 200:
            return
        request = RecordedRequest(method, params, status, description)
        if self.record_requests:
            self.requests.append(request)
        if status != 200:
            self._recent_errors.append(request)

    # ---- shared checks ----------------------------------------------------------------------

    def _target_chat(self, params: JSONDict) -> int:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad_request(_CHAT_ID_EMPTY)
        chat_id = _as_int(raw)
        if chat_id is None:
            raise _bad_request(_CHAT_NOT_FOUND)
        if chat_id in self._blocked:
            chat_type = self._chats.get(chat_id, {}).get("type", "private")
            raise _ApiError(
                403, _BLOCKED_DESCRIPTIONS.get(chat_type, _BLOCKED_DESCRIPTIONS["private"])
            )
        if chat_id not in self._chats:
            raise _bad_request(_CHAT_NOT_FOUND)
        return chat_id

    def _check_text(self, params: JSONDict) -> tuple[str, str]:
        raw = params.get("text")
        if raw is None:
            raise _bad_request(_TEXT_EMPTY)
        text = raw if isinstance(raw, str) else str(raw)
        plain = text if params.get("entities") else _render(text, params.get("parse_mode"))
        if not plain.strip():
            raise _bad_request(_TEXT_EMPTY)
        if _utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad_request(_TEXT_TOO_LONG)
        return text, plain

    def _check_markup(self, markup: Any) -> JSONDict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad_request("Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad_request(
                    'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup '
                    "should be an Array of Arrays"
                )
            for row in rows:
                for button in row:
                    _check_inline_button(button)
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad_request(
                    'Bad Request: field "keyboard" of the ReplyKeyboardMarkup '
                    "should be an Array of Arrays"
                )
        elif not ("remove_keyboard" in markup or "force_reply" in markup):
            raise _bad_request("Bad Request: can't parse reply keyboard markup JSON object")
        return _normalize_markup(markup)

    def _check_rate(self, chat_id: int) -> None:
        global_rate = self.global_rate_per_second
        chat_rate = self.per_chat_rate_per_second
        if global_rate is None and chat_rate is None:
            return
        now = time.monotonic()
        wait = 0.0
        chat_bucket: _TokenBucket | None = None
        if global_rate is not None:
            if self._global_bucket is None or self._global_bucket.rate != global_rate:
                self._global_bucket = _TokenBucket(global_rate, max(1.0, global_rate), now)
            wait = self._global_bucket.wait_time(now)
        if chat_rate is not None:
            chat_bucket = self._chat_buckets.get(chat_id)
            if chat_bucket is None or chat_bucket.rate != chat_rate:
                chat_bucket = _TokenBucket(chat_rate, 3.0, now)
                self._chat_buckets[chat_id] = chat_bucket
            wait = max(wait, chat_bucket.wait_time(now))
        if wait > 0.0:
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        if self._global_bucket is not None and global_rate is not None:
            self._global_bucket.tokens -= 1.0
        if chat_bucket is not None:
            chat_bucket.tokens -= 1.0

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _record_sent(self, stored: _StoredMessage, sent: SentMessage) -> None:
        stored.records.append(sent)
        self.sent.append(sent)
        by_chat = self._sent_by_chat.get(sent.chat_id)
        if by_chat is None:
            self._sent_by_chat[sent.chat_id] = [sent]
        else:
            by_chat.append(sent)
        for waiter in self._waiters:
            waiter.offer(sent)

    def _store_user_message(self, message: JSONDict) -> None:
        key = (int(message["chat"]["id"]), int(message["message_id"]))
        existing = self._messages.get(key)
        if existing is not None and not existing.from_bot:  # an edit: keep the deleted state
            existing.message = message
            existing.text = message.get("text")
            return
        self._messages[key] = _StoredMessage(
            message=message, from_bot=False, text=message.get("text")
        )

    def _new_file(self, kind: str) -> tuple[str, str]:
        number = next(self._file_seq)
        return (
            f"Fake{kind}AgADBAADr{number:010d}xQAC-fake-{self.bot_id}",
            f"AgAD{kind[:2]}{number:06d}",
        )

    def _store_file(
        self,
        file_id: str,
        file_unique_id: str,
        *,
        size: int,
        mime_type: str,
        directory: str,
        extension: str,
        data: bytes | None,
    ) -> _StoredFile:
        stored = _StoredFile(
            file_id=file_id,
            file_unique_id=file_unique_id,
            size=len(data) if data is not None else size,
            mime_type=mime_type,
            directory=directory,
            extension=extension,
            data=data,
        )
        self._files[file_id] = stored
        return stored

    def _can_delete(self, stored: _StoredMessage, now: int) -> bool:
        """Whether a found, undeleted message is still within the 48-hour deletion window."""
        return now - int(stored.message.get("date", now)) < DELETE_WINDOW_SECONDS

    def _mark_deleted(self, chat_id: int, message_id: int, stored: _StoredMessage) -> None:
        stored.deleted = True
        for record in stored.records:
            record.deleted = True
        self.deleted.append((chat_id, message_id))
        self.deleted_ids.add((chat_id, message_id))

    # ---- methods ----------------------------------------------------------------------------

    async def _return_true(self, params: JSONDict) -> bool:
        return True

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return dict(self._bot_user)

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook is not None:
            raise _ApiError(409, _CONFLICT_WEBHOOK_ACTIVE)
        offset = _int_param(params, "offset", 0)
        limit = min(max(_int_param(params, "limit", 100), 1), 100)
        timeout = min(max(_int_param(params, "timeout", 0), 0), MAX_LONG_POLL_TIMEOUT)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_UPDATE_TYPES
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
        if self._poller is not None:
            self._poller.terminate(_CONFLICT_OTHER_POLLER)
            self._poller = None
        if self._updates or timeout == 0 or self._closing:
            return list(itertools.islice(self._updates, limit))
        poller = _Poller()
        self._poller = poller
        try:
            async with asyncio.timeout(timeout):
                while not self._updates and not self._closing and poller.conflict is None:
                    await poller.event.wait()
                    poller.event.clear()
        except TimeoutError:
            pass
        finally:
            if self._poller is poller:
                self._poller = None
        if poller.conflict is not None:
            raise _ApiError(409, poller.conflict)
        return list(itertools.islice(self._updates, limit))

    async def _send_message(self, params: JSONDict) -> JSONDict:
        chat_id = self._target_chat(params)
        text, plain = self._check_text(params)
        markup = self._check_markup(params.get("reply_markup"))
        reply_to = self._check_reply(chat_id, params)
        self._check_rate(chat_id)
        message_id = self._next_message_id(chat_id)
        self.delivery_counts[chat_id] += 1
        self.deliveries_per_second[int(time.time())] += 1
        if not self.keep_messages:
            return {
                "message_id": message_id,
                "from": self._bot_user,
                "chat": self._chats[chat_id],
                "date": int(time.time()),
                "text": plain,
            }
        protect = bool(params.get("protect_content", False))
        message: JSONDict = {
            "message_id": message_id,
            "from": self._bot_user,
            "chat": self._chats[chat_id],
            "date": int(time.time()),
            "text": plain,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if protect:
            message["has_protected_content"] = True
        stored = _StoredMessage(
            message=message,
            from_bot=True,
            text=text,
            plain_text=plain,
            markup=markup,
            protect_content=protect,
        )
        self._messages[(chat_id, message_id)] = stored
        self._record_sent(
            stored,
            SentMessage(
                message_id=message_id,
                chat_id=chat_id,
                text=text,
                reply_markup=markup,
                protect_content=protect,
                method="sendMessage",
                params=params,
                plain_text=plain,
            ),
        )
        return message

    def _check_reply(self, chat_id: int, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        target: int | None = None
        allow_missing = bool(params.get("allow_sending_without_reply", False))
        if isinstance(reply, dict):
            target = _as_int(reply.get("message_id"))
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
            if reply.get("chat_id") not in (None, chat_id):
                return None  # replies to other chats are not modelled
        elif params.get("reply_to_message_id") is not None:
            target = _as_int(params.get("reply_to_message_id"))
        if target is None:
            return None
        stored = self._messages.get((chat_id, target))
        if stored is None or stored.deleted:
            if allow_missing:
                return None
            raise _bad_request("Bad Request: message to be replied not found")
        replied = dict(stored.message)
        replied.pop("reply_to_message", None)
        return replied

    def _edit_target(self, params: JSONDict) -> tuple[int, _StoredMessage]:
        if params.get("inline_message_id"):
            raise _bad_request("Bad Request: MESSAGE_ID_INVALID")  # inline mode not modelled
        chat_id = self._target_chat(params)
        if params.get("message_id") in (None, ""):
            raise _bad_request(_NO_MESSAGE_ID)
        message_id = _as_int(params.get("message_id"))
        if message_id is None:
            raise _bad_request("Bad Request: MESSAGE_ID_INVALID")
        stored = self._messages.get((chat_id, message_id))
        if stored is None or stored.deleted:
            raise _bad_request(_EDIT_NOT_FOUND)
        if not stored.from_bot:
            raise _bad_request("Bad Request: message can't be edited")
        return chat_id, stored

    def _apply_edit(
        self,
        chat_id: int,
        stored: _StoredMessage,
        *,
        method: str,
        params: JSONDict,
        text: str,
        plain: str,
        markup: JSONDict | None,
    ) -> JSONDict:
        message = {**stored.message, "text": plain, "edit_date": int(time.time())}
        message.pop("reply_markup", None)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        stored.message = message  # a new dict: updates already queued keep the old state
        stored.text = text
        stored.plain_text = plain
        stored.markup = markup
        self._record_sent(
            stored,
            SentMessage(
                message_id=int(message["message_id"]),
                chat_id=chat_id,
                text=text,
                reply_markup=markup,
                protect_content=stored.protect_content,
                method=method,
                params=params,
                plain_text=plain,
            ),
        )
        return message

    async def _edit_message_text(self, params: JSONDict) -> JSONDict:
        chat_id, stored = self._edit_target(params)
        text, plain = self._check_text(params)
        markup = self._check_markup(params.get("reply_markup"))
        if text == stored.text and plain == stored.plain_text and markup == stored.markup:
            raise _bad_request(_NOT_MODIFIED)
        self._check_rate(chat_id)
        return self._apply_edit(
            chat_id,
            stored,
            method="editMessageText",
            params=params,
            text=text,
            plain=plain,
            markup=markup,
        )

    async def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        chat_id, stored = self._edit_target(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == stored.markup:
            raise _bad_request(_NOT_MODIFIED)
        return self._apply_edit(
            chat_id,
            stored,
            method="editMessageReplyMarkup",
            params=params,
            text=stored.text or "",
            plain=stored.plain_text or "",
            markup=markup,
        )

    async def _delete_message(self, params: JSONDict) -> bool:
        chat_id = self._target_chat(params)
        if params.get("message_id") in (None, ""):
            raise _bad_request(_NO_MESSAGE_ID)
        message_id = _as_int(params.get("message_id"))
        stored = None if message_id is None else self._messages.get((chat_id, message_id))
        if stored is None or stored.deleted or message_id is None:
            raise _bad_request(_DELETE_NOT_FOUND)
        if not self._can_delete(stored, int(time.time())):
            raise _bad_request(_DELETE_TOO_OLD)
        self._mark_deleted(chat_id, message_id, stored)
        return True

    async def _delete_messages(self, params: JSONDict) -> bool:
        """Delete what can be deleted; unknown, deleted and too old messages are skipped."""
        message_ids = _message_ids_param(params.get("message_ids"))
        chat_id = self._target_chat(params)
        now = int(time.time())
        for message_id in message_ids:
            stored = self._messages.get((chat_id, message_id))
            if stored is None or stored.deleted or not self._can_delete(stored, now):
                continue
            self._mark_deleted(chat_id, message_id, stored)
        return True

    async def _get_file(self, params: JSONDict) -> JSONDict:
        file_id = params.get("file_id")
        stored = None if file_id is None else self._files.get(str(file_id))
        if stored is None:
            raise _bad_request(_INVALID_FILE_ID)
        if stored.size > MAX_DOWNLOAD_FILE_SIZE:
            raise _bad_request(_FILE_TOO_BIG)
        if stored.file_path is None:
            suffix = f".{stored.extension}" if stored.extension else ""
            stored.file_path = f"{stored.directory}/file_{next(self._file_path_seq)}{suffix}"
            self._files_by_path[stored.file_path] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = params.get("callback_query_id")
        if query_id is None or str(query_id) not in self._callbacks:
            raise _bad_request(_QUERY_INVALID)
        query_id = str(query_id)
        if self._callbacks[query_id]:
            raise _bad_request(_QUERY_INVALID)
        text = params.get("text")
        if isinstance(text, str) and _utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("Bad Request: MESSAGE_TOO_LONG")
        self._callbacks[query_id] = True
        self.callback_answers.append(params)
        return True

    async def _send_chat_action(self, params: JSONDict) -> bool:
        chat_id = self._target_chat(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise _bad_request("Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat_id, str(action)))
        return True

    def _commands_key(self, params: JSONDict) -> tuple[str, str | None]:
        scope = params.get("scope")
        scope_type = "default"
        if scope is not None:
            if not isinstance(scope, dict) or scope.get("type") not in _COMMAND_SCOPES:
                raise _bad_request("Bad Request: can't parse BotCommandScope: wrong scope type")
            scope_type = str(scope["type"])
        language = params.get("language_code")
        return scope_type, (str(language) if language else None)

    async def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if commands is None:
            raise _bad_request('Bad Request: parameter "commands" is required')
        if not isinstance(commands, list):
            raise _bad_request("Bad Request: can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad_request("Bad Request: BOT_COMMANDS_TOO_MUCH")
        cleaned: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("Bad Request: can't parse BotCommand: expected an Object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise _bad_request("Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad_request("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._commands_key(params)
        if cleaned:
            self.commands[key] = cleaned
        else:
            self.commands.pop(key, None)
        return True

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[dict[str, Any]]:
        return [dict(command) for command in self.commands.get(self._commands_key(params), [])]

    def _set_allowed_updates(self, params: JSONDict) -> None:
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_UPDATE_TYPES

    async def _set_webhook(self, params: JSONDict) -> _Ok:
        url = params.get("url")
        url = "" if url is None else str(url)
        if not url:
            return await self._delete_webhook(params)
        if not (url.startswith(("https://", "http://")) and len(url) > len("https://")):
            raise _bad_request(
                "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret not in (None, ""):
            secret = str(secret)
            if len(secret) > 256:
                raise _bad_request("Bad Request: secret token is too long")
            if not _SECRET_TOKEN_RE.fullmatch(secret):
                raise _bad_request("Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._set_allowed_updates(params)
        already = self.webhook is not None and self.webhook.get("url") == url
        self.webhook = dict(params)
        if self._poller is not None:
            self._poller.terminate(_CONFLICT_SET_WEBHOOK)
            self._poller = None
        return _Ok(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, params: JSONDict) -> _Ok:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        existed = self.webhook is not None
        self.webhook = None
        return _Ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_chat(self, params: JSONDict) -> JSONDict:
        """A ChatFullInfo: the chat as registered (``type``, ``title``, a public group's or
        channel's ``username``), plus the fields the Bot API always sends."""
        raw = params.get("chat_id")
        chat_id = _as_int(raw) if raw not in (None, "") else None
        if chat_id is None or chat_id not in self._chats:
            raise _bad_request(_CHAT_NOT_FOUND)
        return {
            **self._chats[chat_id],
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook is not None:
            info["url"] = str(self.webhook.get("url", ""))
            info["max_connections"] = _int_param(self.webhook, "max_connections", 40)
            if self.webhook.get("ip_address"):
                info["ip_address"] = self.webhook["ip_address"]
            if isinstance(self.webhook.get("allowed_updates"), list):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise _bad_request(
            "Bad Request: can't parse inline keyboard button: "
            "InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str):
        raise _bad_request(
            "Bad Request: can't parse inline keyboard button: Can't find field \"text\""
        )
    if not text.strip():
        raise _bad_request("Bad Request: BUTTON_TEXT_INVALID")
    actions = [key for key, value in button.items() if key != "text" and value not in (None, "")]
    if not actions:
        raise _bad_request(_TEXT_BUTTONS_UNALLOWED)
    data = button.get("callback_data")
    if data not in (None, "") and (
        not isinstance(data, str) or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
    ):
        raise _bad_request(_BUTTON_DATA_INVALID)


def _decode_params(params: JSONDict) -> JSONDict:
    """Decode form-encoded values: JSON-serialised objects, integers, booleans."""
    for key, value in params.items():
        if not isinstance(value, str):
            if key in _BOOL_FIELDS and type(value) is int:  # JSON 0/1 mean false/true
                params[key] = bool(value)
            continue
        if key in _JSON_FIELDS:
            if value == "":
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                what = "reply keyboard markup" if key == "reply_markup" else key
                raise _bad_request(f"Bad Request: can't parse {what} JSON object") from None
        elif key in _INT_FIELDS:
            number = _as_int(value)
            if number is not None:
                params[key] = number
        elif key in _BOOL_FIELDS:
            params[key] = value.strip().lower() in _TRUE_STRINGS
    return params


async def _read_request_params(request: web.Request) -> JSONDict:
    params: JSONDict = dict(request.query.items())
    if request.body_exists:
        content_type = request.content_type
        if content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise _bad_request("Bad Request: can't parse JSON object")
                params.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    value.file.close()
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": len(data),
                    }
                else:
                    params[key] = value
        else:
            await request.read()
    return _decode_params(params)


async def _read_multipart(reader: Any) -> JSONDict:
    params: JSONDict = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        name = part.name
        if part.filename:
            data = await part.read()
            params[name] = {"filename": part.filename, "size": len(data)}
        else:
            params[name] = await part.text()
    return params


_JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json_response(status: int, payload: JSONDict) -> web.Response:
    return web.Response(
        body=_JSON_ENCODER.encode(payload).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


# --------------------------------------------------------------------------------------------
# Simulated users
# --------------------------------------------------------------------------------------------


class SimulatedUser:
    """A Telegram user talking to the bot; every action pushes a real-shaped update."""

    def __init__(
        self,
        server: FakeTelegramServer,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
    ) -> None:
        self._server = server
        self.id = user_id
        self.chat_id = user_id  # private chat
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self._last_message: JSONDict | None = None
        self._private_message_ids: list[int] = []
        self._last_file_id: str | None = None
        self._set_profile(first_name, last_name, username, language_code)

    def _set_profile(
        self,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
    ) -> None:
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": first_name}
        chat: JSONDict = {"id": self.id, "type": "private", "first_name": first_name}
        if last_name is not None:
            user["last_name"] = chat["last_name"] = last_name
        if username is not None:
            user["username"] = chat["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self.user_object = user
        self.chat_object = chat
        self._server.register_chat(chat)

    @property
    def group_chat_id(self) -> int:
        return -self.id

    @property
    def channel_chat_id(self) -> int:
        return int(f"-100{self.id:010d}")

    # ---- building updates -------------------------------------------------------------------

    def _new_message(self, chat: JSONDict, *, sender: bool = True, **content: Any) -> JSONDict:
        chat_id = int(chat["id"])
        message: JSONDict = {
            "message_id": self._server._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
        }
        if sender:
            message["from"] = self.user_object
        message.update(content)
        self._server._store_user_message(message)
        return message

    @staticmethod
    def _text_content(text: str) -> JSONDict:
        content: JSONDict = {"text": text}
        match = _BOT_COMMAND_ENTITY_RE.match(text)
        if match is not None:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(match.group())}
            ]
        return content

    def _push_private(self, **content: Any) -> int:
        message = self._new_message(self.chat_object, **content)
        self._last_message = message
        self._private_message_ids.append(int(message["message_id"]))
        return self._server.push_update({"message": message})

    def user_message_ids(self) -> list[int]:
        """The message_ids of the messages this user sent in the private chat, oldest first.

        Deleted ones included: check ``server.deleted_ids`` / ``server.is_deleted``.
        """
        return list(self._private_message_ids)

    @property
    def last_file_id(self) -> str | None:
        """The file_id of the last media this user sent (a photo's largest size)."""
        return self._last_file_id

    def send_text(self, text: str) -> int:
        """A private text message; text starting with "/" carries a bot_command entity."""
        return self._push_private(**self._text_content(text))

    def send_forwarded_text(self, text: str, *, original_sender: str = "Someone") -> int:
        """A text message forwarded into the private chat from a user who hides their account
        (``forward_origin`` of type ``hidden_user``); entities are kept, as Telegram does."""
        origin = {"type": "hidden_user", "sender_user_name": original_sender,
                  "date": int(time.time()) - 60}  # fmt: skip
        return self._push_private(**self._text_content(text), forward_origin=origin)

    def send_command(self, command: str, args: str = "") -> int:
        text = command if command.startswith("/") else f"/{command}"
        if args:
            text = f"{text} {args}"
        return self.send_text(text)

    def send_sticker(self) -> int:
        file_id, unique_id = self._server._new_file("Sticker")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
            "set_name": "FakeStickers",
            "file_size": 24_576,
        }
        self._server._store_file(
            file_id,
            unique_id,
            size=24_576,
            mime_type="image/webp",
            directory="stickers",
            extension="webp",
            data=None,
        )
        self._last_file_id = file_id
        return self._push_private(sticker=sticker)

    def send_photo(self, caption: str | None = None, *, data: bytes | None = None) -> int:
        """A photo in three sizes; every size is a retrievable file, the largest holds ``data``.

        The smaller sizes hold placeholder JPEG bytes (never more than the largest one).
        """
        content_bytes = None if data is None else bytes(data)
        file_id, unique_id = self._server._new_file("Photo")
        photo: list[JSONDict] = []
        sizes = (("s", 90, 67, 1_204), ("m", 320, 240, 15_612), ("x", 800, 600, 61_035))
        for size, width, height, file_size in sizes:
            largest = size == "x"
            if content_bytes is not None:
                file_size = len(content_bytes) if largest else min(file_size, len(content_bytes))
            stored = self._server._store_file(
                f"{file_id}-{size}",
                f"{unique_id}{size}",
                size=file_size,
                mime_type="image/jpeg",
                directory="photos",
                extension="jpg",
                data=content_bytes if largest else None,
            )
            photo.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": width,
                    "height": height,
                    "file_size": stored.size,
                }
            )
        content: JSONDict = {"photo": photo}
        if caption is not None:
            content["caption"] = caption
            entities = self._text_content(caption).get("entities")
            if entities:
                content["caption_entities"] = entities
        self._last_file_id = photo[-1]["file_id"]
        return self._push_private(**content)

    def send_voice(self, *, data: bytes | None = None) -> int:
        file_id, unique_id = self._server._new_file("Voice")
        stored = self._server._store_file(
            file_id,
            unique_id,
            size=9_344,
            mime_type="audio/ogg",
            directory="voice",
            extension="oga",
            data=None if data is None else bytes(data),
        )
        voice = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "duration": 3,
            "mime_type": "audio/ogg",
            "file_size": stored.size,
        }
        self._last_file_id = file_id
        return self._push_private(voice=voice)

    def send_document(
        self,
        *,
        data: bytes | None = None,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        size: int = 20_480,
        announce_size: bool = True,
    ) -> int:
        """A document: ``data``, or placeholder bytes of ``size`` (say, over the 20 MB a bot
        may download, which getFile refuses). ``announce_size=False`` leaves the optional
        ``file_size`` out of the update, as the Bot API may."""
        file_id, unique_id = self._server._new_file("Document")
        _, dot, extension = file_name.rpartition(".")
        stored = self._server._store_file(
            file_id,
            unique_id,
            size=size,
            mime_type=mime_type,
            directory="documents",
            extension=extension if dot and _FILE_EXTENSION_RE.fullmatch(extension) else "",
            data=None if data is None else bytes(data),
        )
        document = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": stored.size,
        }
        if not announce_size:
            del document["file_size"]
        self._last_file_id = file_id
        return self._push_private(document=document)

    def edit_last_message(self, new_text: str) -> int:
        """An ``edited_message`` update for this user's last private message."""
        last = self._last_message
        if last is None:
            msg = f"user {self.id} has not sent any message to edit"
            raise AssertionError(msg)
        stored = self._server._messages.get((self.chat_id, int(last["message_id"])))
        if stored is not None and not stored.from_bot:
            last = stored.message  # the server's copy carries dates moved by age_messages
        edited: JSONDict = {**last, "edit_date": int(time.time())}
        if "text" in last:
            edited.pop("entities", None)
            edited.update(self._text_content(new_text))
        elif any(key in last for key in ("photo", "document", "voice")):
            edited["caption"] = new_text
        else:
            msg = f"user {self.id}'s last message has neither text nor caption to edit"
            raise AssertionError(msg)
        self._last_message = edited
        self._server._store_user_message(edited)
        return self._server.push_update({"edited_message": edited})

    def press(self, callback_data: str, message: SentMessage | None = None) -> int:
        """A ``callback_query`` from this user on ``message`` (default: the latest bot message)."""
        target = message if message is not None else self.last_message()
        stored = self._server._messages.get((target.chat_id, target.message_id))
        if stored is None:
            msg = f"message {target.message_id} in chat {target.chat_id} is unknown to the server"
            raise AssertionError(msg)
        query_id = str(next(self._server._callback_seq))
        self._server._callbacks[query_id] = False
        query: JSONDict = {
            "id": query_id,
            "from": self.user_object,
            "message": stored.message,
            "chat_instance": str(-7_000_000_000_000_000 - target.chat_id),
            "data": callback_data,
        }
        return self._server.push_update({"callback_query": query})

    def press_button(self, label_contains: str) -> int:
        """Press the button whose text contains ``label_contains`` on the latest bot message."""
        message = self.last_message()
        for button in message.buttons():
            label = str(button.get("text", ""))
            if label_contains in label:
                data = button.get("callback_data")
                if not isinstance(data, str):
                    kinds = [key for key in button if key != "text"]
                    msg = f"button {label!r} has no callback_data (it has {kinds})"
                    raise AssertionError(msg)
                return self.press(data, message)
        msg = (
            f"no button containing {label_contains!r} on the latest bot message to chat "
            f"{self.chat_id} ({message.describe()}); available labels: {message.button_labels()}"
        )
        raise AssertionError(msg)

    def messages(self) -> list[SentMessage]:
        """Bot messages (sends and edits) to this user's private chat, oldest first."""
        return self._server.messages_to(self.chat_id)

    def last_message(self) -> SentMessage:
        messages = self._server._sent_by_chat.get(self.chat_id)
        if not messages:
            msg = f"the bot has not sent anything to chat {self.chat_id}"
            raise AssertionError(msg)
        return messages[-1]

    def send_from_group(self, text: str, *, chat_id: int | None = None) -> int:
        """A text message from this user in a group chat (negative id, type "group")."""
        group_id = self.group_chat_id if chat_id is None else chat_id
        chat = self._server._chats.get(group_id)
        if chat is None:
            chat = {"id": group_id, "type": "group", "title": f"Test group {abs(group_id)}"}
            self._server.register_chat(chat)
        message = self._new_message(chat, **self._text_content(text))
        return self._server.push_update({"message": message})

    def send_channel_post(self, text: str, *, chat_id: int | None = None) -> int:
        """A ``channel_post`` update in a channel (no ``from``; ``sender_chat`` is the channel)."""
        channel_id = self.channel_chat_id if chat_id is None else chat_id
        chat = self._server._chats.get(channel_id)
        if chat is None:
            chat = {"id": channel_id, "type": "channel", "title": "Test channel"}
            self._server.register_chat(chat)
        message = self._new_message(chat, sender=False, sender_chat=chat, text=text)
        return self._server.push_update({"channel_post": message})

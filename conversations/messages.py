"""What crosses the boundary between a channel adapter and the conversation core."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Hands over a file the worker sent, when the core decides to keep it (never before).
#: Raises ``conversations.ports.MediaUnavailable`` (or ``MediaTooLarge``) when the channel cannot.
FetchMedia = Callable[[], Awaitable[bytes]]

#: Telegram limits callback data to 64 bytes; every channel we plan for allows at least that much.
MAX_PAYLOAD_BYTES = 64


def utf16_length(text: str) -> int:
    """Length as Telegram (and JavaScript) count it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class InboundKind(StrEnum):
    COMMAND = "command"  # /start, /menu ... (``command`` holds the name without the slash)
    TEXT = "text"  # free text typed by the worker
    CHOICE = "choice"  # a button pressed (``payload`` holds the choice's payload)
    MEDIA = "media"  # photo, voice note, document, sticker ... (``media`` names which)
    UNSUPPORTED = "unsupported"  # an edited message, a poll, a location, anything else


@dataclass(frozen=True)
class Inbound:
    """One event from the worker, already stripped of anything that identifies them."""

    kind: InboundKind
    text: str = field(default="", repr=False)  # message text or media caption; never logged
    command: str = ""
    payload: str = ""
    media: str = ""
    language_hint: str | None = None  # the messenger's idea of the worker's language
    mime: str = ""  # the media type the messenger declared (never trusted for safety)
    fetch: FetchMedia | None = field(default=None, repr=False, compare=False)

    @classmethod
    def command_of(cls, name: str, language_hint: str | None = None) -> Inbound:
        return cls(InboundKind.COMMAND, command=name.lower(), language_hint=language_hint)

    @classmethod
    def text_of(cls, text: str, language_hint: str | None = None) -> Inbound:
        return cls(InboundKind.TEXT, text=text, language_hint=language_hint)

    @classmethod
    def choice_of(cls, payload: str, language_hint: str | None = None) -> Inbound:
        return cls(InboundKind.CHOICE, payload=payload, language_hint=language_hint)

    @classmethod
    def media_of(
        cls,
        media: str,
        caption: str = "",
        language_hint: str | None = None,
        *,
        mime: str = "",
        fetch: FetchMedia | None = None,
    ) -> Inbound:
        return cls(
            InboundKind.MEDIA,
            text=caption,
            media=media,
            language_hint=language_hint,
            mime=mime,
            fetch=fetch,
        )


@dataclass(frozen=True)
class Choice:
    """A button: what the worker sees, and the short payload that comes back when pressed."""

    label: str
    payload: str

    def __post_init__(self) -> None:
        size = len(self.payload.encode("utf-8"))
        if not 0 < size <= MAX_PAYLOAD_BYTES:
            raise ValueError(f"choice payload must be 1-{MAX_PAYLOAD_BYTES} bytes, got {size}")


@dataclass(frozen=True)
class Outbound:
    """One message to the worker. Channels split text that is too long for them."""

    text: str
    choices: tuple[Choice, ...] = ()
    columns: int = 1  # how many buttons a row, where the channel lays buttons out in a grid
    protect_content: bool = False  # ask the messenger to prevent forwarding and saving
    # Update the message whose button was pressed instead of sending a new one (toggles).
    replace_previous: bool = False
    # Parts of ``text`` shown bold, as (start, length) in Python string indices. The text itself
    # is never markup, so nothing a worker or staff member typed can be interpreted as such.
    bold: tuple[tuple[int, int], ...] = ()
    # A channel that lists choices as numbers may number these: a typed number presses one.
    # False when the worker is asked for words, where a typed number is words (the engine sets
    # it from the step the turn ends on: ``Step.free_text``).
    numbered: bool = True
    # The worker's language, where the sender knows it: a channel that must word its own parts
    # of a message (WhatsApp's "Menu" button that opens a list) words them in it.
    language: str | None = None

    def to_bytes(self) -> bytes:
        """The message as the outbox stores it (encrypted): every field, as JSON."""
        document: dict[str, Any] = {"text": self.text}
        if self.choices:
            document["choices"] = [[choice.label, choice.payload] for choice in self.choices]
        if self.columns != 1:
            document["columns"] = self.columns
        if self.protect_content:
            document["protect"] = True
        if self.replace_previous:
            document["replace"] = True
        if self.bold:
            document["bold"] = [list(span) for span in self.bold]
        if not self.numbered:
            document["numbered"] = False
        if self.language:
            document["lang"] = self.language
        return json.dumps(document, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Outbound:
        document = json.loads(raw)
        return cls(
            str(document["text"]),
            tuple(Choice(str(label), str(data)) for label, data in document.get("choices", [])),
            columns=int(document.get("columns", 1)),
            protect_content=bool(document.get("protect", False)),
            replace_previous=bool(document.get("replace", False)),
            bold=tuple((int(start), int(length)) for start, length in document.get("bold", [])),
            numbered=bool(document.get("numbered", True)),
            language=str(document["lang"]) if document.get("lang") else None,
        )


@dataclass(frozen=True)
class Effects:
    """What a channel should do besides sending replies."""

    erase_inbound: bool = False  # delete the worker's message (it held a secret code)
    erase_chat: bool = False  # delete what the channel still can of this chat (after /forget)


@dataclass(frozen=True)
class ChannelCapabilities:
    """What a channel can do for the worker's safety. Each channel declares its own, and the
    words the worker reads follow them: the core never says it deleted or protected something
    the channel cannot. A channel that declares nothing is taken at its least."""

    # Delete messages in the chat: the worker's message holding a code, the chat after /forget.
    can_delete_messages: bool = False
    # Send a message the messenger will not let be forwarded or saved (``protect_content``).
    can_protect_content: bool = False


#: What a channel that declares nothing is taken to do: neither.
LEAST_CAPABILITIES = ChannelCapabilities()

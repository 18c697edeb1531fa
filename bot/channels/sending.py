"""The send side every channel shares: one ``Sender`` protocol and one vocabulary of failures.

Modelled on RapidPro courier's send results: a channel's sender either hands back the ids of
what it sent, or says in one of a few words why it could not. The relays (outbox, broadcasts),
the gateway and every channel speak only these words, so a new messenger adds a sender and a
mapping of its own errors onto them, and nothing else changes.

- ``RetryAfter``: slow down (HTTP 429). Every sender of the token pauses; the message goes later.
  With ``chat_only`` (WhatsApp's pair rate, 131056) only messages to that one person wait.
- ``WindowClosed``: the messenger allows free-form messages only within a window after the
  worker last wrote (WhatsApp: 24 hours). The message is held; a neutral template asks the
  worker to write, and the held message goes when they do.
- ``Blocked``: the worker blocked the bot. They are marked blocked; staff are told of a case
  message that did not arrive.
- ``Unreachable``: no address any more (/forget, chat gone). The message is given up; staff told.
- ``Rejected``: this message is malformed or refused for good. It is given up.
- ``ChannelDown``: token rejected, API unreachable, server error. The message waits, spending no
  attempt.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from conversations.messages import Outbound
from storage.send_rate import Lane

__all__ = [
    "Blocked",
    "ChannelDown",
    "Lane",
    "MessageRefs",
    "Rejected",
    "RetryAfter",
    "SendFailure",
    "Sender",
    "Unreachable",
    "WindowClosed",
    "WindowOpener",
    "external_ref",
    "numeric_ids",
]


class SendFailure(Exception):
    """Why a message did not go. The text is for logs and staff: it never holds content."""


class RetryAfter(SendFailure):
    """The messenger asked us to slow down for ``seconds``: every send of the bot token, or,
    with ``chat_only``, only sends to this one recipient (the others go on at full rate)."""

    def __init__(self, seconds: float, *, chat_only: bool = False) -> None:
        scope = " (this recipient only)" if chat_only else ""
        super().__init__(f"rate limited{scope}: retry after {seconds} s")
        self.seconds = seconds
        self.chat_only = chat_only


class WindowClosed(SendFailure):
    """The messenger refuses free-form messages to this worker now (WhatsApp's 24-hour
    customer-service window is closed): hold the message until the worker writes again."""


class Unreachable(SendFailure):
    """The worker cannot be messaged on this channel: they used /forget, or the chat is gone."""


class Blocked(Unreachable):
    """The messenger said the worker blocked the bot: no broadcast goes to them until they
    write to us again."""


class Rejected(SendFailure):
    """The messenger refused this message for good (malformed, or not allowed)."""


class ChannelDown(SendFailure):
    """The channel itself fails (token rejected, API unreachable): messages wait, without
    spending their attempts."""


def numeric_ids(message_ids: list[str]) -> list[int]:
    """The ids a chat history can keep for /forget (channels that can delete messages number
    them; others return ids /forget cannot use anyway)."""
    return [int(value) for value in message_ids if value.isdecimal()]


class Sender(Protocol):
    """Sends the core's messages on one channel, in one pacing lane."""

    @property
    def channel(self) -> str:
        """The channel's name as stored with addresses (``telegram``, ``console`` ...)."""

    async def send(self, address: str, message: Outbound) -> list[str]:
        """Send ``message`` (split as the channel must) to ``address``; return the ids of the
        messages sent. Raises a ``SendFailure``."""


@runtime_checkable
class MessageRefs(Protocol):
    """A sender whose ids are keyed tokens of the messenger's message ids (WhatsApp:
    ``RedisKeyNames.token("wa_msg", wamid)``), the same token a delivery receipt is matched by
    later (``services/delivery_receipts.py``). Other senders' ids are never stored: Telegram
    sends no receipts, and its ids are raw message numbers."""

    ids_are_refs: bool


def external_ref(sender: Sender, message_ids: list[str]) -> str | None:
    """What a relay stores as the row's ``external_ref``: the last id of a message it sent (a
    split message's receipts follow its last part), when the sender's ids are refs."""
    if message_ids and isinstance(sender, MessageRefs) and sender.ids_are_refs:
        return message_ids[-1]
    return None


@runtime_checkable
class WindowOpener(Protocol):
    """A sender on a messenger with a customer-service window (WhatsApp): it can send the
    neutral, pre-approved template that asks the worker to write, which may go when nothing
    else may ("You have a new message. Reply to see it.")."""

    async def send_window_opener(self, address: str, language: str) -> list[str]:
        """Send the template in ``language`` (or the configured fallback's) to ``address``;
        return the ids of what was sent. Raises a ``SendFailure`` (``Rejected`` when no
        template is configured)."""

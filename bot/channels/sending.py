"""The send side every channel shares: one ``Sender`` protocol and one vocabulary of failures.

Modelled on RapidPro courier's send results: a channel's sender either hands back the ids of
what it sent, or says in one of a few words why it could not. The relays (outbox, broadcasts),
the gateway and every channel speak only these words, so a new messenger adds a sender and a
mapping of its own errors onto them, and nothing else changes.

- ``RetryAfter``: slow down (HTTP 429). Every sender of the token pauses; the message goes later.
- ``Blocked``: the worker blocked the bot. They are marked blocked; staff are told of a case
  message that did not arrive.
- ``Unreachable``: no address any more (/forget, chat gone). The message is given up; staff told.
- ``Rejected``: this message is malformed or refused for good. It is given up.
- ``ChannelDown``: token rejected, API unreachable, server error. The message waits, spending no
  attempt.
"""

from __future__ import annotations

from typing import Protocol

from conversations.messages import Outbound
from storage.send_rate import Lane

__all__ = [
    "Blocked",
    "ChannelDown",
    "Lane",
    "Rejected",
    "RetryAfter",
    "SendFailure",
    "Sender",
    "Unreachable",
    "numeric_ids",
]


class SendFailure(Exception):
    """Why a message did not go. The text is for logs and staff: it never holds content."""


class RetryAfter(SendFailure):
    """The messenger asked us to slow down for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited: retry after {seconds} s")
        self.seconds = seconds


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

"""How a message is paced: every send for one bot token draws from one shared rate.

The bucket itself is ``storage/send_rate.py`` (in Redis, shared by every process, or in memory).
This module is the one loop every runtime's send path goes through:

1. take a token in the sender's lane (conversation replies before broadcasts);
2. send;
3. on a 429, pause the bucket for everyone (every sender of the token, in every process) for the
   ``retry_after`` the messenger named, then, in the conversation lane, try again: the pause
   ends when the bucket lets the next token out.

Broadcasts do not come through here: the broadcast relay takes its tokens in chunks from the same
bucket (broadcast lane) and puts a 429'd row back for later instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from storage.send_rate import Lane, SendRate

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A send still refused after this many 429s in a row gives up (the outbox tries again later).
MAX_RETRY_AFTER_ATTEMPTS = 5

#: The seconds a messenger's error asks us to wait, or None when it is not a rate limit.
RetryAfterOf = Callable[[BaseException], float | None]


async def paced(
    rate: SendRate,
    attempt: Callable[[], Awaitable[T]],
    retry_after_of: RetryAfterOf,
    *,
    lane: Lane = Lane.CONVERSATION,
    what: str = "send",
    retries: int = MAX_RETRY_AFTER_ATTEMPTS,
) -> T:
    """Run ``attempt`` (one API call) within the shared rate, waiting out 429s."""
    tries = 0
    while True:
        await rate.take(1, lane)
        try:
            return await attempt()
        except Exception as error:
            seconds = retry_after_of(error)
            if seconds is None:
                raise
            tries += 1
            await rate.pause(seconds)  # everyone waits, not only this coroutine
            if tries >= retries:
                raise
            log.warning(
                "rate limit on %s: every sender waits %s s (attempt %d)", what, seconds, tries
            )

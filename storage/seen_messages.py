"""Messages already handled, by an opaque token, so a message delivered twice is handled once.

WhatsApp retries a webhook POST it did not see answered, and may put one message in two POSTs.
The store is keyed by a token the caller derives (a keyed HMAC of the message id: a WhatsApp
message id encodes the phone number, so it is never stored, here or in a Redis key). Tokens are
kept 48 hours, twice the span courier keeps external ids for.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

SEEN_SECONDS = 48 * 3600
MAX_SEEN_IN_MEMORY = 100_000


class SeenMessages(Protocol):
    async def first_time(self, token: str) -> bool:
        """True the first time a token is seen (within 48 hours), False after."""


class MemorySeenMessages:
    def __init__(self, seconds: float = SEEN_SECONDS, limit: int = MAX_SEEN_IN_MEMORY) -> None:
        self._seconds = seconds
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def first_time(self, token: str) -> bool:
        now = time.monotonic()
        while self._seen and (
            len(self._seen) >= self._limit or now - next(iter(self._seen.values())) > self._seconds
        ):
            self._seen.popitem(last=False)
        if token in self._seen:
            return False
        self._seen[token] = now
        return True


class RedisSeenMessages:
    """``SET NX`` with a 48-hour expiry: shared by every process of the bot."""

    def __init__(self, redis: Redis, prefix: str, kind: str = "wa_seen") -> None:
        self._redis = redis
        self._prefix = f"{prefix}:{kind}"

    async def first_time(self, token: str) -> bool:
        created = await self._redis.set(f"{self._prefix}:{token}", b"1", nx=True, ex=SEEN_SECONDS)
        return bool(created)

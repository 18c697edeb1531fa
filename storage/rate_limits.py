"""Counting in a time window, in memory or in Redis (shared by every process).

Used to throttle receipt-code guessing and for the per-worker quotas (reports, urgent alerts,
evidence bytes, updates a minute). A window is fixed: it starts with the first count and ends
``window_seconds`` later, however often the key is counted meanwhile, so nobody can hold a window
open by going on. On Redis each count is one atomic ``INCRBY`` + ``EXPIRE NX`` transaction: two
processes counting at once never both see the count before the other's.

Keys that concern one worker never hold the pseudonym itself: ``Blinder`` turns it into a keyed
hash that is good for nothing but counting.

In Redis a counter ``KIND:SUBJECT`` is named by a keyed token of its subject
(``storage/redis_keys.py``). Counters outlive /forget on purpose and simply expire with their
window: dropping them would let a guesser or a flooder reset their allowance with /forget.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Protocol

from redis.asyncio import Redis

from storage.redis_keys import RedisKeyNames


class AttemptCounter(Protocol):
    async def count(self, key: str, window_seconds: int) -> int:
        """What was counted under ``key`` in the current window."""

    async def add(self, key: str, window_seconds: int, amount: int = 1) -> int:
        """Count ``amount`` (negative to give some back) atomically; return the count in the
        window including it."""

    async def seconds_left(self, key: str, window_seconds: int) -> int:
        """Seconds until the current window of ``key`` ends (0: there is none)."""


class Blinder:
    """A worker's name in counter keys: HMAC of the pseudonym under a key derived from
    ``WVB_SECRET_KEY``, so a Redis dump neither holds pseudonyms nor matches them to a
    database dump without the key."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, b"wvb-counter-keys", hashlib.sha256).digest()

    def __call__(self, pseudonym: str) -> str:
        return hmac.new(self._key, pseudonym.encode(), hashlib.sha256).hexdigest()[:32]


class MemoryAttemptCounter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def _current(self, key: str, window_seconds: int, now: float) -> tuple[float, int] | None:
        entry = self._windows.get(key)
        if entry is None or now - entry[0] >= window_seconds:
            return None
        return entry

    async def count(self, key: str, window_seconds: int) -> int:
        current = self._current(key, window_seconds, time.monotonic())
        return current[1] if current else 0

    async def add(self, key: str, window_seconds: int, amount: int = 1) -> int:
        now = time.monotonic()
        current = self._current(key, window_seconds, now)
        if current is None:
            if amount < 0:  # giving back into a window that already ended: nothing to do
                return 0
            current = (now, 0)
        started, count = current
        self._windows[key] = (started, count + amount)
        if len(self._windows) > 100_000:  # forget windows that ended, now and then
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window_seconds}
        return count + amount

    async def seconds_left(self, key: str, window_seconds: int) -> int:
        now = time.monotonic()
        current = self._current(key, window_seconds, now)
        if current is None:
            return 0
        return max(1, math.ceil(current[0] + window_seconds - now))


class RedisAttemptCounter:
    def __init__(self, redis: Redis, names: RedisKeyNames) -> None:
        self._redis = redis
        self._names = names

    def _key(self, key: str) -> str:
        """``KIND:SUBJECT`` -> ``prefix:attempts:KIND:token``: no pseudonym in a Redis key."""
        kind, _, subject = key.partition(":")
        return f"{self._names.prefix}:attempts:{kind}:{self._names.token('attempts', subject)}"

    async def count(self, key: str, window_seconds: int) -> int:
        value = await self._redis.get(self._key(key))
        return int(value) if value is not None else 0

    async def add(self, key: str, window_seconds: int, amount: int = 1) -> int:
        name = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, window_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def seconds_left(self, key: str, window_seconds: int) -> int:
        ttl = int(await self._redis.ttl(self._key(key)))
        if ttl == -2:  # no such key
            return 0
        return window_seconds if ttl < 0 else max(1, ttl)

"""Counting attempts in a time window, in memory or in Redis (shared by every process).

Used to throttle receipt-code guessing: per worker pseudonym and globally, so neither one patient
guesser nor many accounts together can walk through the code space. A counter is named
``KIND:SUBJECT`` (``status:<pseudonym>``); in Redis the subject is replaced by a keyed token
(``storage/redis_keys.py``), and ``forget(subject)`` drops every counter of a worker.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

from storage.redis_keys import RedisKeyNames


class AttemptCounter(Protocol):
    async def count(self, key: str, window_seconds: int) -> int:
        """Attempts recorded under ``key`` in the current window."""

    async def add(self, key: str, window_seconds: int) -> int:
        """Record one attempt; return the count in the window including it."""

    async def forget(self, subject: str) -> None:
        """Drop every counter ``KIND:subject`` (a worker used /forget)."""


class MemoryAttemptCounter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def _current(self, key: str) -> tuple[float, int]:
        started, count = self._windows.get(key, (0.0, 0))
        return (started, count)

    async def count(self, key: str, window_seconds: int) -> int:
        started, count = self._current(key)
        return count if time.monotonic() - started < window_seconds else 0

    async def add(self, key: str, window_seconds: int) -> int:
        now = time.monotonic()
        started, count = self._current(key)
        if now - started >= window_seconds:
            started, count = now, 0
        self._windows[key] = (started, count + 1)
        if len(self._windows) > 100_000:  # forget windows that ended, now and then
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window_seconds}
        return count + 1

    async def forget(self, subject: str) -> None:
        for key in [key for key in self._windows if key.partition(":")[2] == subject]:
            del self._windows[key]


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

    async def add(self, key: str, window_seconds: int) -> int:
        name = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def forget(self, subject: str) -> None:
        pattern = self._key(f"*:{subject}")
        names = [name async for name in self._redis.scan_iter(match=pattern, count=1000)]
        if names:
            await self._redis.delete(*names)

"""Holding back guesses at the console's login: failures counted per account and per client
address over the last 15 minutes, on the login service's clock.

The window slides in three five-minute buckets of ``storage.rate_limits`` counters (memory or
Redis, shared by every console process), each named by its kind, a blinded subject and its
bucket's number, so no staff name or address reaches a key. A try is counted *before* it is
checked, atomically, so many tries sent at once cannot all be checked: a try over a limit is
given back and refused unchecked, and a try that logs in is given back too (only failures
count). Held tries do not extend the hold: it ends when the failures that caused it leave the
window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from storage.rate_limits import AttemptCounter

BUCKETS = 3


@dataclass(frozen=True)
class Limit:
    """At most ``most`` failures of ``subject`` (already blinded) of this ``kind``."""

    kind: str
    subject: str
    most: int


@dataclass(frozen=True)
class Hold:
    """A try refused unchecked: which limit, and in how many seconds a try is let through."""

    limit: Limit
    retry_after_seconds: int


class LoginThrottle:
    def __init__(self, counter: AttemptCounter, window_seconds: int = 15 * 60) -> None:
        self.counter = counter
        self.bucket_seconds = window_seconds // BUCKETS
        # A bucket is read until it leaves the window, so its counter lives one bucket longer.
        self.keep_seconds = window_seconds + self.bucket_seconds

    def _key(self, limit: Limit, bucket: int) -> str:
        return f"{limit.kind}:{limit.subject}:{bucket}"

    async def take(self, limits: Sequence[Limit], now: float) -> Hold | None:
        """Count one try against every limit; if any is then over, give the try back and say
        how long the longest hold lasts."""
        current = int(now // self.bucket_seconds)
        holds: list[Hold] = []
        for limit in limits:
            counts = [
                await self.counter.count(self._key(limit, bucket), self.keep_seconds)
                for bucket in range(current - BUCKETS + 1, current)
            ]
            counts.append(await self.counter.add(self._key(limit, current), self.keep_seconds))
            if sum(counts) > limit.most:
                counts[-1] -= 1  # the held try itself does not count
                holds.append(Hold(limit, self._wait(counts, limit.most, current, now)))
        if not holds:
            return None
        await self.give_back(limits, now)
        return max(holds, key=lambda hold: hold.retry_after_seconds)

    async def give_back(self, limits: Sequence[Limit], now: float) -> None:
        """Uncount a try ``take`` counted at ``now`` (a login that worked, or a held try)."""
        current = int(now // self.bucket_seconds)
        for limit in limits:
            await self.counter.add(self._key(limit, current), self.keep_seconds, -1)

    def _wait(self, counts: list[int], most: int, current: int, now: float) -> int:
        """Seconds until enough of the oldest buckets left the window for one more try."""
        remaining = sum(counts)
        first = current - BUCKETS + 1
        for offset, count in enumerate(counts):
            remaining -= count
            if remaining < most:
                leaves_at = (first + offset + BUCKETS) * self.bucket_seconds
                return max(1, math.ceil(leaves_at - now))
        return self.bucket_seconds * BUCKETS  # not reached: the last bucket empties it

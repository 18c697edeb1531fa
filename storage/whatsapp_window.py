"""Each WhatsApp worker's 24-hour customer-service window, in memory or in Redis.

WhatsApp lets a business send free-form messages to a person only within 24 hours of that
person's last message; outside it, only pre-approved templates (docs/design/whatsapp.md). This
store remembers when each worker last wrote, so a sender can tell before sending whether a
message may go, and whether the neutral template that asks the worker to write ("You have a new
message. Reply to see it.") has gone since their window closed: it goes at most once per closed
window (``opener_due``).

- The window counts as open for 24 hours minus a margin (``WVB_WHATSAPP_WINDOW_MARGIN_MINUTES``,
  default 30) after the worker's message, timed by the message itself and clamped to now: a
  message Meta delivers late (it retries a webhook for days) reopens nothing that has ended, and
  a timestamp from the future opens nothing longer than 24 hours.
- Unknown or lost state (a Redis flush, a restart on memory) is a closed window: the neutral
  template goes and the message waits for the worker. Taking it for open would send what Meta
  refuses with 131047; closed costs one template at most.
- In Redis, shared by every process, a worker is named by keyed tokens of their address
  (``RedisKeyNames``), never the phone number, the WhatsApp user id or the pseudonym; the values
  are a Unix time and a flag. Every key expires: the window when it ends, the opener mark after
  ``OPENER_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from storage.redis_keys import RedisKeyNames

WINDOW_HOURS = 24
#: How long a sent template counts: a worker who has not answered it within this time may get one
#: more with the next message held for them (one template a week at most, while they stay silent).
OPENER_SECONDS = 7 * 24 * 3600
MAX_WORKERS_IN_MEMORY = 100_000

#: Seconds since the epoch (``time.time``; tests pass their own).
Clock = Callable[[], float]


def window_seconds(margin_minutes: int) -> float:
    """How long after a worker's message free-form messages may go: 24 hours less the margin
    (the margin keeps a message that waits in the relay from arriving just after Meta shut it)."""
    return WINDOW_HOURS * 3600 - margin_minutes * 60


class WhatsAppWindow(Protocol):
    """When each worker last wrote, and whether the template asking them to write has gone."""

    async def wrote(self, address: str, at: float) -> bool:
        """The worker at ``address`` wrote a message sent at ``at`` (Unix seconds; clamped to
        now). True when this opens their window, and messages held for them should go now: it
        was closed (or unknown), or a template asked them to write since. A message too old to
        open the window any more changes nothing and returns False."""

    async def is_open(self, address: str, now: float | None = None) -> bool:
        """Whether a free-form message may go to ``address`` now (unknown: no)."""

    async def opener_due(self, address: str) -> bool:
        """Whether the neutral template should go to ``address`` now: True once per closed
        window, atomically across processes (the caller that gets True sends it)."""

    async def opener_failed(self, address: str) -> None:
        """The template ``opener_due`` allowed did not go: the next held message may try again."""

    async def closed(self, address: str) -> None:
        """The messenger said the window is closed (131047) whatever this store thought: forget
        when the worker last wrote, so their next message opens it and releases what waits."""

    async def forget(self, address: str) -> None:
        """The worker used /forget: nothing of them stays here."""


class MemoryWhatsAppWindow:
    """One process's windows (the embedded default, tests): lost on restart, i.e. closed."""

    def __init__(
        self, names: RedisKeyNames, margin_minutes: int = 30, clock: Clock = time.time
    ) -> None:
        self._names = names
        self._length = window_seconds(margin_minutes)
        self._clock = clock
        self._wrote: dict[str, float] = {}
        self._opener_until: dict[str, float] = {}

    def _token(self, address: str) -> str:
        return self._names.token("wa_window", address)

    def _prune(self, now: float) -> None:
        if len(self._wrote) + len(self._opener_until) > MAX_WORKERS_IN_MEMORY:
            self._wrote = {k: at for k, at in self._wrote.items() if at + self._length > now}
            self._opener_until = {k: t for k, t in self._opener_until.items() if t > now}

    async def wrote(self, address: str, at: float) -> bool:
        now = self._clock()
        at = min(at, now)
        if at + self._length <= now:
            return False
        token = self._token(address)
        before = self._wrote.get(token)
        was_open = before is not None and before + self._length > now
        asked = self._opener_until.pop(token, 0.0) > now
        if before is None or at > before:
            self._wrote[token] = at
        self._prune(now)
        return not was_open or asked

    async def is_open(self, address: str, now: float | None = None) -> bool:
        at = self._wrote.get(self._token(address))
        return at is not None and at + self._length > (self._clock() if now is None else now)

    async def opener_due(self, address: str) -> bool:
        now = self._clock()
        token = self._token(address)
        if self._opener_until.get(token, 0.0) > now:
            return False
        self._opener_until[token] = now + OPENER_SECONDS
        self._prune(now)
        return True

    async def opener_failed(self, address: str) -> None:
        self._opener_until.pop(self._token(address), None)

    async def closed(self, address: str) -> None:
        self._wrote.pop(self._token(address), None)

    async def forget(self, address: str) -> None:
        token = self._token(address)
        self._wrote.pop(token, None)
        self._opener_until.pop(token, None)


# KEYS: the window, the opener mark. ARGV: the message's time (clamped), now, the window's length.
# One script, so two processes handling two messages of one worker never both miss an opening.
_WROTE = """
local at = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local length = tonumber(ARGV[3])
if at + length <= now then
  return 0
end
local before = tonumber(redis.call('GET', KEYS[1]) or '')
local was_open = before ~= nil and before + length > now
local asked = redis.call('DEL', KEYS[2]) == 1
if before == nil or at > before then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', math.ceil(at + length - now))
end
if was_open and not asked then
  return 0
end
return 1
"""


class RedisWhatsAppWindow:
    """Windows shared by every process of the bot (``wvb run``, ``wvb broadcast relay``)."""

    def __init__(
        self,
        redis: Redis,
        names: RedisKeyNames,
        margin_minutes: int = 30,
        clock: Clock = time.time,
    ) -> None:
        self._redis = redis
        self._names = names
        self._length = window_seconds(margin_minutes)
        self._clock = clock
        self._wrote = redis.register_script(_WROTE)

    def _window_key(self, address: str) -> str:
        return self._names.key("wa_window", address)

    def _opener_key(self, address: str) -> str:
        return self._names.key("wa_opener", address)

    async def wrote(self, address: str, at: float) -> bool:
        now = self._clock()
        at = min(at, now)
        opened = await self._wrote(
            keys=[self._window_key(address), self._opener_key(address)],
            args=[repr(float(at)), repr(float(now)), repr(float(self._length))],
        )
        return bool(opened)

    async def is_open(self, address: str, now: float | None = None) -> bool:
        stored = await self._redis.get(self._window_key(address))
        if stored is None:
            return False
        try:
            at = float(stored)
        except ValueError:  # not ours: unknown, so closed
            return False
        return at + self._length > (self._clock() if now is None else now)

    async def opener_due(self, address: str) -> bool:
        created = await self._redis.set(self._opener_key(address), b"1", nx=True, ex=OPENER_SECONDS)
        return bool(created)

    async def opener_failed(self, address: str) -> None:
        await self._redis.delete(self._opener_key(address))

    async def closed(self, address: str) -> None:
        await self._redis.delete(self._window_key(address))

    async def forget(self, address: str) -> None:
        await self._redis.delete(self._window_key(address), self._opener_key(address))

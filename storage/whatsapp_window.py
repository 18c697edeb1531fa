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
- A worker is known here by each id their address holds (``ids``: a WhatsApp address holds the
  business-scoped user id, the phone id or both, ``bot/channels/whatsapp/identity.py``), and the
  window is one person's: a message from any of their ids opens it for all the ids it shows, and
  it counts as open when it is open for any id of the address asked about. So a worker whose
  address changes form (a username adopted and the number hidden; Meta's user id appearing)
  keeps their window, and what is held for them is released by their next message.
- In Redis, shared by every process, each id is named by a keyed token (``RedisKeyNames``),
  never the phone number, the WhatsApp user id or the pseudonym; the values are a Unix time and
  a flag. Every key expires: the window when it ends, the opener mark after ``OPENER_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis

from storage.redis_keys import RedisKeyNames

WINDOW_HOURS = 24
#: How long a sent template counts: a worker who has not answered it within this time may get one
#: more with the next message held for them (one template a week at most, while they stay silent).
OPENER_SECONDS = 7 * 24 * 3600
MAX_IDS_IN_MEMORY = 100_000

#: Seconds since the epoch (``time.time``; tests pass their own).
Clock = Callable[[], float]
#: The ids of one person an address holds (by default the address is the one id).
AddressIds = Callable[[str], Sequence[str]]


def one_id(address: str) -> Sequence[str]:
    return (address,)


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
        self,
        names: RedisKeyNames,
        margin_minutes: int = 30,
        clock: Clock = time.time,
        ids: AddressIds = one_id,
    ) -> None:
        self._names = names
        self._length = window_seconds(margin_minutes)
        self._clock = clock
        self._ids = ids
        self._wrote: dict[str, float] = {}
        self._opener_until: dict[str, float] = {}

    def _tokens(self, address: str) -> list[str]:
        return [self._names.token("wa_window", each) for each in self._ids(address)]

    def _prune(self, now: float) -> None:
        if len(self._wrote) + len(self._opener_until) > MAX_IDS_IN_MEMORY:
            self._wrote = {k: at for k, at in self._wrote.items() if at + self._length > now}
            self._opener_until = {k: t for k, t in self._opener_until.items() if t > now}

    async def wrote(self, address: str, at: float) -> bool:
        now = self._clock()
        at = min(at, now)
        if at + self._length <= now:
            return False
        was_open = asked = False
        for token in self._tokens(address):
            before = self._wrote.get(token)
            was_open = was_open or (before is not None and before + self._length > now)
            asked = (self._opener_until.pop(token, 0.0) > now) or asked
            if before is None or at > before:
                self._wrote[token] = at
        self._prune(now)
        return not was_open or asked

    async def is_open(self, address: str, now: float | None = None) -> bool:
        moment = self._clock() if now is None else now
        return any(
            (at := self._wrote.get(token)) is not None and at + self._length > moment
            for token in self._tokens(address)
        )

    async def opener_due(self, address: str) -> bool:
        now = self._clock()
        tokens = self._tokens(address)
        if any(self._opener_until.get(token, 0.0) > now for token in tokens):
            return False
        for token in tokens:
            self._opener_until[token] = now + OPENER_SECONDS
        self._prune(now)
        return True

    async def opener_failed(self, address: str) -> None:
        for token in self._tokens(address):
            self._opener_until.pop(token, None)

    async def closed(self, address: str) -> None:
        for token in self._tokens(address):
            self._wrote.pop(token, None)

    async def forget(self, address: str) -> None:
        await self.closed(address)
        await self.opener_failed(address)


# KEYS: the window of each id, then the opener mark of each id. ARGV: the message's time
# (clamped), now, the window's length, how many ids. One script, so two processes handling two
# messages of one worker never both miss an opening.
_WROTE = """
local at = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local length = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
if at + length <= now then
  return 0
end
local was_open = false
for i = 1, n do
  local before = tonumber(redis.call('GET', KEYS[i]) or '')
  if before ~= nil and before + length > now then
    was_open = true
  end
  if before == nil or at > before then
    redis.call('SET', KEYS[i], ARGV[1], 'EX', math.ceil(at + length - now))
  end
end
local asked = false
for i = n + 1, 2 * n do
  if redis.call('DEL', KEYS[i]) == 1 then
    asked = true
  end
end
if was_open and not asked then
  return 0
end
return 1
"""

# KEYS: the opener mark of each id. ARGV: how long a mark lasts. Due when no id has one.
_OPENER_DUE = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
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
        ids: AddressIds = one_id,
    ) -> None:
        self._redis = redis
        self._names = names
        self._length = window_seconds(margin_minutes)
        self._clock = clock
        self._ids = ids
        self._wrote = redis.register_script(_WROTE)
        self._opener_due = redis.register_script(_OPENER_DUE)

    def _window_keys(self, address: str) -> list[str]:
        return [self._names.key("wa_window", each) for each in self._ids(address)]

    def _opener_keys(self, address: str) -> list[str]:
        return [self._names.key("wa_opener", each) for each in self._ids(address)]

    async def wrote(self, address: str, at: float) -> bool:
        now = self._clock()
        at = min(at, now)
        windows = self._window_keys(address)
        opened = await self._wrote(
            keys=[*windows, *self._opener_keys(address)],
            args=[repr(float(at)), repr(float(now)), repr(float(self._length)), len(windows)],
        )
        return bool(opened)

    async def is_open(self, address: str, now: float | None = None) -> bool:
        moment = self._clock() if now is None else now
        for stored in await self._redis.mget(self._window_keys(address)):
            try:
                if stored is not None and float(stored) + self._length > moment:
                    return True
            except ValueError:  # not ours: unknown, so closed
                continue
        return False

    async def opener_due(self, address: str) -> bool:
        due = await self._opener_due(keys=self._opener_keys(address), args=[OPENER_SECONDS])
        return bool(due)

    async def opener_failed(self, address: str) -> None:
        await self._redis.delete(*self._opener_keys(address))

    async def closed(self, address: str) -> None:
        await self._redis.delete(*self._window_keys(address))

    async def forget(self, address: str) -> None:
        await self._redis.delete(*self._window_keys(address), *self._opener_keys(address))

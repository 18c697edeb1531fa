"""The send rate of one bot token: one token bucket shared by every process and every kind of
message, and a least gap per chat for broadcasts.

With Redis, the bucket is a hash updated by a Lua script that reads Redis's own clock, so every
process (and every machine) draws from the same tokens whatever their clocks say. A 429 from
the messenger pauses the bucket for everyone until ``retry_after`` has passed. Without Redis
(the embedded default, one process) the same logic runs in memory.

Two lanes draw from the bucket. Conversation replies (and the outbox) may take any token;
broadcasts may take only tokens above a reserve of half the burst. When both want to send, the
refill goes to replies first, so a worker talking to the bot is answered promptly while a
100,000-recipient broadcast runs; with no replies waiting, broadcasts get the full rate.

Chat gaps are kept under the worker's database id, never a messenger id.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rate = tonumber(ARGV[1]) / 1000.0
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp', 'paused')
local paused = tonumber(state[3]) or 0
if now < paused then
  return {0, paused - now}
end
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
tokens = math.min(capacity, tokens + (now - stamp) * rate)
local granted = math.max(0, math.min(wanted, math.floor(tokens - reserve)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', now)
redis.call('PEXPIRE', KEYS[1], 600000)
local wait = 0
if granted < wanted then
  wait = math.ceil((reserve + 1 - tokens) / rate)
end
return {granted, wait}
"""

_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused')) or 0
if until_ms > paused then
  redis.call('HSET', KEYS[1], 'paused', until_ms, 'tokens', '0', 'stamp', until_ms)
  redis.call('PEXPIRE', KEYS[1], 600000)
end
return until_ms
"""


_CHAT_SLOTS = """
local allowed = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'PX', ARGV[1]) then
    allowed[i] = 1
  else
    allowed[i] = 0
  end
end
return allowed
"""


class Lane(StrEnum):
    """Who is sending: replies first, broadcasts with what is left."""

    CONVERSATION = "conversation"  # replies in a turn, and outbox messages to one person
    BROADCAST = "broadcast"


def bucket_capacity(rate: float) -> float:
    """A tenth of a second of burst (at least one message): smooth enough that the messenger's
    own limiter never sees a spike, big enough to send in chunks at high rates."""
    return max(1.0, rate / 10.0)


def lane_reserve(lane: Lane, capacity: float) -> float:
    """Tokens a lane must leave in the bucket: broadcasts leave half the burst for replies
    (never so much that a broadcast could not take a whole token from a full bucket)."""
    if lane is not Lane.BROADCAST:
        return 0.0
    return max(0.0, min(capacity / 2, capacity - 1))


class SendRate(Protocol):
    rate: float

    async def take(self, wanted: int, lane: Lane = Lane.CONVERSATION) -> int:
        """Wait until at least one token is free for ``lane``; take up to ``wanted``; return
        how many."""

    async def pause(self, seconds: float) -> None:
        """The messenger said 429: nobody sends until ``seconds`` have passed."""

    async def chat_slots(self, chat_keys: list[int]) -> list[bool]:
        """For each chat, whether a message may go now (and reserve the gap if so)."""


class MemorySendRate:
    def __init__(self, rate: float, chat_interval: float = 1.0) -> None:
        self.rate = rate
        self.capacity = bucket_capacity(rate)
        self.chat_interval = chat_interval
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._chats: dict[int, float] = {}

    async def take(self, wanted: int, lane: Lane = Lane.CONVERSATION) -> int:
        # No lock: nothing awaits between reading and updating the bucket, and a waiting
        # broadcast must never hold up a reply that could go now.
        reserve = lane_reserve(lane, self.capacity)
        while True:
            now = time.monotonic()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            granted = min(wanted, int(self._tokens - reserve))
            if granted >= 1:
                self._tokens -= granted
                return granted
            await asyncio.sleep((reserve + 1 - self._tokens) / self.rate)

    async def pause(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 0.0
            self._stamp = until

    async def chat_slots(self, chat_keys: list[int]) -> list[bool]:
        now = time.monotonic()
        if len(self._chats) > 100_000:  # forget gaps long past
            self._chats = {k: t for k, t in self._chats.items() if t > now}
        allowed = []
        for key in chat_keys:
            if self._chats.get(key, 0.0) > now:
                allowed.append(False)
            else:
                self._chats[key] = now + self.chat_interval
                allowed.append(True)
        return allowed


class RedisSendRate:
    def __init__(
        self, redis: Redis, prefix: str, rate: float, chat_interval: float = 1.0, name: str = "tg"
    ) -> None:
        self.redis = redis
        self.rate = rate
        self.capacity = bucket_capacity(rate)
        self.chat_interval_ms = int(chat_interval * 1000)
        self.bucket_key = f"{prefix}:sendrate:{name}"
        self.chat_prefix = f"{prefix}:sendgap:{name}:"
        self._take = redis.register_script(_TAKE)
        self._pause = redis.register_script(_PAUSE)
        self._chat_slots = redis.register_script(_CHAT_SLOTS)
        # While Redis cannot be reached, replies are paced by this process alone (a worker is
        # still told to try again shortly); broadcasts wait for Redis.
        self._fallback = MemorySendRate(rate, chat_interval)

    async def take(self, wanted: int, lane: Lane = Lane.CONVERSATION) -> int:
        reserve = lane_reserve(lane, self.capacity)
        while True:
            try:
                granted, wait_ms = await self._take(
                    keys=[self.bucket_key], args=[self.rate, self.capacity, wanted, reserve]
                )
            except (RedisConnectionError, RedisTimeoutError):
                if lane is not Lane.CONVERSATION:
                    raise
                return await self._fallback.take(wanted, lane)
            if int(granted) > 0:
                return int(granted)
            await asyncio.sleep(max(1, int(wait_ms)) / 1000)

    async def pause(self, seconds: float) -> None:
        await self._fallback.pause(seconds)
        await self._pause(keys=[self.bucket_key], args=[int(seconds * 1000)])

    async def chat_slots(self, chat_keys: list[int]) -> list[bool]:
        if not chat_keys or self.chat_interval_ms <= 0:
            return [True] * len(chat_keys)
        keys = [f"{self.chat_prefix}{key}" for key in chat_keys]  # one call for the whole chunk
        allowed = await self._chat_slots(keys=keys, args=[self.chat_interval_ms])
        return [bool(flag) for flag in allowed]

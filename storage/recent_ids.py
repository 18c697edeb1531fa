"""Short-lived records of message and update ids, in memory or in Redis.

- ``ChatHistory``: the ids of recent messages in each worker's chat (theirs and the bot's), so
  /forget can delete what Telegram still allows (48 hours). Ids only, never content.
- ``UpdateLog``: update ids already handled, so an update delivered twice (a webhook retry, a
  restart before the polling offset was confirmed) is handled once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

from storage.redis_keys import RedisKeyNames

#: Telegram lets a bot delete messages in a private chat for 48 hours.
HISTORY_SECONDS = 48 * 3600
MAX_HISTORY_PER_CHAT = 500
UPDATE_MEMORY_SECONDS = 24 * 3600
MAX_UPDATES_IN_MEMORY = 100_000


class ChatHistory(Protocol):
    async def add(self, pseudonym: str, message_ids: list[int]) -> None: ...

    async def add_many(self, entries: list[tuple[str, int]]) -> None:
        """One message each for many chats (broadcasts), in one round trip where possible."""
        ...

    async def recent(self, pseudonym: str) -> list[int]: ...

    async def clear(self, pseudonym: str) -> None: ...


class UpdateLog(Protocol):
    async def first_time(self, update_id: int) -> bool:
        """True the first time an update id is seen (within a day), False after."""


class MemoryChatHistory:
    def __init__(self) -> None:
        self._chats: dict[str, list[tuple[float, int]]] = {}

    async def add(self, pseudonym: str, message_ids: list[int]) -> None:
        now = time.time()
        entries = [e for e in self._chats.get(pseudonym, []) if now - e[0] < HISTORY_SECONDS]
        entries += [(now, message_id) for message_id in message_ids]
        self._chats[pseudonym] = entries[-MAX_HISTORY_PER_CHAT:]

    async def add_many(self, entries: list[tuple[str, int]]) -> None:
        for pseudonym, message_id in entries:
            await self.add(pseudonym, [message_id])

    async def recent(self, pseudonym: str) -> list[int]:
        now = time.time()
        return [mid for at, mid in self._chats.get(pseudonym, []) if now - at < HISTORY_SECONDS]

    async def clear(self, pseudonym: str) -> None:
        self._chats.pop(pseudonym, None)


_ADD_MANY = """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1], ARGV[i + 2])
  redis.call('EXPIRE', key, ARGV[2])
end
return #KEYS
"""


class RedisChatHistory:
    def __init__(self, redis: Redis, names: RedisKeyNames) -> None:
        self._redis = redis
        self._names = names
        self._add_many = redis.register_script(_ADD_MANY)

    def _key(self, pseudonym: str) -> str:
        return self._names.key("history", pseudonym)

    async def add(self, pseudonym: str, message_ids: list[int]) -> None:
        if not message_ids:
            return
        now = time.time()
        key = self._key(pseudonym)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {str(message_id): now for message_id in message_ids})
            pipe.zremrangebyscore(key, 0, now - HISTORY_SECONDS)
            pipe.zremrangebyrank(key, 0, -MAX_HISTORY_PER_CHAT - 1)
            pipe.expire(key, HISTORY_SECONDS)
            await pipe.execute()

    async def add_many(self, entries: list[tuple[str, int]]) -> None:
        if not entries:
            return
        # One script call for all (a pipeline costs a packed command each): trimmed by the next
        # conversational add.
        await self._add_many(
            keys=[self._key(pseudonym) for pseudonym, _ in entries],
            args=[time.time(), HISTORY_SECONDS, *(message_id for _, message_id in entries)],
        )

    async def recent(self, pseudonym: str) -> list[int]:
        now = time.time()
        members = await self._redis.zrangebyscore(
            self._key(pseudonym), now - HISTORY_SECONDS, "+inf"
        )
        return [int(member) for member in members if isinstance(member, bytes | str)]

    async def clear(self, pseudonym: str) -> None:
        await self._redis.delete(self._key(pseudonym))


class MemoryUpdateLog:
    def __init__(self) -> None:
        self._seen: OrderedDict[int, float] = OrderedDict()

    async def first_time(self, update_id: int) -> bool:
        now = time.monotonic()
        while self._seen and (
            len(self._seen) > MAX_UPDATES_IN_MEMORY
            or now - next(iter(self._seen.values())) > UPDATE_MEMORY_SECONDS
        ):
            self._seen.popitem(last=False)
        if update_id in self._seen:
            return False
        self._seen[update_id] = now
        return True


class RedisUpdateLog:
    def __init__(self, redis: Redis, prefix: str, bot_id: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:update:{bot_id}"

    async def first_time(self, update_id: int) -> bool:
        created = await self._redis.set(
            f"{self._prefix}:{update_id}", b"1", nx=True, ex=UPDATE_MEMORY_SECONDS
        )
        return bool(created)

"""Conversation state stores: one interface, kept in process memory or in Redis.

Both stores encrypt the state (it holds drafts the worker is typing). Redis keys name the worker
by a keyed token, not the pseudonym (``storage/redis_keys.py``), so a Redis dump shows neither who
is talking nor what they said, and cannot be joined to the database's workers. Both give a
per-conversation lock so two updates from the same worker never race on the state; the Redis lock
holds across processes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conversations.state import ConversationState
from storage.crypto import DecryptionError, Keyring
from storage.redis_keys import RedisKeyNames

# A lock older than this is assumed to belong to a crashed process and expires. A turn (even one
# that downloads and cleans a large photo) takes far less. Waiting longer than the lease means an
# update queued behind a crashed process's lock is handled once the lease runs out, not dropped.
LOCK_LEASE_SECONDS = 20
LOCK_WAIT_SECONDS = 30


#: How a key named a worker before tokens: the pseudonym, 64 hex digits.
_LEGACY_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


class ConversationBusyError(Exception):
    """Another update of the same conversation held the lock for too long."""


class ConversationStore(Protocol):
    async def load(self, pseudonym: str) -> ConversationState | None: ...

    async def save(self, pseudonym: str, state: ConversationState) -> None: ...

    async def delete(self, pseudonym: str) -> None: ...

    def lock(self, pseudonym: str) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


def state_purpose(subject: str) -> bytes:
    """Associated data of a stored state: the pseudonym in memory, the key's token in Redis."""
    return b"state:" + subject.encode()


class _StateCodec:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def encode(self, pseudonym: str, state: ConversationState) -> bytes:
        return self._keyring.encrypt(state.to_json().encode(), state_purpose(pseudonym))

    def decode(self, pseudonym: str, blob: bytes) -> ConversationState | None:
        try:
            plain = self._keyring.decrypt(blob, state_purpose(pseudonym))
        except DecryptionError:
            return None  # e.g. encrypted under a key since removed: start the conversation over
        return ConversationState.from_json(plain)


class MemoryConversationStore:
    """The embedded default: state lives in this process and is lost on restart."""

    def __init__(self, keyring: Keyring, ttl_seconds: int) -> None:
        self._codec = _StateCodec(keyring)
        self._ttl = ttl_seconds
        self._states: dict[str, tuple[float, bytes]] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._saves = 0

    async def load(self, pseudonym: str) -> ConversationState | None:
        entry = self._states.get(pseudonym)
        if entry is None:
            return None
        expires_at, blob = entry
        if expires_at <= time.monotonic():
            del self._states[pseudonym]
            return None
        return self._codec.decode(pseudonym, blob)

    async def save(self, pseudonym: str, state: ConversationState) -> None:
        now = time.monotonic()
        self._states[pseudonym] = (now + self._ttl, self._codec.encode(pseudonym, state))
        self._saves += 1
        if self._saves % 1000 == 0:  # sweep now and then so idle drafts do not pile up
            for key in [key for key, (expiry, _) in self._states.items() if expiry <= now]:
                del self._states[key]

    async def delete(self, pseudonym: str) -> None:
        self._states.pop(pseudonym, None)

    @asynccontextmanager
    async def lock(self, pseudonym: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(pseudonym, (asyncio.Lock(), 0))
        self._locks[pseudonym] = (lock, users + 1)
        try:
            try:
                await asyncio.wait_for(lock.acquire(), LOCK_WAIT_SECONDS)
            except TimeoutError:
                raise ConversationBusyError from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[pseudonym]
            if users <= 1:
                del self._locks[pseudonym]
            else:
                self._locks[pseudonym] = (lock, users - 1)

    async def close(self) -> None:
        self._states.clear()


class RedisConversationStore:
    """State shared by every bot process, with idle expiry done by Redis itself."""

    def __init__(
        self,
        redis: Redis,
        keyring: Keyring,
        ttl_seconds: int,
        names: RedisKeyNames,
        *,
        owns_client: bool = True,
    ) -> None:
        self._redis = redis
        self._owns_client = owns_client
        self._codec = _StateCodec(keyring)
        self._ttl = ttl_seconds
        self._names = names

    def _key(self, kind: str, pseudonym: str) -> str:
        return self._names.key(kind, pseudonym)

    async def ping(self) -> None:
        await self._redis.ping()

    async def load(self, pseudonym: str) -> ConversationState | None:
        blob = await self._redis.get(self._key("conv", pseudonym))
        if blob is None:
            return None
        token = self._names.token("conv", pseudonym)
        return self._codec.decode(token, blob if isinstance(blob, bytes) else blob.encode())

    async def save(self, pseudonym: str, state: ConversationState) -> None:
        blob = self._codec.encode(self._names.token("conv", pseudonym), state)
        await self._redis.set(self._key("conv", pseudonym), blob, ex=self._ttl)

    async def delete(self, pseudonym: str) -> None:
        await self._redis.delete(self._key("conv", pseudonym))

    @asynccontextmanager
    async def lock(self, pseudonym: str) -> AsyncIterator[None]:
        lock = self._redis.lock(
            self._key("lock", pseudonym),
            timeout=LOCK_LEASE_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
        )
        if not await lock.acquire():
            raise ConversationBusyError
        try:
            yield
        finally:
            # LockError: the lease ran out while we worked (or Redis restarted and lost it);
            # someone else may hold it now. Redis unreachable: the lease runs out by itself.
            with suppress(LockError, RedisConnectionError, RedisTimeoutError):
                await lock.release()

    async def reencrypt_all(self, keyring: Keyring, *, legacy: bool = False) -> tuple[int, int]:
        """Key rotation: re-encrypt every stored state under the newest key, keeping its TTL
        (``legacy``: format-1 states too, during the one-time upgrade)."""
        changed = unchanged = 0
        async for key, token, blob in self._states():
            if keyring.is_current(blob):
                unchanged += 1
                continue
            purpose = state_purpose(token)
            try:
                plain = keyring.decrypt(blob, purpose, legacy_purpose=purpose if legacy else None)
            except DecryptionError:
                unchanged += 1  # unreadable: that conversation starts over
                continue
            await self._redis.set(key, keyring.encrypt(plain, purpose), keepttl=True, xx=True)
            changed += 1
        return changed, unchanged

    async def count_readable(self, keyring: Keyring) -> tuple[int, int]:
        """How many stored states decrypt under ``keyring``, and how many do not."""
        readable = unreadable = 0
        async for _, token, blob in self._states():
            try:
                keyring.decrypt(blob, state_purpose(token))
                readable += 1
            except DecryptionError:
                unreadable += 1
        return readable, unreadable

    async def _states(self) -> AsyncIterator[tuple[str, str, bytes]]:
        marker = f"{self._names.prefix}:conv:"
        async for name in self._redis.scan_iter(match=marker + "*", count=500):
            key = name.decode() if isinstance(name, bytes) else str(name)
            blob = await self._redis.get(key)
            if isinstance(blob, bytes):
                yield key, key.removeprefix(marker), blob

    async def adopt_legacy_keys(self) -> int:
        """Keys written before keys were named by token held the pseudonym itself
        (``prefix:KIND:<64 hex>``): move drafts and chat histories to their tokens, keeping
        their time to live, and drop the old locks and counters. Returns the keys handled."""
        handled = 0
        for kind in ("conv", "history", "lock", "attempts:status"):
            marker = f"{self._names.prefix}:{kind}:"
            async for name in self._redis.scan_iter(match=marker + "*", count=500):
                key = name.decode() if isinstance(name, bytes) else str(name)
                pseudonym = key.removeprefix(marker)
                if not _LEGACY_PSEUDONYM.fullmatch(pseudonym):
                    continue
                handled += 1
                if kind == "conv":
                    await self._adopt_state(key, pseudonym)
                elif kind == "history":
                    with suppress(ResponseError):  # gone meanwhile
                        await self._redis.rename(key, self._names.key("history", pseudonym))
                else:
                    await self._redis.delete(key)
        return handled

    async def _adopt_state(self, key: str, pseudonym: str) -> None:
        blob, ttl = await self._redis.get(key), await self._redis.pttl(key)
        if isinstance(blob, bytes):
            state = self._codec.decode(pseudonym, blob)  # sealed with the pseudonym then
            if state is not None and ttl > 0:
                new = self._codec.encode(self._names.token("conv", pseudonym), state)
                await self._redis.set(self._key("conv", pseudonym), new, px=ttl, nx=True)
        await self._redis.delete(key)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

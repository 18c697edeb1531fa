"""Conversation state stores: one interface, kept in process memory or in Redis.

Both stores encrypt the state (it holds drafts the worker is typing) and key it by pseudonym, so a
Redis dump shows neither who is talking nor what they said. Both give a per-conversation lock so
two updates from the same worker never race on the state; the Redis lock holds across processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import LockError

from conversations.state import ConversationState
from storage.crypto import DecryptionError, Keyring

# A lock older than this is assumed to belong to a crashed process and expires. A turn (even one
# that downloads and cleans a large photo) takes far less. Waiting longer than the lease means an
# update queued behind a crashed process's lock is handled once the lease runs out, not dropped.
LOCK_LEASE_SECONDS = 20
LOCK_WAIT_SECONDS = 30


class ConversationBusyError(Exception):
    """Another update of the same conversation held the lock for too long."""


class ConversationStore(Protocol):
    async def load(self, pseudonym: str) -> ConversationState | None: ...

    async def save(self, pseudonym: str, state: ConversationState) -> None: ...

    async def delete(self, pseudonym: str) -> None: ...

    def lock(self, pseudonym: str) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


def state_purpose(pseudonym: str) -> bytes:
    return b"state:" + pseudonym.encode()


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
        prefix: str,
        *,
        owns_client: bool = True,
    ) -> None:
        self._redis = redis
        self._owns_client = owns_client
        self._codec = _StateCodec(keyring)
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _key(self, kind: str, pseudonym: str) -> str:
        return f"{self._prefix}:{kind}:{pseudonym}"

    async def ping(self) -> None:
        await self._redis.ping()

    async def load(self, pseudonym: str) -> ConversationState | None:
        blob = await self._redis.get(self._key("conv", pseudonym))
        if blob is None:
            return None
        return self._codec.decode(pseudonym, blob if isinstance(blob, bytes) else blob.encode())

    async def save(self, pseudonym: str, state: ConversationState) -> None:
        blob = self._codec.encode(pseudonym, state)
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
            # LockError: the lease ran out while we worked; someone else may hold it now.
            with suppress(LockError):
                await lock.release()

    async def reencrypt_all(self, keyring: Keyring, *, legacy: bool = False) -> tuple[int, int]:
        """Key rotation: re-encrypt every stored state under the newest key, keeping its TTL
        (``legacy``: format-1 states too, during the one-time upgrade)."""
        changed = unchanged = 0
        async for key, pseudonym, blob in self._states():
            if keyring.is_current(blob):
                unchanged += 1
                continue
            purpose = state_purpose(pseudonym)
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
        async for _, pseudonym, blob in self._states():
            try:
                keyring.decrypt(blob, state_purpose(pseudonym))
                readable += 1
            except DecryptionError:
                unreadable += 1
        return readable, unreadable

    async def _states(self) -> AsyncIterator[tuple[str, str, bytes]]:
        marker = f"{self._prefix}:conv:"
        async for name in self._redis.scan_iter(match=marker + "*", count=500):
            key = name.decode() if isinstance(name, bytes) else str(name)
            blob = await self._redis.get(key)
            if isinstance(blob, bytes):
                yield key, key.removeprefix(marker), blob

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

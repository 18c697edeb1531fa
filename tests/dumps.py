"""Everything the bot stored, as bytes to search for what must never be there: the database
(pg_dump, or the SQLite files) and the test's Redis keys with their values."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Protocol

from redis.asyncio import Redis

from bot.settings import Settings
from tests.conftest import REDIS_URL, Backend


class HasSettings(Protocol):
    @property
    def settings(self) -> Settings: ...


async def database_dump(backend: Backend, bot: HasSettings) -> bytes:
    if backend.uses_postgres:
        dsn = bot.settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
        result = subprocess.run(
            ["pg_dump", "--no-owner", "--dbname", dsn], capture_output=True, check=True
        )
        return result.stdout
    path = Path(bot.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


async def redis_dump(backend: Backend) -> bytes:
    if backend.redis_url is None:
        return b""
    client = Redis.from_url(REDIS_URL)
    try:
        parts = []
        async for key in client.scan_iter(match=f"{backend.redis_prefix}:*"):
            parts += [key, await client.dump(key) or b""]
        return b"\n".join(parts)
    finally:
        await client.aclose()


def leaks(haystack: bytes, needles: list[str]) -> list[str]:
    found = []
    for needle in needles:
        raw = needle.encode()
        if raw in haystack or raw.hex().encode() in haystack:
            found.append(needle)
    return found


def phone_needles(*ids: str) -> list[str]:
    """Each id (a phone number, a WhatsApp user id) as it is, with ``+``, and as its plain
    SHA-256: every form in which issue 12 asks a dump or a log to be searched."""
    needles: list[str] = []
    for value in ids:
        needles += [value, f"+{value}", hashlib.sha256(value.encode()).hexdigest()]
    return needles

"""Looking at a database without changing it, for `wvb doctor`.

``Database`` (``storage/database.py``) creates a missing SQLite file and turns on WAL; the doctor
must create and write nothing, so it looks through an engine of its own: SQLite opened read-only
by URI (and only a file that exists), PostgreSQL with every transaction read-only and a short
connect timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from storage.database import current_revision, head_revision, known_revisions, sqlite_path

#: How long the doctor waits for a database server to answer.
CONNECT_TIMEOUT_SECONDS = 5


def _read_only_sqlite_url(path: Path) -> str:
    # immutable=1 when there is no write-ahead log: nothing, not even the -wal and -shm files
    # that a read-only reader of a WAL database would otherwise leave behind, is created. With a
    # log (a bot is running, or stopped uncleanly), mode=ro reads it too, so nothing is missed.
    wal = path.with_name(path.name + "-wal")
    flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    return f"sqlite+aiosqlite:///file:{quote(str(path))}?{flags}&uri=true"


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: no schema at all
    head: str | None
    known: bool  # whether this version of the code knows ``current``

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class ReadOnlyDatabase:
    """An engine that cannot write, and its sessions."""

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if path is not None:
            self.engine: AsyncEngine = create_async_engine(
                _read_only_sqlite_url(path), poolclass=NullPool, hide_parameters=True
            )
        else:
            self.engine = create_async_engine(
                url,
                poolclass=NullPool,
                hide_parameters=True,
                connect_args={
                    "timeout": CONNECT_TIMEOUT_SECONDS,
                    "command_timeout": CONNECT_TIMEOUT_SECONDS,
                    "server_settings": {"default_transaction_read_only": "on"},
                },
            )
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession)

    async def schema(self) -> SchemaState:
        current = await current_revision(self.engine)
        known = current is None or current in known_revisions()
        return SchemaState(current, head_revision(), known)

    async def dispose(self) -> None:
        await self.engine.dispose()

"""Engine and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg), and schema upgrades."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Imported for its side effect: every audit row added through the ORM is hash-chained at flush.
from storage import audit_chain  # noqa: F401

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (below); the driver's implicit BEGIN would be a deferred one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers work while the bot writes.
    # secure_delete: a deleted row's bytes are overwritten with zeros, not left in free pages
    # for anyone who copies the file (/forget must forget); see ``Database.checkpoint``.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is locked"
    # (SQLITE_BUSY_SNAPSHOT) when another process wrote in between; busy_timeout cannot help.
    # Taking the write lock at BEGIN makes every transaction wait its turn instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_path(url: str) -> Path | None:
    """The absolute path of a SQLite database file (a relative one is in the working
    directory); None for PostgreSQL and for SQLite in memory."""
    if not url.startswith("sqlite"):
        return None
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path).resolve()


def describe(url: str) -> str:
    """The database a URL names, in words an operator can act on, never with the password:
    "the database at /srv/bot/wvb.sqlite3", "the PostgreSQL database wvb on db.example.org"."""
    path = sqlite_path(url)
    if path is not None:
        return f"the database at {path}"
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return f"the SQLite database {parsed.database or 'in memory'}"
    host = parsed.host or "the local socket"
    if parsed.port:
        host = f"{host}:{parsed.port}"
    return f"the PostgreSQL database {parsed.database or parsed.username or '?'} on {host}"


def _create_private_sqlite_file(url: str) -> bool:
    """Create a SQLite database file readable by its owner only (True if it was created here).
    SQLite gives its -wal and -shm files the permissions of the database file, so they are
    private too."""
    path = sqlite_path(url)
    if path is None:
        return False
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def create_engine(url: str) -> AsyncEngine:
    # hide_parameters: a database error's message must never carry row values into a log line.
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
    )


class Database:
    """Owns the engine; hands out sessions and transactions. A SQLite file that does not exist
    yet is created, private (``created`` says so: the caller tells the operator where)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = describe(url)
        self.created = _create_private_sqlite_file(url)
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits together at the end, or not at all."""
        async with self.sessions() as session, session.begin():
            yield session

    async def checkpoint(self) -> None:
        """After deleting what must be forgotten: on SQLite, copy the write-ahead log into the
        database file (where ``secure_delete`` zeroed the rows) and truncate it, so the old
        page versions do not linger in ``-wal``. PostgreSQL: nothing to do here (VACUUM reclaims
        dead rows; see docs/SECURITY.md)."""
        if not self.url.startswith("sqlite"):
            return
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            # The driver's connection, outside SQLAlchemy's transaction: SQLite refuses to
            # checkpoint inside one.
            await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]

    async def upgrade(self) -> None:
        await upgrade_schema(self.engine)

    async def is_up_to_date(self) -> bool:
        return await current_revision(self.engine) == head_revision()

    async def schema_problem(self) -> str | None:
        """Why this code cannot use the schema as it is, naming the database; None if it can."""
        revision = await current_revision(self.engine)
        if revision == head_revision():
            return None
        if revision is None:
            return f"{self.location} has no schema yet: run `wvb db upgrade`"
        if revision not in known_revisions():
            return (
                f"{self.location} was set up by a newer version of the bot (schema {revision}): "
                "run that version"
            )
        return f"{self.location} has an older schema than this version: run `wvb db upgrade`"

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> None:
    """Create or migrate the schema; running it on an up-to-date database does nothing."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    return {script.revision for script in scripts}


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


__all__ = [
    "Database",
    "create_engine",
    "current_revision",
    "describe",
    "sqlite_path",
    "upgrade_schema",
]

"""The audit log can be trusted: it names the real OS account, its rows are hash-chained so a
row changed or removed behind the triggers' back is found by `wvb audit verify`, concurrent
writers do not fork the chain, and key rotation is in it. On both backends."""

from __future__ import annotations

import asyncio
import os
import pwd
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import text

from bot.app import open_app
from services import audit
from services.key_rotation import KeyRotation
from storage.database import Database, upgrade_schema
from tests.bot_driver import run_wvb
from tests.conftest import POSTGRES_ADMIN_DSN, Backend

OS_ACCOUNT = pwd.getpwuid(os.getuid()).pw_name


async def audit_rows(database: Database) -> list[tuple[int, str, str]]:
    async with database.sessions() as session:
        rows = await session.execute(text("SELECT id, actor, action FROM audit_log ORDER BY id"))
        return [(row[0], row[1], row[2]) for row in rows]


async def tamper(database: Database, backend: Backend, sql: str) -> None:
    """What someone with write access to the database can do: go around the triggers."""
    async with database.engine.begin() as connection:
        if backend.uses_postgres:
            await connection.exec_driver_sql("SET session_replication_role = replica")
        else:
            await connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            await connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        await connection.exec_driver_sql(sql)


async def test_the_cli_actor_is_the_os_account_whatever_logname_says(backend: Backend) -> None:
    settings = backend.settings()
    database = Database(settings.database_url)
    await database.upgrade()
    env = backend.environment(settings) | {"LOGNAME": "mallory", "USER": "mallory"}
    listed = await run_wvb(env, "cases", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    try:
        actors = [actor for _, actor, _ in await audit_rows(database)]
    finally:
        await database.dispose()
    assert actors == [f"cli:{OS_ACCOUNT}"]
    assert OS_ACCOUNT != "mallory"


async def test_audit_verify_finds_a_changed_row_and_a_removed_row(backend: Backend) -> None:
    settings = backend.settings()
    env = backend.environment(settings)
    async with open_app(settings, upgrade_schema=True) as app:
        for _ in range(4):
            await app.staff.list_cases("staff:ana")
    database = Database(settings.database_url)
    try:
        intact = await run_wvb(env, "audit", "verify")
        assert intact.returncode == 0, intact.stderr
        assert "4 rows" in intact.stdout

        await tamper(database, backend, "UPDATE audit_log SET actor = 'cli:nobody' WHERE id = 2")
        changed = await run_wvb(env, "audit", "verify")
        assert changed.returncode == 1
        assert "audit row 2 " in changed.stderr
        await tamper(database, backend, "UPDATE audit_log SET actor = 'staff:ana'")
        assert (await run_wvb(env, "audit", "verify")).returncode == 0, "restored: intact again"

        await tamper(database, backend, "DELETE FROM audit_log WHERE id = 3")
        removed = await run_wvb(env, "audit", "verify", "--json")
        assert removed.returncode == 1
        assert "audit row 4 does not follow from row 2" in removed.stderr
        assert '"first_bad_id": 4' in removed.stdout
    finally:
        await database.dispose()


async def test_concurrent_writers_do_not_fork_the_chain(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await asyncio.gather(*(app.staff.list_cases(f"staff:{n}") for n in range(30)))
        report = await audit.verify(app.database)
    assert report.rows == 30
    assert report.intact, report.problem


@asynccontextmanager
async def fresh_database(backend: Backend) -> AsyncIterator[Database]:
    """An empty database, not even migrated (the PostgreSQL one of ``backend`` is at head)."""
    if not backend.uses_postgres:
        database = Database(backend.database_url)
        try:
            yield database
        finally:
            await database.dispose()
        return
    name = f"wvb_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        database = Database(backend.database_url.rsplit("/", 1)[0] + f"/{name}")
        try:
            yield database
        finally:
            await database.dispose()
            await admin.execute(f'DROP DATABASE "{name}"')
    finally:
        await admin.close()


async def test_existing_audit_rows_are_chained_by_the_migration(backend: Backend) -> None:
    async with fresh_database(backend) as database:
        await upgrade_schema(database.engine, "0010")
        async with database.engine.begin() as connection:
            zone = "+00" if backend.uses_postgres else ""
            for n in range(3):
                await connection.exec_driver_sql(
                    "INSERT INTO audit_log (at, actor, action, subject, details) VALUES "
                    f"('2026-11-2{n} 10:00:00.123456{zone}', 'cli:old{n}', 'case.view', "
                    f"'K7M3-9Q2X', '{{\"n\": {n}}}')"
                )
        await database.upgrade()
        report = await audit.verify(database)
        assert (report.rows, report.intact) == (3, True), report.problem
        async with database.transaction() as session:
            audit.record(session, "cli:new", "cases.list")
        assert (await audit.verify(database)).intact


async def test_key_rotation_is_audited(backend: Backend) -> None:
    async with open_app(backend.settings(), upgrade_schema=True) as app:
        await KeyRotation(app.database, app.keyring).run(actor="cli:operator")
        rows = await audit_rows(app.database)
        assert [(actor, action) for _, actor, action in rows] == [
            ("cli:operator", "keys.rotate.start"),
            ("cli:operator", "keys.rotate"),
        ]
        assert (await audit.verify(app.database)).intact


async def as_role(connection: asyncpg.Connection, role: str, statement: str) -> None:
    async with connection.transaction():
        await connection.execute(f"SET LOCAL ROLE {role}")
        await connection.execute(statement)


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_a_runtime_role_granted_as_the_docs_say_can_only_insert_into_the_audit_log(
    backend: Backend,
) -> None:
    """docs/OPERATIONS.md's GRANTs: the bot's role may INSERT and SELECT, never change a row."""
    database = Database(backend.database_url)
    await database.upgrade()
    await database.dispose()
    role = f"wvb_runtime_{uuid.uuid4().hex[:8]}"
    dsn = backend.database_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} NOLOGIN")
        for grant in (  # docs/SECURITY.md, "Operational rules"
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {role}",
        ):
            await admin.execute(grant)
        await as_role(admin, role, "UPDATE workplaces SET active = active")  # other tables: yes
        await as_role(admin, role, "INSERT INTO audit_log (at, actor, action, details) "
                      "VALUES (now(), 'staff:x', 'cases.list', '{}')")  # fmt: skip
        for statement in (
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_role(admin, role, statement)
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()

"""Shared fixtures: every storage-touching test runs on SQLite + memory state and on
PostgreSQL + Redis; every end-to-end test over the fake Bot API also on both Telegram runtimes,
aiogram and python-telegram-bot (``telegram_runtime``); the end-to-end tests of what a worker
does, on WhatsApp too (``messenger``, see tests/messenger_driver.py). The console's browser
tests get headless Chromium from ``browser`` (tests/browser.py).

The real servers are used, never fakes. Under ``CI=true`` a missing PostgreSQL or Redis fails the
run; on a developer machine those parameters are skipped with a message saying what is missing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import hypothesis
import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from redis.asyncio import Redis

from bot.settings import Settings, generate_key_lines, load_settings
from tests.browser import browser, pytest_runtest_makereport  # noqa: F401  (fixture, hook)
from tests.fake_telegram_api import FakeTelegramServer
from tests.fake_whatsapp_api import FakeWhatsAppServer

# Hypothesis keeps no example database, and its caches (.hypothesis/ in the working directory by
# default) go to the temporary directory: a test run writes nothing into the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "wvb-hypothesis")
hypothesis.settings.register_profile("wvb", database=None)
hypothesis.settings.load_profile("wvb")


def postgres_urls(configured: str) -> tuple[str, str]:
    """``WVB_TEST_POSTGRES_DSN`` in either form the README names: a plain DSN
    (``postgresql://postgres@127.0.0.1:5432/test``, what asyncpg takes) or the SQLAlchemy URL
    that ``WVB_DATABASE_URL`` uses (``postgresql+asyncpg://...``). Returns both forms:
    (asyncpg DSN, SQLAlchemy URL)."""
    _, separator, rest = configured.partition("://")
    if not separator:
        raise ValueError(f"WVB_TEST_POSTGRES_DSN: not a URL: {configured!r}")
    return f"postgresql://{rest}", f"postgresql+asyncpg://{rest}"


#: The server and an account that may create databases: each test session creates its own.
POSTGRES_ADMIN_DSN, POSTGRES_ADMIN_URL = postgres_urls(
    os.environ.get("WVB_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
)
REDIS_URL = os.environ.get("WVB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"

BACKENDS = ["sqlite-memory", "postgres-redis"]
#: The Telegram libraries the bot can run on (WVB_TELEGRAM_RUNTIME); end-to-end tests run on each.
TELEGRAM_RUNTIMES = ["aiogram", "ptb"]
#: The channels a worker can be on (the ``messenger`` fixture): each Telegram runtime, WhatsApp.
CHANNELS = [*TELEGRAM_RUNTIMES, "whatsapp"]
#: Pairs of the ``messenger`` fixture and the backend that are not run: python-telegram-bot on
#: PostgreSQL + Redis. The worker suites run on every messenger (the runtimes differ) and on
#: both backends (storage differs), but what python-telegram-bot does is the same whatever the
#: storage, and aiogram and WhatsApp run those suites on PostgreSQL + Redis. About a minute of
#: a test run whose budget is 20 (docs/BENCHMARKS.md, "The test run"). Deselected, not skipped.
NOT_PAIRED = {("ptb", "postgres-redis")}
T = TypeVar("T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        pair = (params.get("messenger"), params.get("backend"))
        (dropped if pair in NOT_PAIRED else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def fresh_keys() -> dict[str, str]:
    lines = dict(line.split("=", 1) for line in generate_key_lines().splitlines())
    return {"secret_key": lines["WVB_SECRET_KEY"], "encryption_keys": lines["WVB_ENCRYPTION_KEYS"]}


async def _postgres_ready() -> str | None:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        return f"PostgreSQL at {POSTGRES_ADMIN_DSN} is not reachable: {error}"
    await connection.close()
    return None


async def _redis_ready() -> str | None:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
    except Exception as error:
        return f"Redis at {REDIS_URL} is not reachable: {error}"
    finally:
        await client.aclose()
    return None


def run_in_fresh_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run session-wide set-up on its own loop: a test's loop may already be running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def services_problem() -> str | None:
    async def check() -> str | None:
        return await _postgres_ready() or await _redis_ready()

    problem = run_in_fresh_loop(check())
    if problem and IN_CI:
        pytest.fail(f"CI=true but {problem}", pytrace=False)
    return problem


@pytest.fixture(scope="session")
def postgres_database(services_problem: str | None) -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session; its URL for SQLAlchemy."""
    if services_problem:
        pytest.skip(services_problem)
    with throwaway_postgres_database("wvb_test") as name:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


@contextmanager
def throwaway_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (its name), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    run_in_fresh_loop(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        run_in_fresh_loop(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "redis_prefix": self.redis_prefix,
            "_env_file": None,
            **fresh_keys(),
        }
        values.update(overrides)
        return load_settings(**values)

    def environment(self, settings: Settings) -> dict[str, str]:
        """The same settings as WVB_ variables, for a `wvb` subprocess."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}
        env["WVB_DATABASE_URL"] = settings.database_url
        env["WVB_TELEGRAM_RUNTIME"] = settings.telegram_runtime
        if settings.redis_url:
            env["WVB_REDIS_URL"] = settings.redis_url
            env["WVB_REDIS_PREFIX"] = settings.redis_prefix
        assert settings.secret_key
        assert settings.encryption_keys
        env["WVB_SECRET_KEY"] = settings.secret_key.get_secret_value()
        env["WVB_ENCRYPTION_KEYS"] = settings.encryption_keys.get_secret_value()
        return env


async def _reset_postgres(url: str) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        names = [f'"{row["tablename"]}"' for row in tables if row["tablename"] != "alembic_version"]
        if names:  # replica: the audit log's trigger refuses TRUNCATE, rightly, except here
            await connection.execute("SET session_replication_role = replica")
            await connection.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def _drop_redis_keys(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegramServer]:
    """A fake Telegram Bot API on 127.0.0.1 (see tests/fake_telegram_api.py)."""
    server = FakeTelegramServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def fake_whatsapp() -> AsyncIterator[FakeWhatsAppServer]:
    """A fake WhatsApp Cloud API on 127.0.0.1 (see tests/fake_whatsapp_api.py)."""
    async with FakeWhatsAppServer() as server:
        yield server


@pytest.fixture(params=TELEGRAM_RUNTIMES)
def telegram_runtime(request: pytest.FixtureRequest) -> str:
    """The Telegram runtime a test's bot runs on (``start_bot(backend, server, runtime)``)."""
    return str(request.param)


@pytest.fixture(params=CHANNELS)
async def messenger(
    request: pytest.FixtureRequest, backend: Backend, fake_telegram: FakeTelegramServer
) -> AsyncIterator[Any]:
    """The channel a test's worker is on, with its fake server(s) and the bot (started by the
    test, ``messenger.start(...)``): a ``tests.messenger_driver.Messenger``. A test only about
    Telegram narrows it with ``@telegram_only``."""
    from tests.messenger_driver import open_messenger

    async with open_messenger(str(request.param), backend, fake_telegram) as opened:
        yield opened


#: For a test about what only Telegram does (deleting messages, protected content, its
#: command menu, webhook or polling): the ``messenger`` fixture on the Telegram runtimes only.
telegram_only = pytest.mark.parametrize("messenger", TELEGRAM_RUNTIMES, indirect=True)


@pytest.fixture
async def redis_prefix(services_problem: str | None) -> AsyncIterator[str]:
    """A key prefix of this test's own on the real Redis, cleaned up afterwards."""
    if services_problem:
        pytest.skip(services_problem)
    prefix = f"wvbtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    await _drop_redis_keys(prefix)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    prefix = f"wvbtest-{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite-memory":
        yield Backend(
            request.param, f"sqlite+aiosqlite:///{tmp_path / 'wvb.sqlite3'}", None, prefix
        )
        return
    url = request.getfixturevalue("postgres_database")
    await _reset_postgres(url)
    try:
        yield Backend(request.param, url, REDIS_URL, prefix)
    finally:
        await _drop_redis_keys(prefix)

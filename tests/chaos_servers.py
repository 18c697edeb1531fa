"""A private PostgreSQL cluster and a private Redis for chaos tests: the tests stop, kill and
restart them, which they must never do to the shared servers other tests (and CI) use.

PostgreSQL refuses to run as root, and CI runs as root: there initdb and pg_ctl run as the
``postgres`` account (``runuser``), in a temporary directory given to that account. A missing
binary fails the test under ``CI=true`` and skips it elsewhere, saying what is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, Backend

STOP_TIMEOUT = 30


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {what}", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, up: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            listening = probe.connect_ex(("127.0.0.1", port)) == 0
        if listening == up:
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} still {'closed' if up else 'open'} after {timeout} s")


class PrivatePostgres:
    """A PostgreSQL cluster of its own on a free port; ``stop`` and ``start`` it at will."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wvb-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_postgres, str(self.bin_dir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed: {done.stdout}{done.stderr}")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.log), "-o", options)  # fmt: skip

    def stop(self) -> None:
        """Stop at once (``fast``: open sessions are cut, as when a server goes away)."""
        self._run("pg_ctl", "stop", "-w", "-t", str(STOP_TIMEOUT), "-m", "fast",
                  "-D", str(self.data))  # fmt: skip

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new database; its SQLAlchemy URL."""
        name = f"wvb_chaos_{uuid.uuid4().hex[:10]}"
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
        return self.dsn(name).replace("postgresql://", "postgresql+asyncpg://")

    def close(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server of its own (no persistence: a restart loses every key, as a crash of an
    unpersisted Redis does)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        self.process.wait(STOP_TIMEOUT)
        self.process = None
        _wait_for_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    bin_dir = Path(found[-1]).parent if found else None
    if bin_dir is None:
        pg_ctl = shutil.which("pg_ctl")
        bin_dir = Path(pg_ctl).parent if pg_ctl else None
    if bin_dir is None or not (bin_dir / "initdb").exists():
        _missing("PostgreSQL's initdb and pg_ctl are not installed")
    assert bin_dir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _missing("running as root without runuser to start PostgreSQL as `postgres`")
    server = PrivatePostgres(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed")
    assert binary is not None
    server = PrivateRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chaos_backend(private_postgres: PrivatePostgres, private_redis: PrivateRedis) -> Backend:
    """PostgreSQL + Redis on the private servers, running (a test before may have left one
    stopped), with a fresh database and key prefix."""
    if not private_postgres.running:
        private_postgres.start()
    if private_redis.process is None:
        private_redis.start()
    return Backend(
        "postgres-redis-private",
        private_postgres.create_database(),
        private_redis.url,
        f"wvbchaos-{uuid.uuid4().hex[:10]}",
    )

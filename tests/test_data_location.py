"""Where the data is, always said (issue 11, point 10).

The embedded default is a SQLite file and a key file in the working directory, so `wvb` run from
another folder would find neither. Only `wvb chat` (the newcomer's first command) and `wvb db
upgrade` create a new database, and they say so with its absolute path; every other command
refuses, naming the path, and creates nothing. A key file generated for a new database is named
too, and never generated beside a database that already holds data. Errors name the database they
opened: the absolute path of a SQLite file, or the host and database of PostgreSQL (never the
password). Real `wvb` subprocesses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import generate_key_lines
from tests.conftest import throwaway_postgres_database
from tests.test_key_canary import FAKE_TOKEN, assert_refused
from tests.test_settings_and_cli import wvb

KEYS = dict(line.split("=", 1) for line in generate_key_lines().splitlines())


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize(
    "command",
    [("cases", "list"), ("cases", "list", "--json"), ("workplaces", "add", "Sunrise"), ("run",)],
)
def test_a_command_in_a_folder_without_the_data_refuses_naming_the_path_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {"WVB_TELEGRAM_TOKEN": FAKE_TOKEN, "WVB_TELEGRAM_API_BASE": "http://127.0.0.1:1"}
    line = assert_refused(wvb(*command, cwd=tmp_path, env=env), "WVB_DATABASE_URL")
    assert str(tmp_path.resolve() / "wvb.sqlite3") in line
    assert "wvb db upgrade" in line
    assert files_in(tmp_path) == [], "neither a database nor keys were made"


def test_chat_in_a_new_folder_says_it_made_a_database_and_keys_and_where(tmp_path: Path) -> None:
    result = wvb("chat", cwd=tmp_path, stdin="1\n")
    assert result.returncode == 0, result.stderr
    database, key_file = tmp_path.resolve() / "wvb.sqlite3", tmp_path.resolve() / ".wvb-keys"
    assert f"new database at {database}" in result.stderr
    assert f"new keys in {key_file}" in result.stderr
    again = wvb("chat", cwd=tmp_path, stdin="1\n")
    assert again.returncode == 0, again.stderr
    assert "new database" not in again.stderr, "said once, when it happens"
    assert "new keys" not in again.stderr


def test_db_upgrade_says_where_it_made_the_database_and_the_next_command_names_its_keys(
    tmp_path: Path,
) -> None:
    database, key_file = tmp_path.resolve() / "wvb.sqlite3", tmp_path.resolve() / ".wvb-keys"
    upgrade = wvb("db", "upgrade", cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"new database at {database}" in upgrade.stderr
    assert "new database" not in wvb("db", "upgrade", cwd=tmp_path).stderr
    listed = wvb("cases", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"
    assert f"new keys in {key_file}" in listed.stderr
    assert files_in(tmp_path) == [".wvb-keys", "wvb.sqlite3"]


def test_a_lost_key_file_is_not_replaced_beside_a_database_that_holds_data(
    tmp_path: Path,
) -> None:
    assert wvb("chat", cwd=tmp_path, stdin="2\n1\n2\n").returncode == 0  # a worker is saved
    key_file = tmp_path.resolve() / ".wvb-keys"
    key_file.unlink()
    line = assert_refused(wvb("cases", "list", cwd=tmp_path), "WVB_SECRET_KEY")
    assert str(key_file) in line
    assert not key_file.exists(), "new keys would never read this database"


def test_an_explicit_sqlite_file_that_is_missing_or_empty_is_named(tmp_path: Path) -> None:
    env = {**KEYS, "WVB_DATABASE_URL": "sqlite+aiosqlite:///data/bot.sqlite3"}  # relative
    (tmp_path / "data").mkdir()
    path = tmp_path.resolve() / "data" / "bot.sqlite3"
    for command in (("cases", "list"), ("chat",)):
        line = assert_refused(wvb(*command, cwd=tmp_path, env=env), "WVB_DATABASE_URL")
        assert f"no database at {path}" in line
        assert not path.exists()
    path.touch(mode=0o600)
    line = assert_refused(wvb("cases", "list", cwd=tmp_path, env=env), "WVB_DATABASE_URL")
    assert f"the database at {path} has no schema yet: run `wvb db upgrade`" in line


@pytest.fixture
def empty_postgres_database(services_problem: str | None) -> Iterator[str]:
    """A PostgreSQL database of this test's own, with no schema; dropped afterwards."""
    if services_problem:
        pytest.skip(services_problem)
    with throwaway_postgres_database("wvb_empty") as name:
        yield name


def test_postgresql_errors_name_host_and_database_never_the_password(
    tmp_path: Path, empty_postgres_database: str
) -> None:
    name = empty_postgres_database
    # Trust authentication ignores the password, so it can be anything here.
    url = f"postgresql+asyncpg://postgres:hunter2secret@127.0.0.1:5432/{name}"
    line = assert_refused(
        wvb("cases", "list", cwd=tmp_path, env={**KEYS, "WVB_DATABASE_URL": url}),
        "WVB_DATABASE_URL",
    )
    assert f"the PostgreSQL database {name} on 127.0.0.1:5432 has no schema yet" in line
    assert "hunter2secret" not in line
    unreachable = "postgresql+asyncpg://postgres:hunter2secret@127.0.0.1:1/elsewhere"
    result = wvb("cases", "list", cwd=tmp_path, env={**KEYS, "WVB_DATABASE_URL": unreachable})
    assert result.returncode == 1
    assert "the PostgreSQL database elsewhere on 127.0.0.1:1" in result.stderr
    assert "hunter2secret" not in result.stderr
    assert files_in(tmp_path) == []

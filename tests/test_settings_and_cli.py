"""The `wvb` command as operators run it: a real subprocess, real exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.settings import (
    DEFAULT_DATABASE_URL,
    SettingsError,
    generate_key_lines,
    load_settings,
    resolve_keys,
)
from tests.conftest import Backend

WVB = str(Path(sys.executable).parent / "wvb")


def wvb(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}
    return subprocess.run(
        [WVB, *args], env={**base, **(env or {})}, cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_keys_generate_prints_env_lines_that_the_settings_accept() -> None:
    result = wvb("keys", "generate")
    assert result.returncode == 0
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"WVB_SECRET_KEY", "WVB_ENCRYPTION_KEYS"}
    settings = load_settings(
        database_url="postgresql+asyncpg://db/x",
        secret_key=lines["WVB_SECRET_KEY"],
        encryption_keys=lines["WVB_ENCRYPTION_KEYS"],
        _env_file=None,
    )
    keys = resolve_keys(settings)
    assert len(keys.secret_key) == 32
    assert len(keys.encryption_keys) == 1
    assert wvb("keys", "generate").stdout != result.stdout, "fresh secrets every time"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WVB_DATABASE_URL", "mysql://nope"),
        ("WVB_REDIS_URL", "http://localhost"),
        ("WVB_TELEGRAM_TOKEN", "not-a-token"),
        ("WVB_TELEGRAM_API_BASE", "ftp://x"),
        ("WVB_QUIET_HOURS", "9pm-7am"),
        ("WVB_WEBHOOK_LISTEN", "nowhere"),
        ("WVB_WEBHOOK_SECRET", "has spaces!"),
        ("WVB_STAFF_CHAT_ID", "abc"),
        ("WVB_SECRET_KEY", "c2hvcnQ"),
        ("WVB_ENCRYPTION_KEYS", "%%%not base64%%%"),
        ("WVB_TELEGRAM_RUNTIME", "telethon"),
    ],
)
def test_bad_setting_gives_one_line_naming_the_variable_and_exit_2(
    variable: str, value: str, tmp_path: Path
) -> None:
    env = {"WVB_DATABASE_URL": "postgresql+asyncpg://127.0.0.1:1/none"}
    env.update(dict(line.split("=", 1) for line in generate_key_lines().splitlines()))
    env[variable] = value
    result = wvb("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    if variable in ("WVB_SECRET_KEY", "WVB_ENCRYPTION_KEYS", "WVB_TELEGRAM_TOKEN"):
        assert value not in result.stderr, "a secret is never echoed"


@pytest.mark.parametrize("runtime", ["aiogram", "ptb"])
def test_either_telegram_runtime_passes_validation(
    runtime: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WVB_TELEGRAM_RUNTIME", runtime)
    assert load_settings(_env_file=None).telegram_runtime == runtime
    result = wvb("db", "upgrade", env={"WVB_TELEGRAM_RUNTIME": runtime}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_production_database_without_keys_is_refused(tmp_path: Path) -> None:
    result = wvb("db", "upgrade", env={"WVB_DATABASE_URL": "postgresql+asyncpg://h/db"},
                 cwd=tmp_path)  # fmt: skip
    # db upgrade needs no keys; running the bot does.
    assert "Traceback" not in result.stderr
    with pytest.raises(SettingsError, match="WVB_SECRET_KEY"):
        resolve_keys(load_settings(database_url="postgresql+asyncpg://h/db", _env_file=None))


def test_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = wvb("db", "upgrade", env={"WVB_DATABASE_URL": "postgresql+asyncpg://127.0.0.1:1/x"},
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "WVB_DATABASE_URL" in result.stderr


def test_embedded_default_generates_its_keys_once_into_a_private_file(tmp_path: Path) -> None:
    settings = load_settings(key_file=tmp_path / ".wvb-keys", _env_file=None)
    assert settings.database_url == DEFAULT_DATABASE_URL
    first = resolve_keys(settings)
    assert (tmp_path / ".wvb-keys").stat().st_mode & 0o777 == 0o600
    assert resolve_keys(settings) == first


def test_db_upgrade_twice_on_both_databases(backend: Backend, tmp_path: Path) -> None:
    env = backend.environment(backend.settings())
    for _ in range(2):
        result = wvb("db", "upgrade", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_run_without_a_channel_says_what_to_set(tmp_path: Path) -> None:
    result = wvb("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "WVB_TELEGRAM_TOKEN" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_every_command_has_help() -> None:
    """Every command and group, found by walking the app (so a new one cannot be forgotten),
    answers --help with a description; the installed entry point answers too."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from cli.main import app

    def walk(command: Any, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, child in getattr(command, "commands", {}).items():  # a group's subcommands
            found += walk(child, [*path, name])
        return found

    root = get_command(app)
    paths = walk(root, [])
    assert ["broadcast", "create"] in paths
    assert ["lessons", "check"] in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage" in result.output
        command: Any = root
        for name in path:
            command = command.commands[name]
        assert (command.help or "").strip(), f"wvb {' '.join(path)} has no help text"
    assert "Usage" in wvb("--help").stdout


def test_chat_on_the_embedded_default_reaches_the_menu_in_thai(tmp_path: Path) -> None:
    """The README's first command, as a newcomer types it: pick Thai, read privacy, see menu."""
    result = wvb("chat", cwd=tmp_path, stdin="2\n1\n2\n")  # Thai, I understand, no messages
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ไทย" in out
    privacy_heading = out.split("ไทย", 1)[1]
    assert "/forget" in privacy_heading
    from locales import translator

    thai = translator("th")
    assert thai.gettext("Your privacy") in out
    assert thai.gettext("Main menu. What would you like to do?") in out
    assert (tmp_path / "wvb.sqlite3").exists()
    assert (tmp_path / ".wvb-keys").exists()

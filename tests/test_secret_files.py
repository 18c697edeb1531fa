"""Files that hold secrets or worker data are private to the account that runs the bot: a
``.env`` or key file others can read is refused, the README's key step makes a private ``.env``,
and the SQLite database (with its -wal and -shm) is created readable by its owner only."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from sqlalchemy import text

from bot.settings import generate_key_lines, load_settings
from storage.database import Database
from tests.test_settings_and_cli import WVB, wvb

README = Path(__file__).resolve().parent.parent / "README.md"


def test_a_dot_env_others_can_read_is_refused_naming_it_and_chmod_600(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(generate_key_lines())
    env_file.chmod(0o644)
    result = wvb("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert ".env" in lines[0]
    assert "chmod 600" in lines[0]
    env_file.chmod(0o600)
    assert wvb("db", "upgrade", cwd=tmp_path).returncode == 0


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    assert wvb("db", "upgrade", cwd=tmp_path).returncode == 0
    assert wvb("cases", "list", "--json", cwd=tmp_path).returncode == 0  # makes .wvb-keys
    key_file = tmp_path / ".wvb-keys"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.chmod(0o640)
    result = wvb("cases", "list", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert ".wvb-keys" in result.stderr
    assert "chmod 600" in result.stderr


def test_the_readme_key_step_makes_a_private_env_the_bot_accepts(tmp_path: Path) -> None:
    step = README.read_text().split("2. Generate the secrets", 1)[1]
    block = re.search(r"```sh\n(.*?)```", step, re.DOTALL)
    assert block is not None
    script = block.group(1).replace("123456:ABC...", "123456:" + "A" * 35)  # a real-looking one
    assert "keys generate" in script
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "wvb").symlink_to(WVB)
    # Run as a shell with the usual umask would: the file must still be private.
    subprocess.run(["bash", "-ec", f"umask 022\n{script}"], cwd=tmp_path, check=True)
    env_file = tmp_path / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    settings = load_settings(_env_file=env_file)
    assert settings.secret_key is not None
    assert settings.telegram_token is not None


async def test_the_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "wvb.sqlite3"
    old_umask = os.umask(0o022)
    try:
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await database.upgrade()
            async with database.transaction() as session:
                await session.execute(text("INSERT INTO workplaces (name, active, created_at) "
                                           "VALUES ('x', true, '2026-01-01')"))  # fmt: skip
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(file.exists() for file in files)
            assert {file.name: file.stat().st_mode & 0o777 for file in files} == {
                file.name: 0o600 for file in files
            }
        finally:
            await database.dispose()
    finally:
        os.umask(old_umask)

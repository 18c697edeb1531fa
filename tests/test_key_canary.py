"""Keys that do not match the data are refused loudly (issue 11, point 9).

The database keeps a key canary (``services/key_canary.py``): a keyed MAC of a constant under
WVB_SECRET_KEY and a constant sealed under WVB_ENCRYPTION_KEYS. Every `wvb` command that opens
the application with other keys exits 2 with one line naming the wrong key and what to do, and
writes nothing; a deliberate rotation (WVB_PREVIOUS_SECRET_KEYS, `wvb keys rotate`) still works
and moves the canary along. Driven through the real `wvb` command, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import select, text

from bot.app import open_app
from bot.settings import Settings
from conversations.ports import ReportDraft
from storage.database import Database
from storage.models import Base, PendingUpgrade
from tests.bot_driver import CommandResult, run_wvb
from tests.conftest import Backend, fresh_keys
from tests.test_ciphertext_upgrade import database_from_before_0011
from tests.test_settings_and_cli import WVB, wvb

TELEGRAM_ID = 4_343_001
#: A token of the right shape; the Bot API base goes nowhere, so `wvb run` could never start.
FAKE_TOKEN = "123456:" + "A" * 35


RUN_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO ")


def draft() -> ReportDraft:
    return ReportDraft(
        key="5b1e0c1e-0000-4000-8000-00000000c0de", language="th", categories=("wages",),
        workplace_id=None, workplace_text=None, agency=None, details=("unpaid for May",),
        occurred="week", affected="me", danger_now=False, confidentiality="confidential",
        receipt_code="ABCD-EFGH-JKMN-PQRS",
    )  # fmt: skip


async def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (and the schema version): what "nothing is written" compares."""
    database = Database(url)
    try:
        async with database.sessions() as session:
            tables = {
                table.name: sorted(
                    (tuple(row) for row in await session.execute(select(table))), key=repr
                )
                for table in Base.metadata.sorted_tables
            }
            version = await session.execute(text("SELECT version_num FROM alembic_version"))
            tables["alembic_version"] = [tuple(row) for row in version]
        return tables
    finally:
        await database.dispose()


def assert_refused(result: CommandResult | subprocess.CompletedProcess[str], wrong: str) -> str:
    """Exit 2, one line, naming ``wrong``; the line is returned for further checks. (`wvb run`
    also logs, at INFO, what it does before: those lines are its log, not the error.)"""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if not RUN_LOG.match(line)]
    assert len(lines) == 1, result.stderr
    assert wrong in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


async def report_a_case(settings: Settings) -> str:
    async with open_app(settings, upgrade_schema=True) as app:
        worker = app.gateway.worker("telegram", TELEGRAM_ID, TELEGRAM_ID)
        await app.profiles.save(worker, "th")
        return (await app.cases.submit(worker, draft())).reference


async def test_every_command_with_a_wrong_key_exits_2_naming_it_and_writes_nothing(
    backend: Backend,
) -> None:
    settings = backend.settings()
    reference = await report_a_case(settings)
    before = await snapshot(settings.database_url)
    other = fresh_keys()
    commands = (
        ("cases", "list", "--json"),
        ("cases", "reply", reference, "--text", "Hello"),
        ("chat",),
        ("run",),
        ("keys", "rotate"),
    )
    for variable, value, advice in (
        ("WVB_SECRET_KEY", other["secret_key"], "WVB_PREVIOUS_SECRET_KEYS"),
        ("WVB_ENCRYPTION_KEYS", other["encryption_keys"], "wvb keys rotate"),
    ):
        env = backend.environment(settings)
        env.update(
            {variable: value, "WVB_TELEGRAM_TOKEN": FAKE_TOKEN,
             "WVB_TELEGRAM_API_BASE": "http://127.0.0.1:1"}
        )  # fmt: skip
        for command in commands:
            line = assert_refused(await run_wvb(env, *command), variable)
            assert advice in line, line
            right = {"WVB_SECRET_KEY", "WVB_ENCRYPTION_KEYS"} - {variable}
            assert not any(f"{name} " in line for name in right), f"only {variable} is wrong"
            assert value not in line, "a key is never echoed"
    both = backend.environment(settings)
    both.update({"WVB_SECRET_KEY": other["secret_key"],
                 "WVB_ENCRYPTION_KEYS": other["encryption_keys"]})  # fmt: skip
    line = assert_refused(await run_wvb(both, "cases", "list"), "WVB_SECRET_KEY")
    assert "WVB_ENCRYPTION_KEYS" in line
    assert await snapshot(settings.database_url) == before, "nothing was written"
    listed = await run_wvb(backend.environment(settings), "cases", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert reference in listed.stdout


async def test_a_deliberate_rotation_still_works_and_moves_the_canary_along(
    backend: Backend,
) -> None:
    settings = backend.settings()
    await report_a_case(settings)
    old, new = backend.environment(settings), fresh_keys()

    def env(**changes: str) -> dict[str, str]:
        return {**old, **{f"WVB_{name.upper()}": value for name, value in changes.items()}}

    # The pseudonym key: the old one in WVB_PREVIOUS_SECRET_KEYS makes the change deliberate.
    rotated = env(secret_key=new["secret_key"], previous_secret_keys=old["WVB_SECRET_KEY"])
    assert (await run_wvb(rotated, "cases", "list")).returncode == 0
    assert (await run_wvb(env(secret_key=new["secret_key"]), "cases", "list")).returncode == 0
    line = assert_refused(await run_wvb(old, "cases", "list"), "WVB_SECRET_KEY")
    assert "WVB_ENCRYPTION_KEYS " not in line, "going back is a change too, and only that key"

    # The encryption keys: the new key first, the old after it, `wvb keys rotate`, then drop it.
    both = f"{new['encryption_keys']},{old['WVB_ENCRYPTION_KEYS']}"
    current = {"secret_key": new["secret_key"]}
    assert (await run_wvb(env(**current, encryption_keys=both), "cases", "list")).returncode == 0
    rotate = await run_wvb(env(**current, encryption_keys=both), "keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    newest = env(**current, encryption_keys=new["encryption_keys"])
    listed = await run_wvb(newest, "cases", "show", "--json", await first_reference(newest))
    assert listed.returncode == 0, listed.stderr
    assert "unpaid for May" in listed.stdout
    oldest = env(**current, encryption_keys=old["WVB_ENCRYPTION_KEYS"])
    assert_refused(await run_wvb(oldest, "cases", "list"), "WVB_ENCRYPTION_KEYS")


async def first_reference(env: dict[str, str]) -> str:
    listed = await run_wvb(env, "cases", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return str(json.loads(listed.stdout)[0]["reference"])


async def test_a_database_without_a_canary_is_checked_by_its_data_before_the_one_time_upgrade(
    backend: Backend,
) -> None:
    """A database made before the canary (here: before migration 0011, so the one-time upgrade
    is pending) opened with other encryption keys is refused before the upgrade runs (it would
    otherwise mark every row as upgraded and leave it unreadable for good); with its own keys it
    is upgraded and gets its canary, which from then on also guards the pseudonym key."""
    settings = backend.settings()
    await database_from_before_0011(settings)
    before = await snapshot(settings.database_url)
    right = backend.environment(settings)
    wrong = {**right, "WVB_ENCRYPTION_KEYS": fresh_keys()["encryption_keys"]}
    line = assert_refused(await run_wvb(wrong, "cases", "list"), "WVB_ENCRYPTION_KEYS")
    assert "WVB_SECRET_KEY " not in line
    assert await snapshot(settings.database_url) == before, "nothing was written"

    listed = await run_wvb(right, "cases", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    database = Database(settings.database_url)
    try:
        async with database.sessions() as session:
            assert await session.scalar(select(PendingUpgrade.name)) is None, "upgraded"
            assert await session.scalar(text("SELECT count(*) FROM key_canary")) == 1
    finally:
        await database.dispose()
    other_secret = {**right, "WVB_SECRET_KEY": fresh_keys()["secret_key"]}
    assert_refused(await run_wvb(other_secret, "cases", "list"), "WVB_SECRET_KEY")


def sqlite_dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return list(connection.iterdump())


def test_the_readme_key_step_in_the_demo_folder_is_refused_and_says_which_keys_work(
    tmp_path: Path,
) -> None:
    """The issue's path: `make chat` in a folder (SQLite + .wvb-keys), then the README's Telegram
    step `wvb keys generate >> .env` there. The new keys would hide every saved case and make
    returning workers strangers: refused, pointing at the key file that matches."""
    chat = wvb("chat", cwd=tmp_path, stdin="2\n1\n2\n")  # Thai, I understand, no messages
    assert chat.returncode == 0, chat.stderr
    subprocess.run(["bash", "-ec", f"(umask 077; {WVB} keys generate >> .env)"],
                   cwd=tmp_path, check=True)  # fmt: skip
    before = sqlite_dump(tmp_path / "wvb.sqlite3")
    for command in (("cases", "list"), ("chat",)):
        line = assert_refused(wvb(*command, cwd=tmp_path, stdin="2\n1\n"), "WVB_SECRET_KEY")
        assert "WVB_ENCRYPTION_KEYS" in line
        assert str(tmp_path.resolve() / ".wvb-keys") in line, "the keys that do match"
    assert sqlite_dump(tmp_path / "wvb.sqlite3") == before, "nothing was written"
    (tmp_path / ".env").unlink()
    assert wvb("cases", "list", cwd=tmp_path).returncode == 0

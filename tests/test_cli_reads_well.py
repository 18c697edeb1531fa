"""`wvb` reads well: help without type noise, Unix usage lines, case views in the words the
worker saw and in local time, a case list one line per case in 80 columns, and the same exit
codes from every command (2: a usage mistake, nothing tried; 1: the action failed)."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from sqlalchemy import delete, select, update
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from cli.main import app
from services.cases import case_purpose
from storage.database import Database
from storage.models import Case, StaffMember, Workplace
from tests.case_factory import app_keyring, insert_case
from tests.conftest import Backend

WVB = str(Path(sys.executable).parent / "wvb")
#: The operator's time zone in these tests: `wvb cases show` prints local time.
OPERATOR_ZONE = "Asia/Bangkok"


def every_command() -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command of `wvb`, as (its words, the click command)."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            yield path, command
            return
        for name, subcommand in subcommands.items():
            yield from walk(subcommand, (*path, name))

    yield from walk(typer.main.get_command(app), ())


def every_group() -> list[tuple[str, ...]]:
    return sorted({path[:-1] for path, _ in every_command()})


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}
    return subprocess.run(
        [WVB, *args], env={**base, **(env or {})}, cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


# -- help ---------------------------------------------------------------------------------------

ARGUMENT_PIECE = re.compile(r"^\[?[A-Z][A-Z0-9_=]*\]?(\.\.\.)?$")


def test_help_shows_flags_bare_and_usage_lines_name_arguments_in_capitals() -> None:
    runner = CliRunner()
    for path in [*every_group(), *(path for path, _ in every_command())]:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        [usage] = [line.strip() for line in result.output.splitlines() if "Usage:" in line]
        assert usage.startswith(" ".join(("Usage: wvb", *path, "[OPTIONS]"))), usage
        pieces = usage.split("[OPTIONS]", 1)[1].split()
        if pieces != ["COMMAND", "[ARGS]..."]:
            assert all(ARGUMENT_PIECE.match(piece) for piece in pieces), (path, usage)


def test_the_installed_command_prints_the_same_plain_help(tmp_path: Path) -> None:
    result = run("cases", "show", "--help", cwd=tmp_path, env={"COLUMNS": "100"})
    assert result.returncode == 0
    assert "Usage: wvb cases show [OPTIONS] REFERENCE" in result.stdout
    assert re.search(r"--json\s+Print one JSON document", result.stdout), result.stdout
    assert "<bool>" not in result.stdout
    assert "{" not in result.stdout


#: Staff commands that are not one request with one answer: a live view, a server.
NOT_ONE_ANSWER = {("broadcast", "watch"), ("broadcast", "relay")}
STAFF_GROUPS = {
    "cases", "workplaces", "contacts", "staff", "broadcast", "subscribers", "reports",
}  # fmt: skip


def test_every_staff_command_accepts_json(tmp_path: Path) -> None:
    """CONTRACT.md: staff commands all accept --json and then print one JSON document."""
    for path, command in every_command():
        if path[0] in STAFF_GROUPS and path not in NOT_ONE_ANSWER:
            flags = {flag for param in command.params for flag in param.opts}
            assert "--json" in flags, path
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0  # the embedded default, created
    assert run("workplaces", "add", "Golden Thread", cwd=tmp_path).returncode == 0
    removed = run("workplaces", "remove", "Golden Thread", "--json", cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout) == {"name": "Golden Thread", "active": False}
    contacts = run("contacts", "set", "--country", "th", "--text", "Call 191.", "--json",
                   cwd=tmp_path)  # fmt: skip
    assert contacts.returncode == 0, contacts.stderr
    assert json.loads(contacts.stdout) == {"country": "TH", "language": "*", "text": "Call 191."}


# -- exit codes ---------------------------------------------------------------------------------

#: A value for each required argument that names nothing that exists.
NONEXISTENT = {
    "reference": "ZZZZ-ZZZZ",
    "name": "Nobody Here",
    "broadcast_id": "999999",
    "tag": "night-shift",
    "status": "investigating",
    "language": "th",  # no WhatsApp template is set for it (and "Nobody Here" names none)
}
#: A well-formed value for each required option.
REQUIRED_OPTION_VALUES = {"--to": "Mai", "--text": "Hello.", "--summary": "Paid.",
                          "--role": "viewer"}  # fmt: skip
#: Commands whose argument names something they create, not something that must exist.
CREATING = {("workplaces", "add"), ("staff", "add")}
#: Mistakes in the command line that the CLI finds itself (click finds the others).
USAGE_MISTAKES = [
    ("cases", "remediate", "ZZZZ-ZZZZ", "--summary", "Paid.", "--summary-in", "th"),
    ("cases", "remediate", "ZZZZ-ZZZZ", "--summary", "Paid.", "--site-sample", "-1"),
    ("broadcast", "create"),
    ("broadcast", "create", "--topic", "pay", "--text-file", "en=news.txt"),
    ("broadcast", "create", "--topic", "pay", "--at", "tomorrow"),
    ("broadcast", "create", "--text-file", "en"),
    ("broadcast", "create", "--text-file", "en=/nonexistent/news.txt"),
    ("lessons", "check", "--language", "xx"),
    ("reports", "summary", "--since", "yesterday"),
]


def _required(command: Any) -> tuple[list[Any], list[Any]]:
    arguments = [p for p in command.params if isinstance(p, TyperArgument) and p.required]
    options = [p for p in command.params if isinstance(p, TyperOption) and p.required]
    return arguments, options


def test_every_command_exits_2_on_a_usage_mistake_and_1_when_its_action_fails(
    tmp_path: Path,
) -> None:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0  # the embedded default, created
    # The first command that opens the app generates the embedded default's keys, saying so on
    # stderr; after it, each failed action below says exactly one line.
    assert run("workplaces", "list", cwd=tmp_path).returncode == 0
    runner = CliRunner()
    nonexistent: list[tuple[str, ...]] = []
    for path, command in every_command():
        arguments, options = _required(command)
        if arguments or options:  # parsing fails before anything runs: in-process is the same
            missing = runner.invoke(app, list(path))
            assert missing.exit_code == 2, (path, missing.output)
        if arguments and path not in CREATING:
            words = [NONEXISTENT[argument.name] for argument in arguments]
            for option in options:
                flag = max(option.opts, key=len)
                words += [flag, REQUIRED_OPTION_VALUES[flag]]
            nonexistent.append((*path, *words))
    assert ("cases", "show", "ZZZZ-ZZZZ") in nonexistent

    # Usage mistakes open nothing, so they can run side by side.
    with ThreadPoolExecutor(max_workers=3) as pool:
        usage = list(pool.map(lambda words: run(*words, cwd=tmp_path), USAGE_MISTAKES))
    for words, result in zip(USAGE_MISTAKES, usage, strict=True):
        assert result.returncode == 2, (words, result.returncode, result.stderr)
        assert result.stdout == "", words
        assert result.stderr.count("\n") == 1, (words, result.stderr)

    for words in nonexistent:
        result = run(*words, cwd=tmp_path)
        assert result.returncode == 1, (words, result.returncode, result.stderr)
        assert result.stdout == "", words
        assert result.stderr.count("\n") == 1, (words, result.stderr)
        assert result.stderr.startswith("error: "), (words, result.stderr)


# -- case views ---------------------------------------------------------------------------------


async def _cases(backend: Backend) -> tuple[dict[str, str], dict[str, str]]:
    """Three cases: one at a listed workplace, one whose worker typed the workplace, one urgent
    about two things; returns the `wvb` environment and reference -> workplace as shown."""
    settings = backend.settings()
    keyring = app_keyring(settings)
    database = Database(settings.database_url)
    try:
        await database.upgrade()
        for reference in ("K7M3-9Q2X", "H4RT-6WQP", "B2CD-3EFG"):
            await insert_case(database, reference.lower() * 7, reference, keyring)
        async with database.transaction() as session:
            listed = Workplace(name="Golden Thread Garments", country="TH")
            session.add(listed)
            await session.flush()
            await session.execute(
                update(Case).where(Case.reference == "K7M3-9Q2X").values(workplace_id=listed.id)
            )
            typed = keyring.encrypt(b"Sunrise Knit", case_purpose("H4RT-6WQP", "workplace"))
            await session.execute(
                update(Case)
                .where(Case.reference == "H4RT-6WQP")
                .values(workplace_other_ciphertext=typed, status="investigating",
                        categories=["wages", "hours"])
            )  # fmt: skip
            await session.execute(
                update(Case)
                .where(Case.reference == "B2CD-3EFG")
                .values(status="awaiting_validation", urgent=True,
                        categories=["discrimination", "violence"], language="th")
            )  # fmt: skip
            assert len((await session.scalars(select(Case))).all()) == 3
    finally:
        await database.dispose()
    env = backend.environment(settings)
    env["TZ"] = OPERATOR_ZONE
    return env, {"K7M3-9Q2X": "Golden Thread", "H4RT-6WQP": '"Sunrise Knit"', "B2CD-3EFG": "-"}


def _local(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(OPERATOR_ZONE))
    return f"{moment:%Y-%m-%d %H:%M} +07:00"


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_case_shows_the_workers_words_and_the_operators_local_time(
    backend: Backend, tmp_path: Path
) -> None:
    env, _ = await _cases(backend)
    shown = run("cases", "show", "H4RT-6WQP", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    document = json.loads(run("cases", "show", "H4RT-6WQP", "--json", cwd=tmp_path, env=env).stdout)
    assert document["status"] == "investigating"  # --json keeps the codes
    # The labels of the worker's own screens: the category and answer buttons, the /status stage.
    for label in ("Wages and pay", "Working hours, overtime and rest", "Being looked into",
                  "In the last 7 days", "A few workers", "Keep it confidential"):  # fmt: skip
        assert label in text, (label, text)
    assert "Sunrise Knit" in text
    for iso in (document["created_at"], document["acknowledge_due_at"],
                document["response_due_at"]):  # fmt: skip
        assert _local(iso) in text, (iso, text)
    assert not re.search(r"\d\d:\d\d:\d\d", text), "minutes are enough: no seconds, no microseconds"
    assert not re.search(r"\d\dZ\b", text), "local time, not UTC"


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_the_case_list_is_one_line_per_case_in_80_columns_with_the_workplace(
    backend: Backend, tmp_path: Path
) -> None:
    env, workplaces = await _cases(backend)
    env["COLUMNS"] = "80"
    listed = run("cases", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines), listed.stdout
    for reference, workplace in workplaces.items():
        [line] = [line for line in lines if reference in line]
        assert workplace in line, (workplace, line)
    rows = [line for line in lines if re.search(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}\b", line)]
    assert len(rows) == 3, "no row wraps onto a second line"
    [urgent] = [line for line in rows if "B2CD-3EFG" in line]
    assert urgent.startswith("! B2CD-3EFG awaiting_validation discrimination +1 th"), urgent
    listed = json.loads(run("cases", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [case["workplace_typed"] for case in listed] == [None, "Sunrise Knit", None]


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_viewer_at_the_command_line_sees_no_cases_and_cannot_promote_themselves(
    backend: Backend, tmp_path: Path
) -> None:
    """A viewer sees reports only (issue 13): their OS account's staff role holds at the command
    line too, refused in one line, and they cannot give themselves another role."""
    env, _ = await _cases(backend)
    account = pwd.getpwuid(os.getuid()).pw_name
    assert run("staff", "add", account, "--role", "viewer", cwd=tmp_path, env=env).returncode == 0
    for words in (("cases", "list"), ("cases", "list", "--json")):
        listed = run(*words, cwd=tmp_path, env=env)
        assert listed.returncode == 1
        assert listed.stdout == ""
        assert listed.stderr.strip().splitlines() == [
            "error: your staff role (viewer) cannot see cases; an admin or a case handler can"
        ]
    promoted = run("staff", "add", account, "--role", "case_handler", cwd=tmp_path, env=env)
    assert promoted.returncode == 1, "a viewer cannot make themselves a case handler"
    database = Database(backend.database_url)  # the operator, with the account gone, can
    try:
        async with database.transaction() as session:
            await session.execute(delete(StaffMember).where(StaffMember.name == account))
    finally:
        await database.dispose()
    added = run("staff", "add", account, "--role", "case_handler", cwd=tmp_path, env=env)
    assert added.returncode == 0, added.stderr
    listed = run("cases", "list", cwd=tmp_path, env=env)
    assert "Sunrise Knit" in listed.stdout
    assert "Golden Thread" in listed.stdout

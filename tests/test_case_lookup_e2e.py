"""Staff name a case the way people read a reference aloud and type it: in lower case, with a
space for the dash. Every `wvb` command that takes a reference accepts that form, through the
real command on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import json

import pytest

from storage.database import Database
from tests.bot_driver import run_wvb
from tests.case_factory import app_keyring, insert_case
from tests.conftest import Backend

REFERENCE = "K7M3-9Q2X"
TYPED = "k7m3 9q2x"


@pytest.fixture
async def env(backend: Backend) -> dict[str, str]:
    """The `wvb` environment of a database holding one case, ``REFERENCE``, with a reporter."""
    settings = backend.settings()
    database = Database(settings.database_url)
    try:
        await database.upgrade()
        await insert_case(database, "r" * 64, REFERENCE, app_keyring(settings))
    finally:
        await database.dispose()
    return backend.environment(settings)


async def test_subscribers_tag_accepts_the_reference_in_lower_case_with_a_space(
    env: dict[str, str],
) -> None:
    tagged = await run_wvb(env, "subscribers", "tag", TYPED, "night")
    assert tagged.returncode == 0, tagged.stderr
    tags = await run_wvb(env, "subscribers", "tags", "--json")
    assert json.loads(tags.stdout) == {"night": 1}
    untagged = await run_wvb(env, "subscribers", "tag", TYPED, "night", "--remove")
    assert untagged.returncode == 0, untagged.stderr
    assert json.loads((await run_wvb(env, "subscribers", "tags", "--json")).stdout) == {}


async def test_cases_commands_accept_the_reference_in_lower_case_with_a_space(
    env: dict[str, str],
) -> None:
    noted = await run_wvb(env, "cases", "note", TYPED, "--text", "Called the agency.", "--json")
    assert noted.returncode == 0, noted.stderr
    shown = await run_wvb(env, "cases", "show", TYPED, "--json")
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["reference"] == REFERENCE
    assert [event["note"] for event in case["events"] if event["action"] == "note"] == [
        "Called the agency."
    ]


async def test_a_reference_that_names_no_case_is_one_clear_line(env: dict[str, str]) -> None:
    for command in (
        ["cases", "show", "ZZZZ 0000"],
        ["cases", "note", "ZZZZ 0000", "--text", "x"],
        ["subscribers", "tag", "ZZZZ 0000", "night"],
    ):
        result = await run_wvb(env, *command)
        assert result.returncode == 1, command
        assert result.stderr.count("\n") == 1, result.stderr
        assert "no case" in result.stderr, result.stderr
        assert "ZZZZ 0000" in result.stderr

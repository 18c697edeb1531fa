"""The README's instructions work as written: the test-database variable in both URL forms, the
demo reset, and the go-live steps in their order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_urls

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
WVB = str(Path(sys.executable).parent / "wvb")
FENCED_SHELL = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def section(heading: str) -> str:
    """The README's text under ``heading`` up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n", README, re.MULTILINE)
    assert match, f"README has no section {heading!r}"
    level = len(match.group(1))
    rest = README[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def shell_lines(text: str) -> list[str]:
    """The commands of the fenced ``sh`` blocks, without comments."""
    return [
        line.split(" #")[0].strip()
        for block in FENCED_SHELL.findall(text)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def in_folder(folder: Path, command: str) -> subprocess.CompletedProcess[str]:
    """A README line run by the shell, in ``folder``, with the installed `wvb` as ``.venv/bin/wvb``
    and no WVB_ settings (the embedded default)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}
    command = command.replace(".venv/bin/wvb", WVB)
    return subprocess.run(
        ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "configured",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    ],
)
def test_the_test_database_variable_takes_both_url_forms(configured: str) -> None:
    assert postgres_urls(configured) == (
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    assert configured in section("Two commands"), "the README names both forms"


def test_the_postgresql_tests_run_with_the_sqlalchemy_form_of_the_variable(
    services_problem: str | None,
) -> None:
    if services_problem:
        pytest.skip(services_problem)
    from tests.conftest import POSTGRES_ADMIN_DSN

    sqlalchemy_form = POSTGRES_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    env = {**os.environ, "WVB_TEST_POSTGRES_DSN": sqlalchemy_form}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q",
         "tests/test_staff_views.py::test_case_views_print_the_same_keys_as_json[postgres-redis]"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout, result.stdout[-3000:]


def test_the_prerequisites_name_python3_venv() -> None:
    prerequisites = section("Two commands").split("```", 1)[0]
    assert "python3-venv" in prerequisites
    assert "apt" in prerequisites


def test_resetting_the_demo_as_the_readme_says_starts_from_nothing(tmp_path: Path) -> None:
    assert in_folder(tmp_path, ".venv/bin/wvb db upgrade").returncode == 0
    assert in_folder(tmp_path, ".venv/bin/wvb workplaces add 'Golden Thread'").returncode == 0
    keys = (tmp_path / ".wvb-keys").read_text()
    reset = shell_lines(section("Reset the demo"))
    assert reset, "the README gives the commands"
    for line in reset:
        result = in_folder(tmp_path, line)
        assert result.returncode == 0, (line, result.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == []
    assert in_folder(tmp_path, ".venv/bin/wvb db upgrade").returncode == 0  # a new demo
    listed = in_folder(tmp_path, ".venv/bin/wvb workplaces list --json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert (tmp_path / ".wvb-keys").read_text() != keys, "new keys for the new demo"


def test_the_go_live_steps_come_in_order_and_their_commands_work(tmp_path: Path) -> None:
    steps = section("Going live")
    order = ["WVB_STAFF_CHAT_ID=", "wvb contacts set", "wvb workplaces add", "bin/wvb doctor",
             "bin/wvb run"]  # fmt: skip
    positions = [steps.find(marker) for marker in order]
    assert -1 not in positions, dict(zip(order, positions, strict=True))
    assert positions == sorted(positions), dict(zip(order, positions, strict=True))
    assert "wvb outbox list" in steps

    # The configuration commands, run as written on a fresh embedded default.
    assert in_folder(tmp_path, ".venv/bin/wvb db upgrade").returncode == 0
    configuring = [
        line for line in shell_lines(steps)
        if re.match(r"\.venv/bin/wvb (contacts set|workplaces add|staff add)\b", line)
    ]  # fmt: skip
    assert len(configuring) >= 3, configuring
    for line in configuring:
        result = in_folder(tmp_path, line)
        assert result.returncode == 0, (line, result.stderr)
    contacts = json.loads(in_folder(tmp_path, ".venv/bin/wvb contacts list --json").stdout)
    workplaces = json.loads(in_folder(tmp_path, ".venv/bin/wvb workplaces list --json").stdout)
    assert {workplace["country"] for workplace in workplaces} <= {c["country"] for c in contacts}

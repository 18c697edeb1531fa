"""The README's instructions work as written: the test-database variable in both URL forms, the
demo reset, the go-live steps in their order, every setting in the settings table with its real
default, and the WhatsApp steps (settings lines, proxy address, template wording per language)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pywa.types.templates import TemplateLanguage

from bot.channels.whatsapp.webhook import WEBHOOK_PATH
from bot.settings import Settings, load_settings
from locales import LANGUAGES
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


def table_rows(text: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows in ``text`` (header and rule left out)."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def test_every_setting_is_in_the_settings_table_with_its_default() -> None:
    rows = table_rows(section("Settings"))
    documented = {name for row in rows for name in re.findall(r"`(WVB_[A-Z_]+)`", row[0])}
    settings = {f"WVB_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings the README does not explain"
    assert sorted(documented - settings) == [], "settings the README names that do not exist"

    for row in rows:
        names = re.findall(r"`(WVB_[A-Z_]+)`", row[0])
        if len(names) != 1:
            continue  # several variables share one row and one description of their defaults
        default = Settings.model_fields[names[0].removeprefix("WVB_").lower()].default
        shown = row[-1]
        if default is None or default == "":
            assert shown.startswith(("unset", "empty")), (names[0], shown)
        else:
            value = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"`{value}`" in shown, (names[0], default, shown)


def test_the_whatsapp_settings_lines_make_a_configuration_that_can_run(tmp_path: Path) -> None:
    lines = [
        line for line in shell_lines(section("Connecting WhatsApp"))
        if line.startswith("echo") and line.endswith(">> .env")
    ]  # fmt: skip
    assert len(lines) == 4, lines
    for line in lines:
        result = in_folder(tmp_path, line)
        assert result.returncode == 0, (line, result.stderr)
    (tmp_path / ".env").chmod(0o600)

    settings = load_settings(_env_file=tmp_path / ".env")

    assert settings.whatsapp_enabled
    assert settings.whatsapp_problem() is None
    assert settings.whatsapp_verify_token is not None
    assert len(settings.whatsapp_verify_token.get_secret_value()) == 64, "a random one is made"


def test_the_proxy_snippets_forward_the_webhook_path_to_the_default_listen_address() -> None:
    text = section("Connecting WhatsApp")
    listen = Settings.model_fields["whatsapp_listen"].default
    assert f"location = {WEBHOOK_PATH} {{" in text
    assert f"proxy_pass http://{listen};" in text
    assert f"handle {WEBHOOK_PATH} {{" in text
    assert f"reverse_proxy {listen}" in text
    assert f"https://YOUR-HOST{WEBHOOK_PATH}" in text


def test_the_neutral_template_has_wording_for_every_shipped_language() -> None:
    text = section("The neutral templates")
    rows = {row[0].split()[0].strip("`"): row for row in table_rows(text)}
    assert sorted(rows) == sorted(LANGUAGES), "one row per language in locales/"
    meta_codes = {language.value for language in TemplateLanguage}
    for language, (_, code, body, button) in rows.items():
        # Meta's list as pywa mirrors it: Burmese, Khmer and Nepali are not on it (yet).
        assert code == (f"`{language}`" if language in meta_codes else "none"), language
        assert body, language
        assert "{{" not in body, "no variables: nothing of a case can reach a template"
        assert 0 < len(button) <= 20, (language, button)  # a quick-reply button's text
    assert rows["en"][2:] == ["You have a new message. Reply to see it.", "Show message"]
    assert "machine translation, made without a native speaker" in text
    assert "wvb whatsapp templates set LANG NAME [--template-language CODE]" in text

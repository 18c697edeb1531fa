"""`wvb staff password`, `wvb staff totp`, `wvb staff invite` and the enrolment link of `wvb
staff add`, through the real `wvb` command on SQLite and PostgreSQL: what they print is what
logs in (CONTRACT.md, "Staff console")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from bot.app import open_app
from bot.settings import Settings
from services.staff_login import LoginRefused
from storage.models import AuditEntry
from tests.bot_driver import CommandResult, run_wvb
from tests.conftest import Backend

PASSWORD = "correct horse battery staple"
ADDRESS = "203.0.113.7"


@dataclass
class Wvb:
    settings: Settings
    env: dict[str, str]

    async def __call__(self, *args: str, stdin: str | None = None) -> CommandResult:
        return await run_wvb(self.env, *args, stdin=stdin)


@pytest.fixture
async def wvb(backend: Backend) -> Wvb:
    """`wvb` on a database that has its schema and one case handler, Mai."""
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await app.staff_accounts.add("cli:test", "Mai", "case_handler", None)
    return Wvb(settings, backend.environment(settings))


def one_error_line(result: CommandResult) -> str:
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


async def logs_in(settings: Settings, name: str, password: str, secret: str) -> str:
    """Log in as the console would; the member's name, or a refusal."""
    async with open_app(settings) as app:
        result = await app.staff_login.log_in(name, password, pyotp.TOTP(secret).now(), ADDRESS)
        return result.staff.name


async def test_totp_json_prints_the_secret_and_uri_and_the_secret_logs_in(wvb: Wvb) -> None:
    assert (await wvb("staff", "password", "Mai", stdin=f"{PASSWORD}\n")).returncode == 0

    enrolled = await wvb("staff", "totp", "Mai", "--json")

    assert enrolled.returncode == 0, enrolled.stderr
    document = json.loads(enrolled.stdout)
    assert set(document) == {"secret", "uri"}
    uri = urlsplit(document["uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = parse_qs(uri.query)
    assert query["secret"] == [document["secret"]]
    assert query["issuer"] == ["Worker Voice"]
    assert query.get("algorithm", ["SHA1"]) == ["SHA1"]
    assert query.get("digits", ["6"]) == ["6"]
    assert query.get("period", ["30"]) == ["30"]
    assert await logs_in(wvb.settings, "Mai", PASSWORD, document["secret"]) == "Mai"


async def test_totp_again_replaces_the_secret_and_without_json_shows_a_qr_code(wvb: Wvb) -> None:
    assert (await wvb("staff", "password", "Mai", stdin=PASSWORD)).returncode == 0
    first = json.loads((await wvb("staff", "totp", "Mai", "--json")).stdout)["secret"]

    shown = await wvb("staff", "totp", "Mai")

    assert shown.returncode == 0, shown.stderr
    [secret] = [line.split(": ", 1)[1] for line in shown.stdout.splitlines()
                if line.startswith("secret: ")]  # fmt: skip
    assert f"otpauth://totp/Worker%20Voice:Mai?secret={secret}" in shown.stdout
    assert "█" in shown.stdout or "▀" in shown.stdout, "a QR code drawn in the terminal"
    assert await logs_in(wvb.settings, "Mai", PASSWORD, secret) == "Mai"
    with pytest.raises(LoginRefused):
        await logs_in(wvb.settings, "Mai", PASSWORD, first)


async def test_password_reads_one_line_and_refuses_none_or_a_weak_one(wvb: Wvb) -> None:
    empty = await wvb("staff", "password", "Mai", stdin="")
    assert empty.returncode == 2
    assert "standard input" in one_error_line(empty)
    short = await wvb("staff", "password", "Mai", stdin="too short\n")
    assert short.returncode == 1
    assert "at least 12 characters" in one_error_line(short)
    unknown = await wvb("staff", "password", "Nobody", stdin=f"{PASSWORD}\n")
    assert unknown.returncode == 1
    assert "Nobody" in one_error_line(unknown)

    first_line_only = await wvb("staff", "password", "Mai", "--json",
                                stdin=f"{PASSWORD}\nsomething else\n")  # fmt: skip

    assert first_line_only.returncode == 0, first_line_only.stderr
    assert json.loads(first_line_only.stdout) == {"name": "Mai", "password_set": True}
    secret = json.loads((await wvb("staff", "totp", "Mai", "--json")).stdout)["secret"]
    assert await logs_in(wvb.settings, "Mai", PASSWORD, secret) == "Mai"
    async with open_app(wvb.settings) as app, app.database.sessions() as session:
        audited = list(await session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(["staff.password", "staff.totp"]))
        ))  # fmt: skip
    assert [row.action for row in audited] == ["staff.password", "staff.totp"]
    assert all(row.actor.startswith("cli:") for row in audited)


async def test_staff_add_prints_an_enrolment_link_that_enrols(wvb: Wvb) -> None:
    added = await wvb("staff", "add", "Nok", "--role", "case_handler", "--assigned-only", "--json")

    assert added.returncode == 0, added.stderr
    document = json.loads(added.stdout)
    assert {key: document[key] for key in ("name", "role", "assigned_only")} == {
        "name": "Nok", "role": "case_handler", "assigned_only": True,
    }  # fmt: skip
    prefix = "http://127.0.0.1:8081/enrol/"
    assert document["enrol_url"].startswith(prefix)
    token = document["enrol_url"].removeprefix(prefix)
    async with open_app(wvb.settings) as app:
        offered = await app.staff_login.enrolment(token)
        code = pyotp.TOTP(offered.secret).now()
        staff = await app.staff_login.finish_enrolment(token, PASSWORD, PASSWORD, code)
    assert (staff.name, staff.role, staff.assigned_only) == ("Nok", "case_handler", True)

    updated = await wvb("staff", "add", "Nok", "--role", "viewer", "--json")
    assert json.loads(updated.stdout)["enrol_url"] is None, "enrolled: no new link by the way"
    wrong = await wvb("staff", "add", "Vee", "--role", "viewer", "--assigned-only")
    assert wrong.returncode == 1
    assert "--assigned-only" in one_error_line(wrong)


async def test_invite_makes_a_new_link_under_the_console_url(wvb: Wvb) -> None:
    env = {**wvb.env, "WVB_CONSOLE_URL": "https://console.example.org/"}
    first = await run_wvb(env, "staff", "invite", "Mai", "--json")
    assert first.returncode == 0, first.stderr
    second = await run_wvb(env, "staff", "invite", "Mai")
    assert second.returncode == 0, second.stderr

    document = json.loads(first.stdout)
    assert set(document) == {"name", "enrol_url"}
    prefix = "https://console.example.org/enrol/"
    assert document["enrol_url"].startswith(prefix)
    [link] = [line for line in second.stdout.splitlines() if line.startswith(prefix)]
    async with open_app(wvb.settings) as app:
        assert (await app.staff_login.enrolment(link.removeprefix(prefix))).name == "Mai"
        with pytest.raises(Exception, match="not valid"):
            await app.staff_login.enrolment(document["enrol_url"].removeprefix(prefix))


async def test_every_login_command_explains_itself(wvb: Wvb) -> None:
    for command in ("password", "totp", "invite", "add"):
        shown = await wvb("staff", command, "--help")
        assert shown.returncode == 0
        assert f"Usage: wvb staff {command} [OPTIONS] NAME" in shown.stdout
        assert "--json" in shown.stdout

"""`wvb doctor`, the go-live checklist, as an operator runs it: a real subprocess against a real
database, Redis and the fake Telegram Bot API, on a fresh folder and on a complete set-up.

The doctor only looks: whatever it finds, it creates no database, no key file and no row."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app import open_app
from bot.channels.whatsapp.api import GRAPH_API_VERSION
from bot.doctor import whatsapp_checks
from bot.settings import Settings, generate_key_lines, load_settings
from locales import LANGUAGES
from services.cases import ANY
from services.doctor import (
    Status,
    StoredConfiguration,
    contacts_check,
    quiet_hours_check,
    read_configuration,
    time_zones_check,
    whatsapp_templates_check,
)
from services.views import WorkplaceView
from storage.database import Database, upgrade_schema
from storage.models import OutboxMessage, WhatsAppTemplate, utc_now
from tests.bot_driver import WVB, CommandResult
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer
from tests.fake_whatsapp_api import (
    DEFAULT_APP_SECRET,
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    FakeWhatsAppServer,
)
from tests.test_ciphertext_upgrade import downgrade_schema

STAFF_CHAT = -100_777_001


def no_wvb_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}


async def run_wvb(env: dict[str, str], *args: str, cwd: Path | None = None) -> CommandResult:
    """`wvb` without blocking the event loop the fake Bot API serves on."""
    process = await asyncio.create_subprocess_exec(
        WVB, *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return CommandResult(process.returncode, stdout.decode(), stderr.decode())


async def doctor(env: dict[str, str], *args: str, cwd: Path | None = None) -> CommandResult:
    return await run_wvb(env, "doctor", *args, cwd=cwd)


def lines_by_check(output: str) -> dict[str, str]:
    """``{check name: its line}`` of the text checklist (the name is the line's second word)."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("OK", "WARN", "FAIL"):
            found[words[1]] = line
    return found


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in document["checks"]}


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``folder`` with its size, modification time and mode."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns,
                                         path.stat().st_mode)
        for path in folder.rglob("*")
    }  # fmt: skip


async def test_on_a_fresh_folder_the_doctor_lists_what_is_missing_and_creates_nothing(
    tmp_path: Path,
) -> None:
    result = await doctor(no_wvb_environment(), cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = lines_by_check(result.stdout)
    for missing in ("keys", "database", "channel", "staff_chat", "workplaces", "contacts"):
        assert lines[missing].startswith("FAIL"), result.stdout
    assert f"no database at {tmp_path / 'wvb.sqlite3'}" in lines["database"]
    assert "wvb db upgrade" in lines["database"], "each failure says how to fix it"
    assert "WVB_TELEGRAM_TOKEN" in lines["channel"]
    assert "WVB_STAFF_CHAT_ID" in lines["staff_chat"]
    assert "wvb workplaces add" in lines["workplaces"]
    assert lines["redis"].startswith("WARN")
    assert "restart" in lines["redis"], "says what in-memory state costs"
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "the doctor created no database and no key file"

    as_json = await doctor(no_wvb_environment(), "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["ready"] is False
    assert statuses(document)["database"] == "FAIL"
    for check in document["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("OK", "WARN", "FAIL")
    assert list(tmp_path.iterdir()) == []


async def complete_configuration(settings: Settings) -> None:
    """What an operator sets up before go-live: the schema, a workplace with its country and
    time zone, emergency contacts for that country and for workers who name no workplace."""
    async with open_app(settings, upgrade_schema=True) as app:
        await app.staff.add_workplace("cli:test", "Riverside Garments", "TH", "Asia/Bangkok")
        await app.staff.set_contacts("cli:test", "TH", "*", "Labour hotline 1546")
        await app.staff.set_contacts("cli:test", "*", "*", "Call the NGO: +66 2 000 0000")


def telegram_environment(
    backend: Backend, settings: Settings, server: FakeTelegramServer
) -> dict[str, str]:
    return {
        **backend.environment(settings),
        "WVB_TELEGRAM_TOKEN": server.token,
        "WVB_TELEGRAM_API_BASE": server.base_url,
        "WVB_STAFF_CHAT_ID": str(STAFF_CHAT),
    }


async def test_a_complete_configuration_passes_and_the_token_is_never_printed(
    backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    settings = backend.settings()
    await complete_configuration(settings)
    fake_telegram.register_chat({"id": STAFF_CHAT, "type": "supergroup", "title": "Staff"})
    env = telegram_environment(backend, settings, fake_telegram)

    result = await doctor(env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_by_check(result.stdout)
    assert not [line for line in lines.values() if line.startswith("FAIL")], result.stdout
    assert lines["channel"].startswith("OK")
    assert lines["staff_chat"].startswith("OK")
    assert lines["schema"].startswith("OK")
    assert lines["redis"].startswith("OK" if backend.redis_url else "WARN")
    called = [request.method for request in fake_telegram.requests]
    assert "getMe" in called, "the channel is checked through the configured API base"
    assert "getChat" in called, "the staff chat is checked to be private"
    assert "sendMessage" not in called, "the doctor sends nothing"
    secret = fake_telegram.token.split(":")[1]
    assert secret not in result.stdout + result.stderr

    as_json = await doctor(env, "--json")
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)
    assert document["ready"] is True
    assert "FAIL" not in statuses(document).values()
    assert secret not in as_json.stdout


async def test_a_public_staff_chat_or_a_country_without_contacts_fails(
    backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await app.staff.add_workplace("cli:test", "Riverside Garments", "TH", "Asia/Bangkok")
        await app.staff.add_workplace("cli:test", "Mandalay Shoes", "MM", "Asia/Yangon")
        await app.staff.set_contacts("cli:test", "TH", "*", "Labour hotline 1546")
    fake_telegram.register_chat(
        {"id": STAFF_CHAT, "type": "supergroup", "title": "Staff", "username": "staff_public"}
    )

    result = await doctor(telegram_environment(backend, settings, fake_telegram))

    assert result.returncode == 1
    lines = lines_by_check(result.stdout)
    assert lines["staff_chat"].startswith("FAIL")
    assert "public" in lines["staff_chat"]
    assert lines["contacts"].startswith("FAIL")
    assert "MM" in lines["contacts"]
    assert "wvb contacts set --country MM" in lines["contacts"]


async def test_a_schema_behind_this_version_fails_and_is_left_as_it_was(
    backend: Backend,
) -> None:
    settings = backend.settings()
    database = Database(settings.database_url)
    try:
        await upgrade_schema(database.engine, "0012_retention")
        await downgrade_schema(database, "0012_retention")  # a PostgreSQL one is kept at head

        result = await doctor(backend.environment(settings))

        assert result.returncode == 1
        lines = lines_by_check(result.stdout)
        assert lines["database"].startswith("OK")
        assert lines["schema"].startswith("FAIL")
        assert "0012_retention" in lines["schema"]
        assert "wvb db upgrade" in lines["schema"]
        assert not await database.is_up_to_date(), "the doctor migrated nothing"
    finally:
        await database.upgrade()
        await database.dispose()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_services_and_a_rejected_token_fail_naming_the_setting(
    tmp_path: Path, fake_telegram: FakeTelegramServer
) -> None:
    keys = dict(line.split("=", 1) for line in generate_key_lines().splitlines())
    base = {
        **no_wvb_environment(),
        **keys,
        "WVB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        "WVB_STAFF_CHAT_ID": str(STAFF_CHAT),
    }
    port = closed_port()
    unreachable = await doctor({
        **base,
        "WVB_TELEGRAM_TOKEN": fake_telegram.token,
        "WVB_TELEGRAM_API_BASE": f"http://127.0.0.1:{port}",
        "WVB_REDIS_URL": f"redis://127.0.0.1:{port}/0",
    })  # fmt: skip
    lines = lines_by_check(unreachable.stdout)
    assert unreachable.returncode == 1
    assert lines["channel"].startswith("FAIL")
    assert "WVB_TELEGRAM_API_BASE" in lines["channel"]
    assert lines["redis"].startswith("FAIL")
    assert "WVB_REDIS_URL" in lines["redis"]

    wrong_token = "123456:WRONG-TOKEN-abcdefghijklmnopqrstuvwxyz"
    rejected = await doctor({
        **base,
        "WVB_TELEGRAM_TOKEN": wrong_token,
        "WVB_TELEGRAM_API_BASE": fake_telegram.base_url,
    })  # fmt: skip
    lines = lines_by_check(rejected.stdout)
    assert rejected.returncode == 1
    assert lines["channel"].startswith("FAIL")
    assert "WVB_TELEGRAM_TOKEN" in lines["channel"]
    assert "WRONG-TOKEN" not in rejected.stdout + rejected.stderr
    assert not (tmp_path / "bot.sqlite3").exists(), "no database is created"


async def test_keys_others_can_read_and_a_webhook_without_secret_are_reported(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / ".wvb-keys"
    key_file.write_text(generate_key_lines())
    key_file.chmod(0o644)
    env = {**no_wvb_environment(), "WVB_WEBHOOK_URL": "https://bot.example.org/hook"}

    result = await doctor(env, cwd=tmp_path)

    lines = lines_by_check(result.stdout)
    assert result.returncode == 1
    assert lines["keys"].startswith("FAIL")
    assert f"chmod 600 {key_file.name}" in lines["keys"]
    assert lines["webhook"].startswith("WARN")
    assert "WVB_WEBHOOK_SECRET" in lines["webhook"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o644, "the doctor changes nothing itself"


async def test_the_doctor_writes_nothing_to_an_existing_embedded_database(tmp_path: Path) -> None:
    env = no_wvb_environment()
    upgraded = await run_wvb(env, "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    added = await run_wvb(env, "workplaces", "add", "Riverside", "--country", "TH", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    before = snapshot(tmp_path)

    result = await doctor(env, cwd=tmp_path)

    lines = lines_by_check(result.stdout)
    assert lines["database"].startswith("OK"), result.stdout
    assert lines["workplaces"].startswith("OK")
    assert lines["time_zones"].startswith("WARN"), "Riverside has no time zone"
    assert "Riverside" in lines["time_zones"]
    assert snapshot(tmp_path) == before, "no file was created or changed"


def workplace(name: str, country: str | None, zone: str | None = "Asia/Bangkok") -> WorkplaceView:
    return WorkplaceView(0, name, country, zone)


def test_contacts_for_any_country_are_a_fallback_not_a_country_s_own() -> None:
    config = StoredConfiguration(
        [workplace("Riverside", "TH"), workplace("Mandalay Shoes", "MM")], {"TH", ANY}
    )
    check = contacts_check(config)
    assert check.status == Status.WARN
    assert "MM" in check.detail
    assert check.fix == "run `wvb contacts set --country MM --text TEXT`"

    countryless = StoredConfiguration([workplace("Riverside", None)], {"TH"})
    assert contacts_check(countryless).status == Status.FAIL
    assert "Riverside" in contacts_check(countryless).detail

    complete = StoredConfiguration([workplace("Riverside", "TH")], {"TH", ANY})
    assert contacts_check(complete).status == Status.OK


def test_quiet_hours_and_time_zones_are_checked_for_sense() -> None:
    assert quiet_hours_check("21:00-07:00", (21 * 60, 7 * 60)).status == Status.OK
    # services/broadcasts.py reads an equal start and end as quiet all day long
    all_day = quiet_hours_check("08:00-08:00", (8 * 60, 8 * 60))
    assert all_day.status == Status.FAIL
    assert "never" in all_day.detail
    assert quiet_hours_check("18:00-10:00", (18 * 60, 10 * 60)).status == Status.WARN
    assert quiet_hours_check("", None).status == Status.WARN

    unknown = StoredConfiguration([workplace("Riverside", "TH", "Asia/Nowhere")])
    assert time_zones_check(unknown, "Asia/Bangkok", {}).status == Status.FAIL
    zoned = StoredConfiguration([workplace("Riverside", "TH")])
    assert time_zones_check(zoned, "Asia/Bangkok", {}).status == Status.OK
    assert time_zones_check(zoned, "UTC", {}).status == Status.WARN, "workers with no workplace"
    assert time_zones_check(zoned, "UTC", {"my": "Asia/Yangon"}).status == Status.OK


async def test_keys_that_cannot_read_the_data_fail_naming_the_key(
    backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    """The doctor says what `wvb run` would refuse: data made with other keys."""
    settings = backend.settings()
    await complete_configuration(settings)  # writes the key canary with these keys
    fake_telegram.register_chat({"id": STAFF_CHAT, "type": "supergroup", "title": "Staff"})
    env = telegram_environment(backend, settings, fake_telegram)
    assert lines_by_check((await doctor(env)).stdout)["keys_match"].startswith("OK")

    other = dict(line.split("=", 1) for line in generate_key_lines().splitlines())
    env["WVB_SECRET_KEY"] = other["WVB_SECRET_KEY"]
    result = await doctor(env)

    assert result.returncode == 1, result.stdout
    line = lines_by_check(result.stdout)["keys_match"]
    assert line.startswith("FAIL")
    assert "WVB_SECRET_KEY" in line
    assert "WVB_ENCRYPTION_KEYS" not in line


# ---- WhatsApp ---------------------------------------------------------------------------------

VERIFY_TOKEN = "verify-4c1d0e5f7a8b"


def whatsapp_environment(server: FakeWhatsAppServer) -> dict[str, str]:
    return {
        "WVB_WHATSAPP_TOKEN": server.token,
        "WVB_WHATSAPP_PHONE_NUMBER_ID": server.phone_number_id,
        "WVB_WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
        "WVB_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WVB_WHATSAPP_API_BASE": server.base_url,
    }


async def register_templates(settings: Settings, languages: list[str]) -> None:
    """The neutral template, as `wvb whatsapp templates set LANG wvb_new_message` stores it."""
    database = Database(settings.database_url)
    try:
        async with database.sessions() as session, session.begin():
            session.add_all(
                WhatsAppTemplate(language=language, name="wvb_new_message",
                                 template_language=language)
                for language in languages
            )  # fmt: skip
    finally:
        await database.dispose()


async def test_a_complete_whatsapp_configuration_passes_and_the_number_is_only_read(
    backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    settings = backend.settings()
    await complete_configuration(settings)
    await register_templates(settings, list(LANGUAGES))
    fake_telegram.register_chat({"id": STAFF_CHAT, "type": "supergroup", "title": "Staff"})
    async with FakeWhatsAppServer() as fake_whatsapp:
        env = {
            **telegram_environment(backend, settings, fake_telegram),
            **whatsapp_environment(fake_whatsapp),
        }

        result = await doctor(env)
        as_json = await doctor(env, "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_by_check(result.stdout)
    assert lines["channel"].startswith("OK"), "Telegram is checked beside WhatsApp"
    assert lines["whatsapp"].startswith("OK"), result.stdout
    assert DEFAULT_DISPLAY_PHONE_NUMBER in lines["whatsapp"]
    assert "Worker Voice" in lines["whatsapp"], "the name workers see in notifications is shown"
    assert lines["wa_webhook"].startswith("OK")
    assert "127.0.0.1:8082" in lines["wa_webhook"]
    assert lines["wa_templates"].startswith("OK"), result.stdout
    number = f"/v{GRAPH_API_VERSION}.0/{DEFAULT_PHONE_NUMBER_ID}"
    assert {(r.method, r.path) for r in fake_whatsapp.requests} == {("GET", number)}
    assert fake_whatsapp.sent == [], "the doctor sends nothing"
    for secret in (fake_whatsapp.token, DEFAULT_APP_SECRET, VERIFY_TOKEN):
        assert secret not in result.stdout + result.stderr + as_json.stdout
    document = json.loads(as_json.stdout)
    assert document["ready"] is True
    assert statuses(document)["wa_templates"] == "OK"


async def test_whatsapp_problems_fail_naming_the_setting_and_no_secret_is_printed(
    tmp_path: Path,
) -> None:
    keys = dict(line.split("=", 1) for line in generate_key_lines().splitlines())
    base = {
        **no_wvb_environment(),
        **keys,
        "WVB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
    }
    async with FakeWhatsAppServer() as fake:
        whatsapp = whatsapp_environment(fake)
        incomplete = await doctor({**base, **whatsapp, "WVB_WHATSAPP_APP_SECRET": ""})
        assert fake.requests == [], "settings that cannot work are not tried"
        wrong_token = "EAAG-WRONG-TOKEN-abcdefghijklmnop"
        rejected = await doctor({
            **base, **whatsapp,
            "WVB_WHATSAPP_TOKEN": wrong_token,
            "WVB_WHATSAPP_LISTEN": "0.0.0.0:8082",
        })  # fmt: skip
        unknown = await doctor({
            **base, **whatsapp,
            "WVB_WHATSAPP_PHONE_NUMBER_ID": "109999999999999",
            "WVB_WEBHOOK_URL": "https://bot.example.org/telegram",
            "WVB_WEBHOOK_LISTEN": "0.0.0.0:8082",
        })  # fmt: skip
    unreachable = await doctor({**base, **whatsapp})  # the fake has stopped

    lines = lines_by_check(incomplete.stdout)
    assert incomplete.returncode == 1
    assert lines["whatsapp"].startswith("FAIL")
    assert "WVB_WHATSAPP_APP_SECRET" in lines["whatsapp"]
    assert "channel" not in lines, "WhatsApp is a channel workers can reach"
    assert lines["staff_chat"].startswith("FAIL")
    assert "WVB_TELEGRAM_TOKEN" in lines["staff_chat"], "staff alerts go to a Telegram group"
    assert lines["wa_templates"].startswith("FAIL"), "no database: no template"

    lines = lines_by_check(rejected.stdout)
    assert lines["whatsapp"].startswith("FAIL")
    assert "WVB_WHATSAPP_TOKEN" in lines["whatsapp"]
    assert "WRONG-TOKEN" not in rejected.stdout + rejected.stderr
    assert lines["wa_webhook"].startswith("WARN"), "plain HTTP on every interface"
    assert "0.0.0.0:8082" in lines["wa_webhook"]

    lines = lines_by_check(unknown.stdout)
    assert lines["whatsapp"].startswith("FAIL")
    assert "WVB_WHATSAPP_PHONE_NUMBER_ID" in lines["whatsapp"]
    assert lines["wa_webhook"].startswith("FAIL"), "the Telegram webhook has that port"
    assert "WVB_WEBHOOK_LISTEN" in lines["wa_webhook"]

    lines = lines_by_check(unreachable.stdout)
    assert lines["whatsapp"].startswith("FAIL")
    assert "WVB_WHATSAPP_API_BASE" in lines["whatsapp"]
    assert unreachable.stderr == "", "one line says it all (pywa would add advice on httpx)"
    for result in (incomplete, rejected, unknown, unreachable):
        assert "Traceback" not in result.stderr
        assert DEFAULT_APP_SECRET not in result.stdout + result.stderr
    assert not (tmp_path / "bot.sqlite3").exists(), "no database is created"


async def test_without_a_token_whatsapp_is_off_and_half_a_configuration_is_reported() -> None:
    off = load_settings(_env_file=None)
    assert await whatsapp_checks(off, StoredConfiguration()) == [], "no line when it is off"

    half = load_settings(_env_file=None, whatsapp_phone_number_id=DEFAULT_PHONE_NUMBER_ID)
    [check] = await whatsapp_checks(half, StoredConfiguration())
    assert check.status == Status.WARN
    assert "WVB_WHATSAPP_TOKEN" in check.detail


def test_every_language_needs_a_neutral_template_or_a_fallback_it_may_not_read() -> None:
    languages = list(LANGUAGES)

    def check(configured: set[str], default: str = "en") -> tuple[Status, str, str | None]:
        result = whatsapp_templates_check(
            StoredConfiguration(whatsapp_template_languages=configured), languages, default
        )
        return result.status, result.detail, result.fix

    assert check(set(languages))[0] == Status.OK
    status, detail, fix = check(set(languages) - {"my", "km"})
    assert status == Status.WARN
    assert "my, km" in detail
    assert "the en one" in detail
    assert fix == "run `wvb whatsapp templates set my NAME [--template-language CODE]`"
    status, detail, _ = check({"th", "my"}, default="th")
    assert status == Status.WARN, "the others get WVB_DEFAULT_LANGUAGE's template"
    assert "the th one" in detail
    status, detail, fix = check({"th", "my"})
    assert status == Status.FAIL, "no template for en, and en is the last fallback"
    assert "en, km, ne, …" in detail
    assert fix == "run `wvb whatsapp templates set en NAME`"
    status, _, fix = check(set())
    assert status == Status.FAIL
    assert fix is not None
    assert "wvb whatsapp templates set en" in fix


async def test_a_message_held_for_a_whatsapp_worker_to_write_is_not_stuck(
    backend: Backend,
) -> None:
    """Held until the worker's next message opens their 24-hour window: waiting is its job, so
    the outbox line does not count it as waiting too long; one pending due an hour ago is."""
    settings = backend.settings()
    await complete_configuration(settings)
    database = Database(settings.database_url)
    try:
        async with database.sessions() as session, session.begin():
            session.add_all(
                OutboxMessage(key=str(uuid.uuid4()), channel="whatsapp", recipient="worker",
                              payload_ciphertext=b"sealed", held_for_window=held,
                              next_attempt_at=utc_now() - timedelta(hours=1))
                for held in (True, True, False)
            )  # fmt: skip

        stored = await read_configuration(database.sessions)
    finally:
        await database.dispose()

    assert stored.overdue_messages == 1

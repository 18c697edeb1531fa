"""Grievance intake end to end: each real Telegram runtime (aiogram, python-telegram-bot) over the
fake Bot API, on SQLite + memory and on PostgreSQL + Redis, with what a worker said searched for
afterwards in a full database dump, a Redis dump and every captured log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from services.staff import StaffService
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Case, CaseEntry, Worker
from tests.bot_driver import (
    CommandResult,
    RunningBot,
    ask,
    bot_with_staff_chat,
    check_status,
    data_of,
    has,
    onboard,
    press,
    report,
    run_wvb,
    start_bot,
    stop_bot,
)
from tests.conftest import REDIS_URL, Backend
from tests.dumps import database_dump, leaks, redis_dump
from tests.fake_telegram_api import FakeTelegramServer

WVB = str(Path(sys.executable).parent / "wvb")
STAFF_CHAT = -100_777_000
WORKER_ID = 4_242_424_242
FIRST_NAME = "Thandar"
LAST_NAME = "Htun"
USERNAME = "thandar_mm"
SECRET_TEXT = "The supervisor Ko Aung took my passport on Tuesday"
TYPED_WORKPLACE = "Golden Lotus Seafood, shed 4"
AGENCY = "Quick Jobs Recruitment"


def jpeg_with_location() -> bytes:
    image = Image.new("RGB", (64, 48), "red")
    exif = Image.Exif()
    exif[0x010F] = "SpyPhone"  # camera make
    exif[0x013B] = "Thandar Htun"  # artist
    exif.get_ifd(0x8825).update({1: "N", 2: (16.0, 45.0, 0.0), 3: "E", 4: (98.0, 34.0, 0.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def keyring_of(bot: RunningBot) -> Keyring:
    from bot.settings import resolve_keys

    return Keyring(resolve_keys(bot.settings).encryption_keys)


@pytest.fixture
async def bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    async with bot_with_staff_chat(backend, fake_telegram, telegram_runtime, STAFF_CHAT) as running:
        yield running


async def staff(bot: RunningBot) -> tuple[StaffService, Database]:
    database = Database(bot.settings.database_url)
    return StaffService(database, keyring_of(bot)), database


async def wvb(bot: RunningBot, backend: Backend, *args: str) -> CommandResult:
    return await run_wvb(backend.environment(bot.settings), *args)


async def test_report_leaves_no_identity_or_text_in_database_redis_or_logs(
    backend: Backend,
    bot: RunningBot,
    fake_telegram: FakeTelegramServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    service, database = await staff(bot)
    await service.set_contacts("test", "*", "*", "Call the hotline 1300 (free, 24 hours)")
    await database.dispose()
    user = fake_telegram.user(
        WORKER_ID, first_name=FIRST_NAME, last_name=LAST_NAME, username=USERNAME,
        language_code="en",
    )  # fmt: skip
    await onboard(fake_telegram, user, "en")
    receipt = await report(
        fake_telegram,
        user,
        categories=("documents", "forced"),
        workplace=TYPED_WORKPLACE,
        agency=AGENCY,
        details=(SECRET_TEXT, "x" * 4000),
        photo=jpeg_with_location(),
        danger="yes",
    )
    assert receipt is not None
    assert receipt.message.protect_content, "the receipt is sent with protect_content"
    assert any("hotline 1300" in m.text for m in user.messages()), "emergency contacts shown"
    [alert] = await fake_telegram.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=15)
    assert receipt.reference in alert.text
    assert "Threats, cannot leave, forced work" in alert.text
    for secret in (SECRET_TEXT, TYPED_WORKPLACE, AGENCY, str(WORKER_ID), FIRST_NAME):
        assert secret not in alert.text

    shown = await wvb(bot, backend, "cases", "show", receipt.reference, "--json")
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert [e["text"] for e in case["entries"] if e["kind"] == "text"][:1] == [SECRET_TEXT]
    assert case["workplace_typed"] == TYPED_WORKPLACE
    assert case["agency"] == AGENCY
    assert case["urgent"] is True
    assert case["categories"] == ["documents", "forced"]
    assert {"reference", "status", "category", "language", "urgent", "created_at", "events"} <= set(
        case
    )
    assert case["events"][0]["action"] == "received"
    assert "pseudonym" not in shown.stdout
    assert str(WORKER_ID) not in shown.stdout

    needles = [
        str(WORKER_ID),
        hashlib.sha256(str(WORKER_ID).encode()).hexdigest(),
        SECRET_TEXT,
        TYPED_WORKPLACE,
        AGENCY,
        FIRST_NAME,
        LAST_NAME,
        USERNAME,
    ]
    assert leaks(await database_dump(backend, bot), needles) == []
    assert leaks(await redis_dump(backend), needles) == []
    logs = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if not record.name.startswith("aiohttp.access")
    )
    assert leaks(logs.encode(), needles) == []
    assert " -> report.review " in logs, "the turns were logged (so the search above saw them)"
    from bot.settings import resolve_keys
    from storage.crypto import Pseudonymizer

    pseudonym = Pseudonymizer(resolve_keys(bot.settings).secret_key).pseudonym(
        "telegram", WORKER_ID
    )
    ours = "\n".join(  # the bot's own lines (the drivers' debug lines are off in production)
        record.getMessage()
        for record in caplog.records
        if record.name.split(".")[0] in ("bot", "services", "scheduler", "storage", "cli")
    )
    assert pseudonym[:8] not in ours, "a turn is named by a random id, not the worker's pseudonym"
    assert "case received" not in logs, "no case line to line up with the worker's turns"


async def test_evidence_photo_is_stored_without_its_location(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    user = fake_telegram.user(4_000_001, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user, photo=jpeg_with_location())
    assert receipt is not None
    result = await wvb(bot, backend, "cases", "show", receipt.reference, "--json",
                 "--export-files", str(tmp_path / "files"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    [name] = json.loads(result.stdout)["exported_files"]
    exported = (tmp_path / "files" / name).read_bytes()
    assert b"SpyPhone" not in exported
    assert b"Thandar" not in exported
    image = Image.open(io.BytesIO(exported))
    assert image.size == (64, 48)
    assert dict(image.getexif()) == {}


async def test_a_file_over_the_download_limit_is_refused_without_downloading_it(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    from tests.fake_telegram_api import MAX_DOWNLOAD_FILE_SIZE

    user = fake_telegram.user(4_000_004, language_code="en")
    await onboard(fake_telegram, user, "en")
    await ask(fake_telegram, user, lambda: user.send_command("report"), has("cat:wages"))
    await press(fake_telegram, user, "cat:wages", lambda m: "report:done" in data_of(m))
    await press(fake_telegram, user, "report:done", has("wp:skip"))
    await press(fake_telegram, user, "wp:skip", has("agency:none"))
    await press(fake_telegram, user, "agency:none", has("report:done"))
    refused = await ask(fake_telegram, user,
                        lambda: user.send_document(size=MAX_DOWNLOAD_FILE_SIZE + 1),
                        lambda m: "too big" in m.text)  # fmt: skip
    assert "20 MB" in refused.text
    assert [r for r in fake_telegram.requests if r.method == "getFile"] == []
    # Without the size in the update, getFile is asked, and its "file is too big" is the same.
    big = MAX_DOWNLOAD_FILE_SIZE + 1
    again = await ask(fake_telegram, user,
                      lambda: user.send_document(size=big, announce_size=False),
                      lambda m: "too big" in m.text)  # fmt: skip
    assert again.text == refused.text
    [get_file] = [r for r in fake_telegram.requests if r.method == "getFile"]
    assert get_file.status == 400
    assert fake_telegram.downloads == []


async def test_a_file_the_sandbox_refuses_is_explained_and_the_report_goes_on(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    from tests.test_media_sanitizer import png_chunk

    # 88 megapixels in a few hundred bytes: refused from its header, before decoding.
    header = png_chunk(
        b"IHDR", (11_000).to_bytes(4, "big") + (8_000).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    )
    bomb = b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")
    user = fake_telegram.user(4_000_005, language_code="en")
    await onboard(fake_telegram, user, "en")
    await ask(fake_telegram, user, lambda: user.send_command("report"), has("cat:wages"))
    await press(fake_telegram, user, "cat:wages", lambda m: "report:done" in data_of(m))
    await press(fake_telegram, user, "report:done", has("wp:skip"))
    await press(fake_telegram, user, "wp:skip", has("agency:none"))
    await press(fake_telegram, user, "agency:none", has("report:done"))
    refused = await ask(fake_telegram, user,
                        lambda: user.send_document(data=bomb, file_name="x.png",
                                                   mime_type="image/png"),
                        lambda m: "could not safely check this file" in m.text)  # fmt: skip
    assert "report:done" in data_of(refused)
    await ask(fake_telegram, user, lambda: user.send_photo(data=jpeg_with_location()),
              lambda m: "File added" in m.text)  # fmt: skip


async def test_confirming_twice_creates_exactly_one_case(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(4_000_002, language_code="en")
    await onboard(fake_telegram, user, "en")
    await report(fake_telegram, user, send=False)
    review = next(m for m in reversed(user.messages()) if "review:send" in data_of(m))
    user.press("review:send", review)
    user.press("review:send", review)
    await fake_telegram.wait_for(lambda m: m.chat_id == user.chat_id and m.protect_content)
    await asyncio.sleep(0.5)  # let the second press be handled too
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Case)) == 1
    finally:
        await database.dispose()
    assert sum(1 for m in user.messages() if m.protect_content) == 1


async def test_the_same_update_delivered_twice_is_handled_once(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/hook"
    bot = await start_bot(backend, fake_telegram, telegram_runtime, webhook_url=url,
                          webhook_secret="s3cret",
                          webhook_listen=f"127.0.0.1:{unused_tcp_port}")  # fmt: skip
    try:
        user = fake_telegram.user(4_000_003, language_code="en")

        async def deliver_pending() -> None:
            for update in fake_telegram.pending_updates:
                assert await fake_telegram.deliver_webhook(update, secret="s3cret") == 200

        async def act_and_deliver(action: object) -> None:
            await deliver_pending()

        user.send_command("start")
        await deliver_pending()
        await fake_telegram.wait_for(lambda m: "lang:en" in data_of(m))
        steps = [("lang:en", "privacy:ok"), ("privacy:ok", "sub:no"), ("sub:no", "menu:report")]
        for payload, expected in steps:
            user.press(payload, next(m for m in reversed(user.messages()) if payload in data_of(m)))
            await deliver_pending()
            await fake_telegram.wait_for(lambda m, e=expected: e in data_of(m))
        before = len(fake_telegram.sent)
        user.send_command("menu")
        [update] = fake_telegram.pending_updates
        assert await fake_telegram.deliver_webhook(update, secret="s3cret") == 200
        assert await fake_telegram.deliver_webhook(update, secret="s3cret") == 200
        await fake_telegram.wait_for(lambda m: "menu:report" in data_of(m), start=before)
        await asyncio.sleep(0.5)
        menus = [m for m in fake_telegram.sent[before:] if "menu:report" in data_of(m)]
        assert len(menus) == 1, "a redelivered update is answered once"
    finally:
        await stop_bot(bot)


async def test_receipt_code_works_from_another_account_and_guessing_is_throttled(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    reporter = fake_telegram.user(4_000_010, language_code="th")
    await onboard(fake_telegram, reporter, "th")
    receipt = await report(fake_telegram, reporter)
    assert receipt is not None

    new_phone = fake_telegram.user(4_000_011, language_code="en")  # never onboarded
    found = await check_status(
        fake_telegram, new_phone, receipt.reference.lower(), receipt.code.replace("-", " ").lower()
    )
    assert receipt.reference in found.text
    assert "Received" in found.text
    assert found.protect_content
    await asyncio.sleep(0.3)
    assert fake_telegram.is_deleted(new_phone.chat_id, new_phone.user_message_ids()[-1])

    async def check(user_id: int, reference: str, code: str) -> str:
        user = fake_telegram.user(user_id, language_code="en")
        return (await check_status(fake_telegram, user, reference, code)).text

    wrong_code = await check(4_000_012, receipt.reference, "AAAA-BBBB-CCCC-DDDD")
    wrong_reference = await check(4_000_013, "ZZZZ-ZZZZ", receipt.code)
    assert wrong_code == wrong_reference, "a wrong code and a wrong reference look the same"

    answers = [await check(4_000_014, receipt.reference, f"AAAA-BBBB-CCCC-{n:04d}")
               for n in range(20)]  # fmt: skip
    throttled = [a for a in answers if "Too many tries" in a]
    assert len(throttled) >= 15, "rapid guessing is throttled after a few tries"
    right_but_throttled = await check(4_000_014, receipt.reference, receipt.code)
    assert "Too many tries" in right_but_throttled, "while throttled, no guess is checked"


async def test_forget_cuts_the_link_deletes_recent_messages_and_the_case_stays_reachable(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(4_000_020, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user)
    assert receipt is not None
    own_messages = user.user_message_ids()
    bot_messages = [m.message_id for m in user.messages()]
    await ask(fake_telegram, user, lambda: user.send_command("forget"), has("forget:yes"))
    done = await press(fake_telegram, user, "forget:yes", lambda m: "/start" in m.text)
    assert not fake_telegram.is_deleted(user.chat_id, done.message_id)
    for message_id in own_messages + bot_messages:
        assert fake_telegram.is_deleted(user.chat_id, message_id), message_id
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Worker)) == 0
            case = await session.scalar(select(Case))
            assert case is not None
            assert case.reporter_tag is None
            assert case.reporter_ciphertext is None
            assert await session.scalar(select(func.count()).select_from(CaseEntry)) >= 1
    finally:
        await database.dispose()
    found = await check_status(fake_telegram, user, receipt.reference, receipt.code)
    assert receipt.reference in found.text
    assert "Received" in found.text


async def test_a_worker_withdraws_their_report_with_the_receipt_code(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    server = fake_telegram
    user = server.user(5_300_001, language_code="en")
    await onboard(server, user, "en")
    receipt = await report(server, user, details=("The supervisor keeps our passports.",))
    assert receipt is not None
    found = await check_status(server, user, receipt.reference, receipt.code)
    assert "Received" in found.text

    confirm = await press(server, user, "status:withdraw", lambda m: "withdraw:yes" in data_of(m))
    assert [b["callback_data"] for b in confirm.buttons()] == ["withdraw:no", "withdraw:yes"]
    assert receipt.reference in confirm.text
    since = len(server.sent)
    done = await press(server, user, "withdraw:yes", lambda m: "is withdrawn" in m.text)
    assert "Deleted now" in done.text
    [told] = await server.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=20, start=since)
    assert receipt.reference in told.text
    assert "withdrawn" in told.text
    assert "passports" not in told.text

    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            case = await session.scalar(select(Case).where(Case.reference == receipt.reference))
            assert case is not None
            assert case.status == "withdrawn"
            assert case.purged_at is not None
            assert await session.scalar(select(func.count()).select_from(CaseEntry)) == 0
    finally:
        await database.dispose()
    again = await check_status(server, user, receipt.reference, receipt.code)
    assert "Withdrawn" in again.text


async def test_zawgyi_description_is_stored_as_unicode(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    from tests.test_burmese import ZAWGYI_TO_UNICODE

    zawgyi, unicode = ZAWGYI_TO_UNICODE[0].values
    user = fake_telegram.user(4_000_030, language_code="my")
    await onboard(fake_telegram, user, "my")
    receipt = await report(fake_telegram, user, details=(zawgyi,))
    assert receipt is not None
    shown = await wvb(bot, backend, "cases", "show", receipt.reference, "--json")
    texts = [e["text"] for e in json.loads(shown.stdout)["entries"] if e["kind"] == "text"]
    assert texts == [unicode]


async def test_staff_commands_follow_the_contract_and_are_audited(
    backend: Backend, bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(4_000_040, language_code="es")
    await onboard(fake_telegram, user, "es")
    receipt = await report(fake_telegram, user, categories=("hours",))
    assert receipt is not None
    listed = await wvb(bot, backend, "cases", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [case] = json.loads(listed.stdout)
    assert {"reference", "status", "category", "language", "urgent", "created_at"} <= set(case)
    assert (case["reference"], case["status"], case["category"], case["language"]) == (
        receipt.reference, "received", "hours", "es",
    )  # fmt: skip
    assert case["created_at"].endswith("Z")
    closed = await wvb(bot, backend, "cases", "list", "--status", "closed", "--json")
    assert json.loads(closed.stdout) == []
    bad = await wvb(bot, backend, "cases", "list", "--status", "nonsense")
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1
    missing = await wvb(bot, backend, "cases", "show", "ZZZZ-ZZZZ", "--json")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "ZZZZ-ZZZZ" in missing.stderr
    assert (await wvb(bot, backend, "cases", "show", receipt.reference)).returncode == 0

    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            rows = await session.execute(text("SELECT actor, action, subject FROM audit_log"))
            entries = [tuple(row) for row in rows]
        actions = [action for _, action, _ in entries]
        assert actions.count("cases.list") == 2
        assert ("case.view", receipt.reference) in [(a, s) for _, a, s in entries]
        assert all(actor.startswith("cli:") for actor, _, _ in entries)
        with pytest.raises(Exception, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text("DELETE FROM audit_log"))
    finally:
        await database.dispose()


async def test_key_rotation_reencrypts_everything_and_the_old_key_can_go(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    from bot.settings import generate_key_lines

    first = backend.settings()
    assert first.secret_key is not None
    assert first.encryption_keys is not None
    secret, old_key = first.secret_key.get_secret_value(), first.encryption_keys.get_secret_value()
    bot = await start_bot(
        backend, fake_telegram, telegram_runtime, secret_key=secret, encryption_keys=old_key
    )
    user = fake_telegram.user(4_000_050, language_code="en")
    try:
        await onboard(fake_telegram, user, "en")
        receipt = await report(fake_telegram, user, workplace=TYPED_WORKPLACE, agency=AGENCY,
                               photo=jpeg_with_location())  # fmt: skip
        assert receipt is not None
        await report(fake_telegram, user, send=False)  # a draft left in the state store
    finally:
        await stop_bot(bot)
    new_key = generate_key_lines().splitlines()[1].split("=", 1)[1]
    env = backend.environment(first)
    env["WVB_ENCRYPTION_KEYS"] = f"{new_key},{old_key}"
    rotated = subprocess.run([WVB, "keys", "rotate"], env=env, capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    assert "case_entries" in rotated.stderr

    env["WVB_ENCRYPTION_KEYS"] = new_key  # the old key is gone
    shown = subprocess.run([WVB, "cases", "show", receipt.reference, "--json"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["workplace_typed"] == TYPED_WORKPLACE
    assert case["agency"] == AGENCY
    assert all("error" not in entry for entry in case["entries"])
    again = subprocess.run([WVB, "keys", "rotate"], env=env, capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert " 0 re-encrypted" in again.stderr
    assert "case_entries: 0 re-encrypted" in again.stderr

    if backend.redis_url:  # the unfinished draft survived in Redis and still reads
        bot = await start_bot(
            backend, fake_telegram, telegram_runtime, secret_key=secret, encryption_keys=new_key
        )
        try:
            await ask(fake_telegram, user, lambda: user.send_command("report"),
                      has("resume:continue"))  # fmt: skip
        finally:
            await stop_bot(bot)


def english_sentences() -> list[str]:
    """Every English message long enough to be recognisable inside a reply."""
    from babel.messages.pofile import read_po

    from locales.catalogs import TEMPLATE

    with TEMPLATE.open("rb") as template:
        ids = [m.id for m in read_po(template) if m.id]
    singles = [i if isinstance(i, str) else i[0] for i in ids]
    return [s for s in singles if len(s) > 14 and "{" not in s]


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_the_whole_report_speaks_each_language_with_no_english_left(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    from locales import LANGUAGES

    english = english_sentences()
    for index, language in enumerate(code for code in LANGUAGES if code != "en"):
        user = fake_telegram.user(4_100_000 + index, language_code=language)
        await onboard(fake_telegram, user, language)
        receipt = await report(
            fake_telegram, user, categories=("wages", "child"), workplace="Factory 9",
            agency="Agency 9", affected="me", share="share", danger="yes",
        )  # fmt: skip
        assert receipt is not None
        found = await check_status(fake_telegram, user, receipt.reference, receipt.code)
        assert receipt.reference in found.text
        said = [m.text for m in user.messages()] + [
            button["text"] for m in user.messages() for button in m.buttons()
        ]
        untranslated = sorted({e for e in english for t in said if e in t})
        assert untranslated == [], f"{language}: English left in the conversation"


async def test_forget_also_deletes_what_staff_sent_through_the_outbox(
    bot: RunningBot, backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(4_000_021, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user)
    assert receipt is not None
    since = len(fake_telegram.sent)
    result = await wvb(
        bot, backend, "cases", "reply", receipt.reference, "--text", "Which shift do you work?"
    )
    assert result.returncode == 0, result.stderr
    [staff_message] = await fake_telegram.wait_for(
        lambda m: m.chat_id == user.chat_id and "Which shift" in m.text, start=since, timeout=30
    )
    await ask(fake_telegram, user, lambda: user.send_command("forget"), has("forget:yes"))
    await press(fake_telegram, user, "forget:yes", lambda m: "/start" in m.text)
    assert fake_telegram.is_deleted(user.chat_id, staff_message.message_id)


async def redis_keys(backend: Backend) -> list[str]:
    client = Redis.from_url(REDIS_URL)
    try:
        return [key.decode() async for key in client.scan_iter(match=f"{backend.redis_prefix}:*")]
    finally:
        await client.aclose()


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_redis_keys_cannot_be_joined_to_the_workers_table_and_forget_drops_them(
    bot: RunningBot, backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    from bot.app import redis_key_names
    from bot.settings import resolve_keys
    from storage.crypto import Pseudonymizer

    pseudonym = Pseudonymizer(resolve_keys(bot.settings).secret_key).pseudonym(
        "telegram", 4_000_022
    )
    names = redis_key_names(bot.settings)
    user = fake_telegram.user(4_000_022, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user)
    assert receipt is not None
    await check_status(fake_telegram, user, receipt.reference, "AAAA-BBBB-CCCC-0000")  # counted
    await ask(fake_telegram, user, lambda: user.send_command("report"), has("cat:wages"))  # draft
    keys = await redis_keys(backend)
    assert [key for key in keys if pseudonym[:8] in key] == []
    # Counters (quotas, /status tries) are named by a blinded pseudonym's token and outlive
    # /forget on purpose, so that it cannot reset a quota; they hold no pseudonym either.
    tokens = {kind: names.token(kind, pseudonym) for kind in ("conv", "history")}
    for kind, token in tokens.items():  # the worker's keys exist, under their tokens
        assert any(key.endswith(token) for key in keys), kind

    await ask(fake_telegram, user, lambda: user.send_command("forget"), has("forget:yes"))
    await press(fake_telegram, user, "forget:yes", lambda m: "/start" in m.text)
    left = await redis_keys(backend)
    assert [key for key in left if any(token in key for token in tokens.values())] == []
    assert [key for key in left if names.token("lock", pseudonym) in key] == []


def sqlite_files(bot: RunningBot) -> dict[str, bytes]:
    path = Path(bot.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_forget_leaves_no_deleted_ciphertext_in_the_sqlite_file_or_its_wal(
    bot: RunningBot, fake_telegram: FakeTelegramServer
) -> None:
    from storage.models import WorkerAddress

    user = fake_telegram.user(4_000_023, language_code="en")
    await onboard(fake_telegram, user, "en")
    assert await report(fake_telegram, user) is not None
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            address = await session.scalar(select(WorkerAddress.address_ciphertext))
    finally:
        await database.dispose()
    assert address is not None
    assert any(address in content for content in sqlite_files(bot).values())

    await ask(fake_telegram, user, lambda: user.send_command("forget"), has("forget:yes"))
    await press(fake_telegram, user, "forget:yes", lambda m: "/start" in m.text)
    files = sqlite_files(bot)
    assert [name for name, content in files.items() if address in content] == []
    assert all(len(content) == 0 for name, content in files.items() if name.endswith("-wal"))

"""Grievance intake end to end on each messenger (Telegram on aiogram and python-telegram-bot,
WhatsApp), on SQLite + memory and on PostgreSQL + Redis, with what a worker said and who they are
searched for afterwards in a full database dump, a Redis dump and every captured log line.

Telegram's own ways are tested on Telegram only: its 20 MB download limit asked of getFile, an
update redelivered to its webhook, and deleting the staff's messages from the chat after /forget.
"""

from __future__ import annotations

import asyncio
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

from bot.settings import resolve_keys
from services.staff import StaffService
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database
from storage.models import Case, CaseEntry, Worker
from tests import messenger_driver as neutral
from tests.bot_driver import (
    CommandResult,
    RunningBot,
    ask,
    bot_with_staff_chat,
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
from tests.messenger_driver import Messenger, is_receipt
from tests.test_media_sanitizer import opus_with_tags

WVB = str(Path(sys.executable).parent / "wvb")
STAFF_CHAT = -100_777_000
WORKER_ID = 4_242_424_242
FIRST_NAME = "Thandar"
LAST_NAME = "Htun"
USERNAME = "thandar_mm"
SECRET_TEXT = "The supervisor Ko Aung took my passport on Tuesday"
TYPED_WORKPLACE = "Golden Lotus Seafood, shed 4"
AGENCY = "Quick Jobs Recruitment"
# What a messenger that cannot delete says instead (conversations/channel_words.py).
CODE_NOT_DELETED = "I cannot delete your message with the code here."
CHAT_NOT_DELETED = "I cannot delete the messages in this chat here."


def jpeg_with_location() -> bytes:
    image = Image.new("RGB", (64, 48), "red")
    exif = Image.Exif()
    exif[0x010F] = "SpyPhone"  # camera make
    exif[0x013B] = "Thandar Htun"  # artist
    exif.get_ifd(0x8825).update({1: "N", 2: (16.0, 45.0, 0.0), 3: "E", 4: (98.0, 34.0, 0.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@pytest.fixture
async def bot(messenger: Messenger) -> AsyncIterator[Messenger]:
    async with messenger.running(staff_chat=STAFF_CHAT):
        yield messenger


@pytest.fixture
async def telegram_bot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> AsyncIterator[RunningBot]:
    """For what only Telegram does: the bot on one Telegram runtime, with its staff chat."""
    async with bot_with_staff_chat(backend, fake_telegram, telegram_runtime, STAFF_CHAT) as running:
        yield running


async def wvb(bot: Messenger, *args: str) -> CommandResult:
    return await run_wvb(bot.environment(), *args)


def pseudonym_of(bot: Messenger, worker: neutral.Worker) -> str:
    return Pseudonymizer(resolve_keys(bot.settings).secret_key).pseudonym(bot.name, worker.identity)


async def count_cases(bot: Messenger) -> int:
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Case)) or 0)
    finally:
        await database.dispose()


async def test_report_leaves_no_identity_or_text_in_database_redis_or_logs(
    bot: Messenger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    database = Database(bot.settings.database_url)
    service = StaffService(database, Keyring(resolve_keys(bot.settings).encryption_keys))
    await service.set_contacts("test", "*", "*", "Call the hotline 1300 (free, 24 hours)")
    await database.dispose()
    user = bot.user(
        WORKER_ID, name=FIRST_NAME, last_name=LAST_NAME, username=USERNAME, language_code="en"
    )
    await neutral.onboard(user, "en")
    receipt = await neutral.report(
        user,
        categories=("documents", "forced"),
        workplace=TYPED_WORKPLACE,
        agency=AGENCY,
        details=(SECRET_TEXT, "x" * 4000),
        photo=jpeg_with_location(),
        danger="yes",
    )
    assert receipt is not None
    assert receipt.message.protected is bot.protects, "protected wherever the messenger can"
    assert any("hotline 1300" in m.text for m in user.messages()), "emergency contacts shown"
    [alert] = await bot.telegram.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=15)
    assert receipt.reference in alert.text
    assert "Threats, cannot leave, forced work" in alert.text
    for secret in (SECRET_TEXT, TYPED_WORKPLACE, AGENCY, user.identity, FIRST_NAME):
        assert secret not in alert.text

    shown = await wvb(bot, "cases", "show", receipt.reference, "--json")
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
    assert user.identity not in shown.stdout

    needles = [
        *user.identifiers(),
        SECRET_TEXT,
        TYPED_WORKPLACE,
        AGENCY,
        FIRST_NAME,
        LAST_NAME,
        USERNAME,
    ]
    assert bot.backend is not None
    assert leaks(await database_dump(bot.backend, bot), needles) == []
    assert leaks(await redis_dump(bot.backend), needles) == []
    logs = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if not record.name.startswith("aiohttp.access")
    )
    assert leaks(logs.encode(), needles) == []
    assert " -> report.review " in logs, "the turns were logged (so the search above saw them)"
    pseudonym = pseudonym_of(bot, user)
    ours = "\n".join(  # the bot's own lines (the drivers' debug lines are off in production)
        record.getMessage()
        for record in caplog.records
        if record.name.split(".")[0] in ("bot", "services", "scheduler", "storage", "cli")
    )
    assert pseudonym[:8] not in ours, "a turn is named by a random id, not the worker's pseudonym"
    assert "case received" not in logs, "no case line to line up with the worker's turns"


async def test_evidence_photo_is_stored_without_its_location(
    bot: Messenger, tmp_path: Path
) -> None:
    user = bot.user(4_000_001, language_code="en")
    await neutral.onboard(user, "en")
    receipt = await neutral.report(user, photo=jpeg_with_location())
    assert receipt is not None
    result = await wvb(bot, "cases", "show", receipt.reference, "--json",
                       "--export-files", str(tmp_path / "files"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    [name] = json.loads(result.stdout)["exported_files"]
    exported = (tmp_path / "files" / name).read_bytes()
    assert b"SpyPhone" not in exported
    assert b"Thandar" not in exported
    image = Image.open(io.BytesIO(exported))
    assert image.size == (64, 48)
    assert dict(image.getexif()) == {}


async def test_a_report_with_a_photo_and_a_voice_note_becomes_one_case(bot: Messenger) -> None:
    user = bot.user(4_000_006, language_code="en")
    await neutral.onboard(user, "en")
    receipt = await neutral.report(
        user, details=("My wages for October were not paid.",), photo=jpeg_with_location(),
        voice=opus_with_tags(),
    )  # fmt: skip
    assert receipt is not None
    shown = await wvb(bot, "cases", "show", receipt.reference, "--json")
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)["entries"]
    texts = [e["text"] for e in entries if e["kind"] == "text"]
    assert texts == ["My wages for October were not paid.", "evidence"], "the photo's caption"
    files = sorted(entry["kind"] for entry in entries if "size" in entry)
    assert files == ["photo", "voice"], entries
    assert await count_cases(bot) == 1


async def test_a_file_over_the_download_limit_is_refused_without_downloading_it(
    telegram_bot: RunningBot, fake_telegram: FakeTelegramServer
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
    bot: Messenger,
) -> None:
    from tests.test_media_sanitizer import png_chunk

    # 88 megapixels in a few hundred bytes: refused from its header, before decoding.
    header = png_chunk(
        b"IHDR", (11_000).to_bytes(4, "big") + (8_000).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    )
    bomb = b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")
    user = bot.user(4_000_005, language_code="en")
    await neutral.onboard(user, "en")
    await neutral.begin_report(user)
    refused = await neutral.ask(user, lambda: user.document(bomb, "x.png", "image/png"),
                                lambda m: "could not safely check this file" in m.text)  # fmt: skip
    assert "report:done" in refused.payloads
    await neutral.ask(user, lambda: user.photo(jpeg_with_location()),
                      lambda m: "File added" in m.text)  # fmt: skip


async def test_confirming_twice_creates_exactly_one_case(bot: Messenger) -> None:
    user = bot.user(4_000_002, language_code="en")
    await neutral.onboard(user, "en")
    await neutral.report(user, send=False)
    review = user.carrier("review:send")
    assert review is not None
    await user.press("review:send", review)
    await user.press("review:send", review)
    await neutral.reply(user, is_receipt)
    await asyncio.sleep(0.5)  # let the second press be handled too
    assert await count_cases(bot) == 1
    assert sum(1 for m in user.messages() if is_receipt(m)) == 1


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
    bot: Messenger,
) -> None:
    reporter = bot.user(4_000_010, language_code="th")
    await neutral.onboard(reporter, "th")
    receipt = await neutral.report(reporter)
    assert receipt is not None

    new_phone = bot.user(4_000_011, language_code="en")  # never onboarded
    found = await neutral.check_status(
        new_phone, receipt.reference.lower(), receipt.code.replace("-", " ").lower()
    )
    assert receipt.reference in found.text
    assert "Received" in found.text
    assert found.protected is bot.protects
    if isinstance(new_phone, neutral.TelegramWorker):
        await asyncio.sleep(0.3)
        code_message = new_phone.user.user_message_ids()[-1]
        assert bot.telegram.is_deleted(new_phone.user.chat_id, code_message)
    else:  # the worker is asked to delete it themselves (that message may come after the answer)
        await neutral.reply(new_phone, lambda m: CODE_NOT_DELETED in m.text)

    async def check(user_id: int, reference: str, code: str) -> str:
        user = bot.user(user_id, language_code="en")
        return (await neutral.check_status(user, reference, code)).text

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
    bot: Messenger,
) -> None:
    user = bot.user(4_000_020, language_code="en")
    await neutral.onboard(user, "en")
    receipt = await neutral.report(user)
    assert receipt is not None
    bot_messages = user.messages()
    telegram = user.user if isinstance(user, neutral.TelegramWorker) else None
    own_messages = telegram.user_message_ids() if telegram is not None else []
    confirm = await neutral.ask(user, lambda: user.command("forget"), neutral.has("forget:yes"))
    done = await neutral.press(user, "forget:yes", lambda m: "/start" in m.text)
    if telegram is not None:
        assert not bot.telegram.is_deleted(telegram.chat_id, done.raw.message_id)
        for message_id in own_messages + [m.raw.message_id for m in bot_messages]:
            assert bot.telegram.is_deleted(telegram.chat_id, message_id), message_id
    else:  # the worker is told to delete them, since the messenger cannot
        assert CHAT_NOT_DELETED in confirm.text
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
    found = await neutral.check_status(user, receipt.reference, receipt.code)
    assert receipt.reference in found.text
    assert "Received" in found.text


async def test_a_worker_withdraws_their_report_with_the_receipt_code(bot: Messenger) -> None:
    user = bot.user(5_300_001, language_code="en")
    await neutral.onboard(user, "en")
    receipt = await neutral.report(user, details=("The supervisor keeps our passports.",))
    assert receipt is not None
    found = await neutral.check_status(user, receipt.reference, receipt.code)
    assert "Received" in found.text

    confirm = await neutral.press(user, "status:withdraw", neutral.has("withdraw:yes"))
    assert confirm.payload_list == ["withdraw:no", "withdraw:yes"]
    assert receipt.reference in confirm.text
    since = len(bot.telegram.sent)
    done = await neutral.press(user, "withdraw:yes", lambda m: "is withdrawn" in m.text)
    assert "Deleted now" in done.text
    [told] = await bot.telegram.wait_for(lambda m: m.chat_id == STAFF_CHAT, timeout=20,
                                         start=since)  # fmt: skip
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
    again = await neutral.check_status(user, receipt.reference, receipt.code)
    assert "Withdrawn" in again.text


async def test_zawgyi_description_is_stored_as_unicode(bot: Messenger) -> None:
    from tests.test_burmese import ZAWGYI_TO_UNICODE

    zawgyi, unicode = ZAWGYI_TO_UNICODE[0].values
    user = bot.user(4_000_030, language_code="my")
    await neutral.onboard(user, "my")
    receipt = await neutral.report(user, details=(zawgyi,))
    assert receipt is not None
    shown = await wvb(bot, "cases", "show", receipt.reference, "--json")
    texts = [e["text"] for e in json.loads(shown.stdout)["entries"] if e["kind"] == "text"]
    assert texts == [unicode]


async def test_staff_commands_follow_the_contract_and_are_audited(bot: Messenger) -> None:
    user = bot.user(4_000_040, language_code="es")
    await neutral.onboard(user, "es")
    receipt = await neutral.report(user, categories=("hours",))
    assert receipt is not None
    listed = await wvb(bot, "cases", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [case] = json.loads(listed.stdout)
    assert {"reference", "status", "category", "language", "urgent", "created_at"} <= set(case)
    assert (case["reference"], case["status"], case["category"], case["language"]) == (
        receipt.reference, "received", "hours", "es",
    )  # fmt: skip
    assert case["created_at"].endswith("Z")
    closed = await wvb(bot, "cases", "list", "--status", "closed", "--json")
    assert json.loads(closed.stdout) == []
    bad = await wvb(bot, "cases", "list", "--status", "nonsense")
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1
    missing = await wvb(bot, "cases", "show", "ZZZZ-ZZZZ", "--json")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "ZZZZ-ZZZZ" in missing.stderr
    assert (await wvb(bot, "cases", "show", receipt.reference)).returncode == 0

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
    messenger: Messenger,
) -> None:
    from bot.settings import generate_key_lines

    assert messenger.backend is not None
    first = messenger.backend.settings()
    assert first.secret_key is not None
    assert first.encryption_keys is not None
    secret, old_key = first.secret_key.get_secret_value(), first.encryption_keys.get_secret_value()
    user = messenger.user(4_000_050, language_code="en")
    async with messenger.running(secret_key=secret, encryption_keys=old_key):
        await neutral.onboard(user, "en")
        receipt = await neutral.report(user, workplace=TYPED_WORKPLACE, agency=AGENCY,
                                       photo=jpeg_with_location())  # fmt: skip
        assert receipt is not None
        await neutral.report(user, send=False)  # a draft left in the state store
    new_key = generate_key_lines().splitlines()[1].split("=", 1)[1]
    env = messenger.backend.environment(first)
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

    if messenger.backend.redis_url:  # the unfinished draft survived in Redis and still reads
        async with messenger.running(secret_key=secret, encryption_keys=new_key):
            await neutral.ask(user, lambda: user.command("report"),
                              neutral.has("resume:continue"))  # fmt: skip


def english_sentences() -> list[str]:
    """Every English message long enough to be recognisable inside a reply."""
    from babel.messages.pofile import read_po

    from locales.catalogs import TEMPLATE

    with TEMPLATE.open("rb") as template:
        ids = [m.id for m in read_po(template) if m.id]
    singles = [i if isinstance(i, str) else i[0] for i in ids]
    return [s for s in singles if len(s) > 14 and "{" not in s]


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_the_whole_report_speaks_each_language_with_no_english_left(bot: Messenger) -> None:
    from locales import LANGUAGES

    english = english_sentences()
    for index, language in enumerate(code for code in LANGUAGES if code != "en"):
        user = bot.user(4_100_000 + index, language_code=language)
        await neutral.onboard(user, language)
        receipt = await neutral.report(
            user, categories=("wages", "child"), workplace="Factory 9",
            agency="Agency 9", affected="me", share="share", danger="yes",
        )  # fmt: skip
        assert receipt is not None
        found = await neutral.check_status(user, receipt.reference, receipt.code)
        assert receipt.reference in found.text
        messages = user.messages()
        if user.language_hint != language:
            # WhatsApp tells no language: until the worker chooses one, the bot speaks the
            # default (and names each language in its own script)
            chosen = next(i for i, m in enumerate(messages) if "privacy:ok" in m.payloads)
            messages = messages[chosen:]
        said = [m.text for m in messages] + [label for m in messages for label in m.labels]
        untranslated = sorted({e for e in english for t in said if e in t})
        assert untranslated == [], f"{language}: English left in the conversation"


async def test_forget_also_deletes_what_staff_sent_through_the_outbox(
    telegram_bot: RunningBot, backend: Backend, fake_telegram: FakeTelegramServer
) -> None:
    user = fake_telegram.user(4_000_021, language_code="en")
    await onboard(fake_telegram, user, "en")
    receipt = await report(fake_telegram, user)
    assert receipt is not None
    since = len(fake_telegram.sent)
    env = backend.environment(telegram_bot.settings)
    result = await run_wvb(
        env, "cases", "reply", receipt.reference, "--text", "Which shift do you work?"
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
    bot: Messenger,
) -> None:
    from bot.app import redis_key_names

    assert bot.backend is not None
    names = redis_key_names(bot.settings)
    user = bot.user(4_000_022, language_code="en")
    pseudonym = pseudonym_of(bot, user)
    await neutral.onboard(user, "en")
    receipt = await neutral.report(user)
    assert receipt is not None
    await neutral.check_status(user, receipt.reference, "AAAA-BBBB-CCCC-0000")  # counted
    await neutral.ask(user, lambda: user.command("report"), neutral.has("cat:wages"))  # draft
    keys = await redis_keys(bot.backend)
    assert [key for key in keys if pseudonym[:8] in key] == []
    # Counters (quotas, /status tries) are named by a blinded pseudonym's token and outlive
    # /forget on purpose, so that it cannot reset a quota; they hold no pseudonym either.
    tokens = {kind: names.token(kind, pseudonym) for kind in ("conv", "history")}
    # The worker's keys exist, under their tokens (the chat history only where the messenger
    # can delete what it holds: WhatsApp cannot, so none is kept).
    for kind in ("conv", "history") if bot.deletes else ("conv",):
        assert any(key.endswith(tokens[kind]) for key in keys), kind

    await neutral.ask(user, lambda: user.command("forget"), neutral.has("forget:yes"))
    await neutral.press(user, "forget:yes", lambda m: "/start" in m.text)
    left = await redis_keys(bot.backend)
    assert [key for key in left if any(token in key for token in tokens.values())] == []
    assert [key for key in left if names.token("lock", pseudonym) in key] == []


def sqlite_files(bot: Messenger) -> dict[str, bytes]:
    path = Path(bot.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_forget_leaves_no_deleted_ciphertext_in_the_sqlite_file_or_its_wal(
    bot: Messenger,
) -> None:
    from storage.models import WorkerAddress

    user = bot.user(4_000_023, language_code="en")
    await neutral.onboard(user, "en")
    assert await neutral.report(user) is not None
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            address = await session.scalar(select(WorkerAddress.address_ciphertext))
    finally:
        await database.dispose()
    assert address is not None
    assert any(address in content for content in sqlite_files(bot).values())

    await neutral.ask(user, lambda: user.command("forget"), neutral.has("forget:yes"))
    await neutral.press(user, "forget:yes", lambda m: "/start" in m.text)
    files = sqlite_files(bot)
    assert [name for name, content in files.items() if address in content] == []
    assert all(len(content) == 0 for name, content in files.items() if name.endswith("-wal"))

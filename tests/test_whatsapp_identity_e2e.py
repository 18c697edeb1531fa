"""Who a WhatsApp worker is, end to end: `wvb run` with the WhatsApp channel against the fake Cloud
API (tests/fake_whatsapp_api.py), the worker's messages arriving as Meta's signed webhook POSTs,
on SQLite + memory and PostgreSQL + Redis.

A phone-less worker (a BSUID only) onboards and reports; a worker known by their number is
adopted when their BSUID appears and keeps their case; a report made on WhatsApp is checked from
Telegram and the other way round; and nothing of the number or the BSUID is left in the database,
Redis or the logs. The rule itself is tested in tests/test_whatsapp_identity.py.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.channels.whatsapp.identity import BSUID_RECIPIENT_NOT_SUPPORTED
from storage.database import Database
from storage.models import Worker
from tests.bot_driver import check_status, run_wvb
from tests.bot_driver import onboard as onboard_on_telegram
from tests.bot_driver import report as report_on_telegram
from tests.conftest import Backend
from tests.dumps import database_dump, leaks, phone_needles, redis_dump
from tests.fake_telegram_api import FakeTelegramServer
from tests.fake_whatsapp_api import FakeWhatsAppServer, SimulatedWaUser
from tests.whatsapp_driver import (
    WaBot,
    WaWorker,
    offers,
    onboard,
    says,
    send_a_report,
    whatsapp_bot,
)

PHONE = "66812345678"
BSUID = "TH.4455667788990011"
BURMESE_BSUID = "MM.1029384756"


async def whatsapp_status(worker: WaWorker, reference: str, code: str) -> str:
    """/status, the reference, the code: the bot's answer."""
    await worker.text("/status", says("K7M3-9Q2X"))
    await worker.text(reference, says("receipt code"))
    return (await worker.text(code, says(reference))).text or ""


async def worker_rows(bot: WaBot) -> int:
    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Worker)) or 0)
    finally:
        await database.dispose()


async def test_a_phone_less_worker_onboards_and_reports(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        worker = bot.worker(None, BURMESE_BSUID)
        picker = await worker.text("hello", offers("lang:my"))
        assert picker.payload["recipient"] == BURMESE_BSUID
        assert "to" not in picker.payload, "no phone number to write to"
        rows = {
            row["id"]: row["title"]
            for section in picker.payload["interactive"]["action"]["sections"]
            for row in section["rows"]
        }
        assert rows["lang:my"].endswith("✓"), "Burmese offered first: the BSUID is from Myanmar"
        await worker.press("lang:en", offers("privacy:ok"))
        await worker.press("privacy:ok", offers("sub:no"))
        await worker.press("sub:no", offers("menu:report"))
        reference, _ = await send_a_report(worker, "The agency kept my passport.")
        assert {m.recipient for m in fake_whatsapp.sent} == {BURMESE_BSUID}
        shown = await run_wvb(backend.environment(bot.settings), "cases", "show", reference)
        assert shown.returncode == 0, shown.stderr


async def test_a_worker_known_by_their_number_is_adopted_when_their_bsuid_appears(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer, caplog: pytest.LogCaptureFixture
) -> None:
    """They keep their profile and their case: a staff reply reaches them, now at the BSUID; and
    their number, BSUID and the wamids (which encode the number) are nowhere in the database,
    Redis or the logs."""
    caplog.set_level(logging.DEBUG)
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        worker = bot.worker(PHONE)  # payloads without a BSUID
        await onboard(worker)
        reference, code = await send_a_report(worker, "My wages for May were not paid.")
        assert {m.recipient for m in fake_whatsapp.sent} == {PHONE}

        worker.user.user_id = BSUID  # Meta now sends their BSUID beside the number
        menu = await worker.text("/menu", offers("menu:report"))  # not the language picker
        assert menu.payload["recipient"] == BSUID, "written to at the BSUID from now on"
        assert await worker_rows(bot) == 1, "the same worker, not a second one"

        env = backend.environment(bot.settings)
        replied = await run_wvb(env, "cases", "reply", reference, "--text", "Which shift?")
        assert replied.returncode == 0, replied.stderr
        reply = await worker.wait_for(says("Which shift?"), 0)
        assert reply.recipient == BSUID
        answer = await whatsapp_status(worker, reference, code)
        assert "Which shift?" in answer, "their case, with the staff message"

        needles = phone_needles(PHONE, BSUID) + [m.wamid for m in fake_whatsapp.sent]
        dump = await database_dump(backend, bot)
        assert reference.encode() in dump, "the dump holds the data searched"
        assert leaks(dump, needles) == []
        assert leaks(await redis_dump(backend), needles) == []
    logs = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "-> menu" in logs, "the turns were logged (so the search saw them)"
    assert leaks(logs.encode(), needles) == []


async def test_a_reply_goes_to_the_number_when_meta_refuses_the_bsuid(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        worker = bot.worker(PHONE, BSUID)
        await onboard(worker)
        fake_whatsapp.fail_next(BSUID_RECIPIENT_NOT_SUPPORTED, recipient=BSUID)
        await worker.send(worker.user.text("/menu"))
        at_the_number = WaWorker(bot, SimulatedWaUser(PHONE))  # what the bot sent to PHONE
        menu = await at_the_number.wait_for(offers("menu:report"), 0)
        assert menu.payload["to"] == PHONE
        refused = [r for r in fake_whatsapp.requests if r.error_code is not None]
        assert [r.error_code for r in refused] == [BSUID_RECIPIENT_NOT_SUPPORTED]
        assert refused[0].body is not None
        assert refused[0].body["recipient"] == BSUID, "the BSUID was tried first"


async def test_a_report_made_on_whatsapp_is_checked_from_telegram_and_back(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer, fake_telegram: FakeTelegramServer
) -> None:
    telegram_settings = {
        "telegram_token": fake_telegram.token,
        "telegram_api_base": fake_telegram.base_url,
        "telegram_runtime": "aiogram",
    }
    async with whatsapp_bot(backend, fake_whatsapp, **telegram_settings) as bot:
        whatsapp = bot.worker(PHONE, BSUID)
        await onboard(whatsapp)
        reference, code = await send_a_report(whatsapp, "We work 14 hours a day.")

        telegram = fake_telegram.user(4_400_001, language_code="en")
        await onboard_on_telegram(fake_telegram, telegram, "en")
        answer = await check_status(fake_telegram, telegram, reference, code)
        assert f"Case {reference}" in answer.text, answer.text

        receipt = await report_on_telegram(fake_telegram, telegram)
        assert receipt is not None
        answer_text = await whatsapp_status(whatsapp, receipt.reference, receipt.code)
        assert f"Case {receipt.reference}" in answer_text
        assert "Stage: Received" in answer_text

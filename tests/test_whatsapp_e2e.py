"""The bot on WhatsApp end to end: `wvb run` with WVB_WHATSAPP_* set, the Cloud API faked on
127.0.0.1 (tests/fake_whatsapp_api.py), the worker's messages arriving as Meta's signed webhook
POSTs, on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import hashlib
import io
import json
import logging

import pytest
from PIL import Image
from sqlalchemy import func, select

from storage.database import Database
from storage.models import Case, CaseEntry
from tests.bot_driver import RECEIPT_CODE, REFERENCE, run_wvb
from tests.conftest import Backend
from tests.dumps import database_dump, leaks, redis_dump
from tests.fake_whatsapp_api import FakeWhatsAppServer
from tests.test_media_sanitizer import opus_with_tags
from tests.whatsapp_driver import WaWorker, offers, says, whatsapp_bot


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


async def onboard(worker: WaWorker, language: str = "en") -> None:
    """A first "hello", the language, the privacy notice, no updates: the main menu."""
    await worker.text("hello", offers(f"lang:{language}"))
    await worker.press(f"lang:{language}", offers("privacy:ok"))
    await worker.press("privacy:ok", offers("sub:no"))
    await worker.press("sub:no", offers("menu:report"))


PHONE = "66811111111"


async def test_a_report_with_a_photo_and_a_voice_note_becomes_one_case_and_a_no_reopens_it(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's "Done when", and then the phone number searched for everywhere the bot
    keeps or writes anything: the database, Redis and every log line (at DEBUG)."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aiohttp", "pywa", "pywa_async"):
        caplog.set_level(logging.DEBUG, logger=name)  # quieted by the product: not here
    server = fake_whatsapp
    async with whatsapp_bot(backend, server) as bot:
        worker = bot.worker(PHONE)
        await onboard(worker)
        await worker.text("/report", says("What is the problem about?"))
        await worker.choose("Wages", says("Wages"))
        await worker.choose("Done", offers("wp:skip"))
        await worker.press("wp:skip", says("agency"))
        await worker.choose("No", says("Tell us what happened"))
        await worker.text("My wages for October were not paid.", says("dded"))
        photo = server.add_media(photo_bytes(), "image/jpeg")
        await worker.ask(worker.user.image(photo, caption="the pay slip"), says("dded"))
        voice = server.add_media(opus_with_tags(), "audio/ogg; codecs=opus")
        await worker.ask(worker.user.voice(voice), says("dded"))
        await worker.choose("Done", offers("when:ongoing"))
        await worker.press("when:week", offers("who:me"))
        await worker.press("who:few", offers("danger:yes"))
        await worker.press("danger:no", offers("share:share"))
        await worker.press("share:confidential", offers("review:send"))
        receipt = await worker.press("review:send", says("receipt code"))
        found = REFERENCE.search(receipt.text or "")
        assert found is not None, receipt.text
        assert RECEIPT_CODE.search(receipt.text or ""), receipt.text
        reference = found.group(1)
        assert set(server.downloads) == {photo.id, voice.id}, "both files fetched with the token"

        env = backend.environment(bot.settings)
        shown = await run_wvb(env, "cases", "show", reference, "--json")
        assert shown.returncode == 0, shown.stderr
        case = json.loads(shown.stdout)
        files = [entry for entry in case["entries"] if "size" in entry]
        assert sorted(entry["kind"] for entry in files) == ["photo", "voice"], case["entries"]

        remediated = await run_wvb(
            env, "cases", "remediate", reference, "--summary", "October was paid."
        )
        assert remediated.returncode == 0, remediated.stderr
        prompt = await worker.wait_for(says("October was paid."), 0)
        assert prompt.type == "interactive"
        await worker.choose("No, it was not", says("Type it now, or press Skip"))
        await worker.choose("Skip", offers("menu:report"))
        shown = await run_wvb(env, "cases", "show", reference, "--json")
        assert json.loads(shown.stdout)["status"] == "reopened"

    database = Database(bot.settings.database_url)
    try:
        async with database.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Case)) == 1
            assert await session.scalar(select(func.count()).select_from(CaseEntry)) >= 1
    finally:
        await database.dispose()
    wamids = [message.wamid for message in server.sent] + [
        json.loads(attempt.body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        for attempt in bot.deliverer.attempts
        if b'"messages"' in attempt.body
    ]
    assert len(wamids) > 20
    needles = [PHONE, f"+{PHONE}", hashlib.sha256(PHONE.encode()).hexdigest(), *wamids]
    assert leaks(await database_dump(backend, bot), needles) == []
    assert leaks(await redis_dump(backend), needles) == []
    assert caplog.records, "logs were captured"
    logs = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    assert leaks(logs.encode(), needles) == []

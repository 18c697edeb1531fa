"""The bot on WhatsApp end to end: `wvb run` with WVB_WHATSAPP_* set, the Cloud API faked on
127.0.0.1 (tests/fake_whatsapp_api.py), the worker's messages arriving as Meta's signed webhook
POSTs, on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.app import open_app
from bot.channels.whatsapp.webhook import MAX_BODY_BYTES
from scheduler.case_clock import CaseClock
from storage.database import Database
from storage.models import Case, CaseEntry, utc_now
from tests.bot_driver import ask, data_of, run_wvb
from tests.conftest import Backend
from tests.dumps import database_dump, leaks, redis_dump
from tests.fake_telegram_api import FakeTelegramServer
from tests.fake_whatsapp_api import (
    DEFAULT_APP_SECRET,
    FakeWhatsAppServer,
    SimulatedWaUser,
    WebhookDeliverer,
)
from tests.test_media_sanitizer import opus_with_tags
from tests.test_run_process import WVB, kill_if_running, start_process, stop_and_read
from tests.whatsapp_driver import (
    VERIFY_TOKEN,
    offers,
    onboard,
    says,
    send_a_report,
    whatsapp_bot,
    whatsapp_settings,
)


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


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
        photo = server.add_media(photo_bytes(), "image/jpeg")
        voice = server.add_media(opus_with_tags(), "audio/ogg; codecs=opus")
        evidence = [worker.user.image(photo, caption="the pay slip"), worker.user.voice(voice)]
        reference, _ = await send_a_report(
            worker, "My wages for October were not paid.", evidence=evidence, affected="few"
        )
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


async def test_garbage_never_crashes_the_running_bot_and_a_bad_signature_changes_nothing(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        worker = bot.worker(PHONE)
        await onboard(worker)
        user = worker.user
        odd = {
            "reaction": {"reaction": {"message_id": "wamid.X", "emoji": "👍"}},
            "location": {"location": {"latitude": 13.7, "longitude": 100.5}},
            "contacts": {"contacts": [{"name": {"formatted_name": "A"}, "phones": []}]},
            "sticker": {"sticker": {"id": "99", "mime_type": "image/webp", "animated": False}},
            "order": {"order": {"catalog_id": "1", "product_items": []}},
            "unsupported": {"errors": [{"code": 131051, "title": "Message type unknown"}]},
        }
        for kind, content in odd.items():
            reply = await worker.ask(user._value(user._message(kind, content)))
            assert reply.text, f"a {kind} message is answered, not dropped or crashed on"
        deliverer = bot.deliverer
        for body in (b"", b"{", b"[]", b"null", b'{"object": 5}', b'{"entry": [{"changes": 7}]}'):
            assert await deliverer.post_once(body) == 200, body  # signed: Meta must not retry
        forged = deliverer.encode(user.text("/forget"))
        assert await deliverer.post_once(forged, signature="sha256=" + "0" * 64) == 403
        assert await deliverer.post_once(forged, signature="") == 401
        too_big = b"{" + b" " * MAX_BODY_BYTES + b"}"
        assert await deliverer.post_once(too_big) == 413
        # WhatsApp has no command menu: commands are typed, with or without the slash for menu.
        await worker.text("menu", offers("menu:report"))
        await worker.text("/help", says("/report"))
        await worker.text("/menu", offers("menu:report"))
        forged_answered = [m for m in worker.messages() if "forget:yes" in m.choice_ids]
        assert forged_answered == [], "the forged /forget was never read"
        assert not bot.task.done()


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_wvb_run_serves_telegram_and_whatsapp_side_by_side_and_stops_on_sigterm(
    backend: Backend,
    fake_whatsapp: FakeWhatsAppServer,
    fake_telegram: FakeTelegramServer,
    tmp_path: Path,
) -> None:
    """`wvb run` as an operator runs it, one process with both messengers set: each worker is
    answered on their own messenger, SIGTERM stops both cleanly, and at DEBUG the log holds
    no phone number, token, app secret or verify token."""
    settings = whatsapp_settings(backend, fake_whatsapp)
    env = backend.environment(settings) | {
        "WVB_TELEGRAM_TOKEN": fake_telegram.token,
        "WVB_TELEGRAM_API_BASE": fake_telegram.base_url,
        "WVB_WHATSAPP_TOKEN": fake_whatsapp.token,
        "WVB_WHATSAPP_PHONE_NUMBER_ID": fake_whatsapp.phone_number_id,
        "WVB_WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
        "WVB_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WVB_WHATSAPP_API_BASE": fake_whatsapp.base_url,
        "WVB_WHATSAPP_LISTEN": settings.whatsapp_listen,
        "WVB_LOG_LEVEL": "DEBUG",
    }
    upgrade = await asyncio.create_subprocess_exec(WVB, "db", "upgrade", env=env, cwd=tmp_path)
    assert await upgrade.wait() == 0
    process = await start_process(env, tmp_path, fake_telegram, stdout=asyncio.subprocess.PIPE)
    host, port = settings.whatsapp_host_port
    try:
        async with WebhookDeliverer(f"http://{host}:{port}/whatsapp/webhook") as deliverer:
            assert await deliverer.verify(VERIFY_TOKEN, "4242") == (200, "4242")
            on_whatsapp = SimulatedWaUser(PHONE)
            assert await deliverer.deliver(on_whatsapp.text("hello")) == [200]
            deadline = time.monotonic() + 30
            while not any("lang:en" in m.choice_ids for m in fake_whatsapp.messages_to(PHONE)):
                assert time.monotonic() < deadline, "no language picker on WhatsApp"
                await asyncio.sleep(0.05)
        on_telegram = fake_telegram.user(424242, language_code="th")
        await ask(fake_telegram, on_telegram, lambda: on_telegram.send_command("start"),
                  lambda m: "lang:en" in data_of(m))  # fmt: skip
        logs = await stop_and_read(process)
    finally:
        await kill_if_running(process)
    assert "WhatsApp channel ready" in logs
    assert "stopped cleanly" in logs
    for leak in (PHONE, fake_whatsapp.token, DEFAULT_APP_SECRET, VERIFY_TOKEN, "424242"):
        assert leak not in logs, f"{leak!r} leaked into the log"
    assert "Traceback" not in logs


async def test_a_thai_worker_types_the_translated_menu_word(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        worker = bot.worker("66822222222")
        await onboard(worker, "th")
        await worker.text("/learn", lambda m: "menu:report" not in m.choice_ids)
        menu = await worker.text("เมนู", offers("menu:report"))
        assert menu.type == "interactive"
        list_button = menu.payload["interactive"]["action"].get("button")
        assert list_button in (None, "เลือก"), "a list opens with the Thai 'Choose'"


async def test_a_confirmed_fix_is_followed_by_the_retaliation_check_in_and_a_yes_opens_a_case(
    backend: Backend, fake_whatsapp: FakeWhatsAppServer
) -> None:
    """After the worker's yes closes the case, the check-in 30 days later reaches them on
    WhatsApp (inside their window: they had just written) and a "yes, I was treated badly" opens
    a linked urgent case; /stop and /subscribe are typed words too."""
    async with whatsapp_bot(backend, fake_whatsapp) as bot:
        worker = bot.worker("66833333333")
        await onboard(worker)
        reference, _ = await send_a_report(worker, "Overtime was not paid.")
        env = backend.environment(bot.settings)
        done = await run_wvb(env, "cases", "remediate", reference, "--summary", "Paid in full.")
        assert done.returncode == 0, done.stderr
        await worker.wait_for(offers(f"val:{reference}:yes"), 0)
        await worker.press(f"val:{reference}:yes", lambda m: True)
        shown = json.loads((await run_wvb(env, "cases", "show", reference, "--json")).stdout)
        assert shown["status"] == "closed"

        await worker.text("/stop", says("/subscribe"))
        await worker.text("/subscribe", lambda m: True)
        async with open_app(bot.settings) as app:  # the clock, 31 days on
            later = utc_now() + timedelta(days=31)
            assert await CaseClock(app.database, app.outbox, now=lambda: later).run_due() >= 1
        check_in = await worker.wait_for(offers(f"ret:{reference}:yes"), 0)
        assert "treated you badly" in (check_in.text or "")
        await worker.press(f"ret:{reference}:yes", says("Case reference"))
    async with open_app(bot.settings) as app, app.database.sessions() as session:
        urgent = await session.scalar(select(func.count()).where(Case.urgent.is_(True)))
    assert urgent == 1, "a linked urgent case was opened"

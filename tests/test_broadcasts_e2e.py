"""Broadcasts end to end: workers opt in over the fake Bot API, staff create broadcasts with the
real `wvb` command, the running bot's relay sends them, and the server's record is the truth."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from storage.database import Database
from storage.models import Worker
from tests.bot_driver import ask, data_of, onboard, run_wvb, start_bot, stop_bot
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer, SentMessage, SimulatedUser


async def wait_done(env: dict[str, str], broadcast_id: int, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await run_wvb(env, "broadcast", "status", str(broadcast_id), "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        if status["state"] in ("done", "cancelled", "waiting"):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"broadcast stuck: {status}"
        await asyncio.sleep(0.3)


def broadcasts_to(
    server: FakeTelegramServer, user: SimulatedUser, marker: str
) -> list[SentMessage]:
    return [m for m in server.messages_to(user.chat_id) if marker in m.text]


async def test_broadcast_reaches_exactly_the_subscribed_workers_of_the_segment(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str, tmp_path: Path
) -> None:
    bot = await start_bot(backend, fake_telegram, telegram_runtime, quiet_hours="")
    env = backend.environment(bot.settings) | {"WVB_QUIET_HOURS": ""}
    try:
        added = await run_wvb(env, "workplaces", "add", "Golden Fish Co.", "--json")
        assert added.returncode == 0, added.stderr
        golden = json.loads(added.stdout)["id"]
        await run_wvb(env, "workplaces", "add", "Sunrise Garments")

        thai_golden = fake_telegram.user(7_100_001, language_code="th")
        thai_other = fake_telegram.user(7_100_002, language_code="th")
        burmese = fake_telegram.user(7_100_003, language_code="my")
        not_subscribed = fake_telegram.user(7_100_004, language_code="en")
        stopped = fake_telegram.user(7_100_005, language_code="es")
        blocker = fake_telegram.user(7_100_006, language_code="km")
        await onboard(fake_telegram, thai_golden, "th", subscribe=True, workplace_id=golden)
        await onboard(fake_telegram, thai_other, "th", subscribe=True)
        await onboard(fake_telegram, burmese, "my", subscribe=True, workplace_id=golden)
        await onboard(fake_telegram, not_subscribed, "en")
        await onboard(fake_telegram, stopped, "es", subscribe=True)
        await ask(fake_telegram, stopped, lambda: stopped.send_command("stop"),
                  lambda m: "/subscribe" in m.text)  # fmt: skip
        await onboard(fake_telegram, blocker, "km", subscribe=True)
        fake_telegram.block(blocker.chat_id)

        dry = await run_wvb(env, "broadcast", "create", "--topic", "pay", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["languages"] == {"km": 1, "my": 1, "th": 2}

        # A lesson broadcast to everyone subscribed, each in their own language.
        created = await run_wvb(env, "broadcast", "create", "--topic", "pay", "--json")
        assert created.returncode == 0, created.stderr
        lesson = json.loads(created.stdout)["id"]
        status = await wait_done(env, lesson)
        assert status["state"] == "done"
        assert (status["total"], status["sent"], status["failed"], status["pending"]) == (
            4,
            3,
            1,
            0,
        )
        assert status["blocked"] == 1
        received = {
            user.chat_id: [m for m in fake_telegram.messages_to(user.chat_id) if has_lesson(m)]
            for user in (thai_golden, thai_other, burmese, not_subscribed, stopped, blocker)
        }
        assert [len(received[u.chat_id]) for u in (thai_golden, thai_other, burmese)] == [1, 1, 1]
        assert received[not_subscribed.chat_id] == []
        assert received[stopped.chat_id] == []
        assert received[blocker.chat_id] == []
        thai_text = received[thai_golden.chat_id][0].text
        burmese_text = received[burmese.chat_id][0].text
        assert "/stop" in thai_text
        assert any("\u0e00" <= ch <= "\u0e7f" for ch in thai_text), "Thai for the Thai worker"
        assert any("\u1000" <= ch <= "\u109f" for ch in burmese_text), "Burmese for the Burmese"
        sent_ok = [
            r for r in fake_telegram.requests
            if r.method == "sendMessage" and r.ok and "learn:open:pay" in str(r.params)
        ]  # fmt: skip
        assert len(sent_ok) == status["sent"], "status counts match the server's record"

        # The lesson button opens the lesson, from wherever the worker is.
        button = received[thai_golden.chat_id][0]
        page = await ask(
            fake_telegram,
            thai_golden,
            lambda: thai_golden.press("learn:open:pay", button),
            lambda m: any(p.startswith("learn:") for p in data_of(m)) and m is not button,
        )
        assert page.text

        # A staff text to Thai speakers of one workplace; the others are not in the segment.
        news = tmp_path / "news-th.txt"
        news.write_text("ข่าวทดสอบ: ประชุมคนงานวันอาทิตย์", encoding="utf-8")
        created = await run_wvb(
            env, "broadcast", "create", "--text-file", f"th={news}",
            "--segment", "language=th,workplace=Golden Fish Co.", "--json",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        status = await wait_done(env, json.loads(created.stdout)["id"])
        assert (status["total"], status["sent"]) == (1, 1)
        assert len(broadcasts_to(fake_telegram, thai_golden, "ข่าวทดสอบ")) == 1
        assert broadcasts_to(fake_telegram, thai_other, "ข่าวทดสอบ") == []
        assert broadcasts_to(fake_telegram, burmese, "ข่าวทดสอบ") == []

        # /forget deletes broadcast messages from the chat too, and ends the subscription.
        lesson_message = received[thai_other.chat_id][0]
        confirm = await ask(fake_telegram, thai_other, lambda: thai_other.send_command("forget"),
                            lambda m: "forget:yes" in data_of(m))  # fmt: skip
        await ask(fake_telegram, thai_other, lambda: thai_other.press("forget:yes", confirm),
                  lambda m: m.message_id > confirm.message_id)  # fmt: skip
        await asyncio.sleep(0.3)
        assert fake_telegram.is_deleted(thai_other.chat_id, lesson_message.message_id)

        # The blocked worker is not even a recipient any more ...
        dry = await run_wvb(env, "broadcast", "create", "--topic", "fees", "--dry-run", "--json")
        assert json.loads(dry.stdout)["languages"] == {"my": 1, "th": 1}
        # ... until they come back and write to the bot.
        fake_telegram.unblock(blocker.chat_id)
        await ask(fake_telegram, blocker, lambda: blocker.send_command("menu"),
                  lambda m: "menu:report" in data_of(m))  # fmt: skip
        dry = await run_wvb(env, "broadcast", "create", "--topic", "fees", "--dry-run", "--json")
        assert json.loads(dry.stdout)["languages"] == {"km": 1, "my": 1, "th": 1}
    finally:
        await stop_bot(bot)


def has_lesson(message: SentMessage) -> bool:
    return "learn:open:pay" in data_of(message)


async def test_quiet_hours_hold_a_broadcast_and_status_says_so_but_urgent_goes(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    quiet = f"{start:%H}:00-{end:%H}:00"  # now is inside, in UTC
    bot = await start_bot(
        backend, fake_telegram, telegram_runtime, quiet_hours=quiet, timezone="UTC"
    )
    env = backend.environment(bot.settings) | {"WVB_QUIET_HOURS": quiet, "WVB_TIMEZONE": "UTC"}
    try:
        worker = fake_telegram.user(7_200_001, language_code="en")
        await onboard(fake_telegram, worker, "en", subscribe=True)
        text = tmp_path / "en.txt"
        text.write_text("Meeting on Sunday.", encoding="utf-8")
        created = await run_wvb(env, "broadcast", "create", "--text-file", f"en={text}", "--json")
        held = json.loads(created.stdout)["id"]
        status = await wait_done(env, held)
        assert status["state"] == "waiting"
        assert (status["pending"], status["waiting_quiet_hours"]) == (1, 1)
        assert "quiet hours" in status["note"]
        urgent_text = tmp_path / "urgent.txt"
        urgent_text.write_text("Fire drill: leave the dormitory now.", encoding="utf-8")
        created = await run_wvb(
            env, "broadcast", "create", "--text-file", f"en={urgent_text}", "--urgent", "--json"
        )
        status = await wait_done(env, json.loads(created.stdout)["id"])
        assert (status["state"], status["sent"]) == ("done", 1)
        assert len(broadcasts_to(fake_telegram, worker, "Fire drill")) == 1
        assert broadcasts_to(fake_telegram, worker, "Meeting on Sunday") == []
    finally:
        await stop_bot(bot)


async def test_bad_broadcast_requests_get_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'wvb.sqlite3'}"
    settings = Backend("sqlite-memory", url, None, "unused").settings()  # checked once: the
    # answers do not depend on the backend
    database = Database(settings.database_url)
    await database.upgrade()
    await database.dispose()
    env = Backend("sqlite-memory", url, None, "unused").environment(settings)
    cases = [
        (["--topic", "nonsense"], "unknown topic"),
        (["--topic", "pay", "--segment", "language=xx"], "unknown language"),
        (["--topic", "pay", "--segment", "workplace=Nowhere"], "no workplace"),
        (["--topic", "pay", "--segment", "color=red"], "use language=CODE"),
        (["--topic", "pay", "--at", "tomorrow"], "ISO 8601"),
        (["--topic", "pay", "--at", "2026-12-01T09:00"], "time zone"),
        (["--text-file", "xx=/nonexistent"], "cannot read"),
        ([], "either --topic"),
    ]
    for arguments, expected in cases:
        result = await run_wvb(env, "broadcast", "create", *arguments, "--json")
        assert result.returncode != 0, arguments
        assert expected in result.stderr, (arguments, result.stderr)
        assert result.stderr.count("\n") == 1, "one line, no traceback"
        assert result.stdout == ""
    result = await run_wvb(env, "broadcast", "status", "999", "--json")
    assert (result.returncode, result.stderr.strip()) == (1, "error: no broadcast 999")


async def test_no_raw_chat_id_is_stored_with_a_broadcast(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    bot = await start_bot(backend, fake_telegram, telegram_runtime, quiet_hours="")
    env = backend.environment(bot.settings) | {"WVB_QUIET_HOURS": ""}
    try:
        worker = fake_telegram.user(7_300_777, language_code="en")
        await onboard(fake_telegram, worker, "en", subscribe=True)
        created = await run_wvb(env, "broadcast", "create", "--topic", "safety", "--json")
        await wait_done(env, json.loads(created.stdout)["id"])
        database = Database(bot.settings.database_url)
        try:
            async with database.sessions() as session:
                stored = await session.scalar(select(Worker))
                assert stored is not None
                assert stored.subscribed
        finally:
            await database.dispose()
        if bot.settings.redis_url:
            from redis.asyncio import Redis

            client = Redis.from_url(bot.settings.redis_url)
            try:
                keys = [key async for key in client.scan_iter(match=f"{backend.redis_prefix}:*")]
            finally:
                await client.aclose()
            assert not [key for key in keys if b"7300777" in key]
    finally:
        await stop_bot(bot)


async def test_educators_broadcast_from_the_staff_chat_and_case_handlers_cannot(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    bot = await start_bot(backend, fake_telegram, telegram_runtime, quiet_hours="")
    env = backend.environment(bot.settings) | {"WVB_QUIET_HOURS": ""}
    try:
        for name, role, telegram_id in (("Ana", "educator", 7_400_001),
                                        ("Mai", "case_handler", 7_400_002)):  # fmt: skip
            added = await run_wvb(env, "staff", "add", name, "--role", role,
                                  "--telegram-id", str(telegram_id))  # fmt: skip
            assert added.returncode == 0, added.stderr
        worker = fake_telegram.user(7_400_100, language_code="id")
        await onboard(fake_telegram, worker, "id", subscribe=True)
        educator = fake_telegram.user(7_400_001, language_code="en")
        handler = fake_telegram.user(7_400_002, language_code="en")

        refused = await ask(fake_telegram, handler, lambda: handler.send_text("/broadcast pay"),
                            lambda m: "cannot" in m.text)  # fmt: skip
        assert "case_handler" in refused.text
        counted = await ask(fake_telegram, educator,
                            lambda: educator.send_text("/broadcast dry pay language=id"),
                            lambda m: "Would reach" in m.text)  # fmt: skip
        assert "1 worker" in counted.text
        created = await ask(fake_telegram, educator,
                            lambda: educator.send_text("/broadcast pay language=id"),
                            lambda m: "Broadcast" in m.text)  # fmt: skip
        broadcast_id = created.text.split()[1]
        status = await wait_done(env, int(broadcast_id))
        assert (status["sent"], status["total"]) == (1, 1)
        watched = await run_wvb(env, "broadcast", "watch", broadcast_id, "--interval", "0.2")
        assert watched.returncode == 0, watched.stderr
        assert f"broadcast {broadcast_id} done: 1 sent, 0 failed" in watched.stdout
        shown = await ask(fake_telegram, educator,
                          lambda: educator.send_text(f"/bstatus {broadcast_id}"),
                          lambda m: f"Broadcast {broadcast_id}:" in m.text)  # fmt: skip
        assert "1/1 sent" in shown.text
        wrong = await ask(fake_telegram, educator, lambda: educator.send_text("/broadcast nope"),
                          lambda m: "Refused" in m.text)  # fmt: skip
        assert "unknown topic" in wrong.text
        lesson = [m for m in fake_telegram.messages_to(worker.chat_id) if has_lesson(m)]
        assert len(lesson) == 1
    finally:
        await stop_bot(bot)

"""Broadcasts end to end: workers opt in on their messenger (Telegram on both runtimes, WhatsApp),
staff create broadcasts with the real `wvb` command (or from the Telegram staff chat), the running
bot's relay sends them, and the fake server's record is the truth.

On WhatsApp these workers have just written, so their 24-hour window is open; what happens
outside it (the neutral template, or skipping) is tested with the window's own code."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from storage.database import Database
from storage.models import Worker as WorkerRow
from tests.bot_driver import run_wvb
from tests.conftest import Backend
from tests.messenger_driver import Messenger, Said, Worker, ask, has, onboard, press


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


def broadcasts_to(user: Worker, marker: str) -> list[Said]:
    return [m for m in user.messages() if marker in m.text]


def has_lesson(message: Said) -> bool:
    return "learn:open:pay" in message.payloads


def lesson_sends(messenger: Messenger) -> int:
    """How many lesson messages the messenger's server accepted."""
    return sum(1 for m in messenger.sent() if has_lesson(m))


async def test_broadcast_reaches_exactly_the_subscribed_workers_of_the_segment(
    messenger: Messenger, tmp_path: Path
) -> None:
    await messenger.start(quiet_hours="")
    env = messenger.environment() | {"WVB_QUIET_HOURS": ""}
    added = await run_wvb(env, "workplaces", "add", "Golden Fish Co.", "--json")
    assert added.returncode == 0, added.stderr
    golden = json.loads(added.stdout)["id"]
    await run_wvb(env, "workplaces", "add", "Sunrise Garments")

    thai_golden = messenger.user(7_100_001, language_code="th")
    thai_other = messenger.user(7_100_002, language_code="th")
    burmese = messenger.user(7_100_003, language_code="my")
    not_subscribed = messenger.user(7_100_004, language_code="en")
    stopped = messenger.user(7_100_005, language_code="es")
    blocker = messenger.user(7_100_006, language_code="km")
    await onboard(thai_golden, "th", subscribe=True, workplace_id=golden)
    await onboard(thai_other, "th", subscribe=True)
    await onboard(burmese, "my", subscribe=True, workplace_id=golden)
    await onboard(not_subscribed, "en")
    await onboard(stopped, "es", subscribe=True)
    await ask(stopped, lambda: stopped.command("stop"), lambda m: "/subscribe" in m.text)
    await onboard(blocker, "km", subscribe=True)
    messenger.block(blocker)

    dry = await run_wvb(env, "broadcast", "create", "--topic", "pay", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["languages"] == {"km": 1, "my": 1, "th": 2}

    # A lesson broadcast to everyone subscribed, each in their own language.
    lessons_before = lesson_sends(messenger)
    created = await run_wvb(env, "broadcast", "create", "--topic", "pay", "--json")
    assert created.returncode == 0, created.stderr
    lesson = json.loads(created.stdout)["id"]
    status = await wait_done(env, lesson)
    assert status["state"] == "done"
    assert (status["total"], status["sent"], status["failed"], status["pending"]) == (4, 3, 1, 0)
    assert status["blocked"] == 1
    received = {
        user.address: [m for m in user.messages() if has_lesson(m)]
        for user in (thai_golden, thai_other, burmese, not_subscribed, stopped, blocker)
    }
    assert [len(received[u.address]) for u in (thai_golden, thai_other, burmese)] == [1, 1, 1]
    assert received[not_subscribed.address] == []
    assert received[stopped.address] == []
    assert received[blocker.address] == []
    thai_text = received[thai_golden.address][0].text
    burmese_text = received[burmese.address][0].text
    assert "/stop" in thai_text
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in thai_text), "Thai for the Thai worker"
    assert any("\u1000" <= ch <= "\u109f" for ch in burmese_text), "Burmese for the Burmese"
    sent_ok = lesson_sends(messenger) - lessons_before
    assert sent_ok == status["sent"], "status counts match the server's record"

    # The lesson button opens the lesson, from wherever the worker is.
    button = received[thai_golden.address][0]
    page = await ask(
        thai_golden,
        lambda: thai_golden.press("learn:open:pay", button),
        lambda m: any(p.startswith("learn:") for p in m.payloads) and m.index != button.index,
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
    assert len(broadcasts_to(thai_golden, "ข่าวทดสอบ")) == 1
    assert broadcasts_to(thai_other, "ข่าวทดสอบ") == []
    assert broadcasts_to(burmese, "ข่าวทดสอบ") == []

    # /forget ends the subscription (and on Telegram deletes the broadcast messages too).
    lesson_message = received[thai_other.address][0]
    confirm = await ask(thai_other, lambda: thai_other.command("forget"), has("forget:yes"))
    await press(thai_other, "forget:yes", lambda m: m.index > confirm.index)
    if messenger.deletes:
        await asyncio.sleep(0.3)
        assert messenger.telegram.is_deleted(int(thai_other.address), lesson_message.raw.message_id)

    # The blocked worker is not even a recipient any more ...
    dry = await run_wvb(env, "broadcast", "create", "--topic", "fees", "--dry-run", "--json")
    assert json.loads(dry.stdout)["languages"] == {"my": 1, "th": 1}
    # ... until they come back and write to the bot.
    messenger.unblock(blocker)
    await ask(blocker, lambda: blocker.command("menu"), has("menu:report"))
    dry = await run_wvb(env, "broadcast", "create", "--topic", "fees", "--dry-run", "--json")
    assert json.loads(dry.stdout)["languages"] == {"km": 1, "my": 1, "th": 1}


async def test_quiet_hours_hold_a_broadcast_and_status_says_so_but_urgent_goes(
    messenger: Messenger, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    quiet = f"{start:%H}:00-{end:%H}:00"  # now is inside, in UTC
    await messenger.start(quiet_hours=quiet, timezone="UTC")
    env = messenger.environment() | {"WVB_QUIET_HOURS": quiet, "WVB_TIMEZONE": "UTC"}
    worker = messenger.user(7_200_001, language_code="en")
    await onboard(worker, "en", subscribe=True)
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
    assert len(broadcasts_to(worker, "Fire drill")) == 1
    assert broadcasts_to(worker, "Meeting on Sunday") == []


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


async def test_no_raw_chat_id_is_stored_with_a_broadcast(messenger: Messenger) -> None:
    """No messenger id (Telegram chat id, WhatsApp number) in a Redis key."""
    await messenger.start(quiet_hours="")
    env = messenger.environment() | {"WVB_QUIET_HOURS": ""}
    worker = messenger.user(7_300_777, language_code="en")
    await onboard(worker, "en", subscribe=True)
    created = await run_wvb(env, "broadcast", "create", "--topic", "safety", "--json")
    await wait_done(env, json.loads(created.stdout)["id"])
    database = Database(messenger.settings.database_url)
    try:
        async with database.sessions() as session:
            stored = await session.scalar(select(WorkerRow))
            assert stored is not None
            assert stored.subscribed
    finally:
        await database.dispose()
    if messenger.settings.redis_url:
        from redis.asyncio import Redis

        client = Redis.from_url(messenger.settings.redis_url)
        try:
            keys = [
                key async for key in client.scan_iter(match=f"{messenger.backend.redis_prefix}:*")
            ]
        finally:
            await client.aclose()
        assert not [key for key in keys if worker.identity.encode() in key]


async def test_educators_broadcast_from_the_staff_chat_and_case_handlers_cannot(
    messenger: Messenger,
) -> None:
    await messenger.start(quiet_hours="")
    env = messenger.environment() | {"WVB_QUIET_HOURS": ""}
    for name, role, telegram_id in (("Ana", "educator", 7_400_001),
                                    ("Mai", "case_handler", 7_400_002)):  # fmt: skip
        added = await run_wvb(env, "staff", "add", name, "--role", role,
                              "--telegram-id", str(telegram_id))  # fmt: skip
        assert added.returncode == 0, added.stderr
    worker = messenger.user(7_400_100, language_code="id")
    await onboard(worker, "id", subscribe=True)
    educator = messenger.staff_member(7_400_001)
    handler = messenger.staff_member(7_400_002)

    refused = await ask(handler, lambda: handler.text("/broadcast pay"),
                        lambda m: "cannot" in m.text)  # fmt: skip
    assert "case_handler" in refused.text
    counted = await ask(educator, lambda: educator.text("/broadcast dry pay language=id"),
                        lambda m: "Would reach" in m.text)  # fmt: skip
    assert "1 worker" in counted.text
    created = await ask(educator, lambda: educator.text("/broadcast pay language=id"),
                        lambda m: "Broadcast" in m.text)  # fmt: skip
    broadcast_id = created.text.split()[1]
    status = await wait_done(env, int(broadcast_id))
    assert (status["sent"], status["total"]) == (1, 1)
    watched = await run_wvb(env, "broadcast", "watch", broadcast_id, "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    assert f"broadcast {broadcast_id} done: 1 sent, 0 failed" in watched.stdout
    shown = await ask(educator, lambda: educator.text(f"/bstatus {broadcast_id}"),
                      lambda m: f"Broadcast {broadcast_id}:" in m.text)  # fmt: skip
    assert "1/1 sent" in shown.text
    wrong = await ask(educator, lambda: educator.text("/broadcast nope"),
                      lambda m: "Refused" in m.text)  # fmt: skip
    assert "unknown topic" in wrong.text
    lesson = [m for m in worker.messages() if has_lesson(m)]
    assert len(lesson) == 1

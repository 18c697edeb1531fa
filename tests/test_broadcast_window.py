"""Broadcasts and WhatsApp's 24-hour window, as staff choose per broadcast: ``skip`` the workers
outside it (counted), or send them the neutral template and the broadcast when they write. The
real broadcast relay and services on both databases, a sender that refuses like WhatsApp, and
`wvb broadcast create/status` as real commands."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from bot.app import App, open_app, redis_key_names
from bot.channels.broadcast_relay import BroadcastRelay
from bot.settings import Settings
from conversations.ports import WorkerRef
from services.broadcasts import Segment
from services.window_hold import HELD_REASON, WindowHold
from storage.models import BroadcastDelivery, utc_now
from storage.send_rate import MemorySendRate
from storage.whatsapp_window import MemoryWhatsAppWindow, RedisWhatsAppWindow, WhatsAppWindow
from tests.bot_driver import run_wvb
from tests.conftest import Backend
from tests.test_window_hold import WhatsAppLikeSender

#: (pseudonym, address, language): the first writes before each broadcast, the others do not.
INSIDE = ("pseudonym-inside", "66811111111", "th")
OUTSIDE = ("pseudonym-outside", "TH.1234567", "my")


@dataclass
class Broadcasting:
    app: App
    window: WhatsAppWindow
    sender: WhatsAppLikeSender
    relay: BroadcastRelay
    hold: WindowHold

    async def create(self, outside_window: str, text: str = "Union meeting on Sunday") -> int:
        await self.window.wrote(INSIDE[1], time.time())
        created = await self.app.broadcasts.create(
            "cli:test", {"en": text}, Segment(), fallback="default", outside_window=outside_window
        )
        return int(created["id"])

    async def status(self, broadcast_id: int) -> dict[str, object]:
        return await self.app.broadcasts.status("cli:test", broadcast_id, audited=False)

    def received(self, address: str) -> list[str]:
        return [text.split("\n")[0] for to, text in self.sender.sent if to == address]


@asynccontextmanager
async def broadcasting(settings: Settings) -> AsyncIterator[Broadcasting]:
    async with open_app(settings, upgrade_schema=True) as app:
        names = redis_key_names(app.settings, app.keys)
        window: WhatsAppWindow = (
            RedisWhatsAppWindow(app.redis, names) if app.redis else MemoryWhatsAppWindow(names)
        )
        for pseudonym, address, language in (INSIDE, OUTSIDE):
            await app.profiles.save(WorkerRef(pseudonym, "whatsapp", address), language)
            await app.profiles.set_subscribed(pseudonym, True)
        sender = WhatsAppLikeSender(window)
        relay = BroadcastRelay(
            app.database, app.keyring, sender, MemorySendRate(100, chat_interval=0.0),
            policy=app.broadcasts.policy, window=window,
        )  # fmt: skip
        yield Broadcasting(app, window, sender, relay, WindowHold(app.database))


async def test_skip_leaves_out_the_workers_outside_the_window_and_counts_them(
    backend: Backend,
) -> None:
    async with broadcasting(backend.settings(quiet_hours="")) as b:
        broadcast = await b.create("skip")
        await b.relay.drain()

        assert b.received(INSIDE[1]) == ["Union meeting on Sunday"]
        assert b.received(OUTSIDE[1]) == []
        assert b.sender.templates == [], "skip sends no template"
        status = await b.status(broadcast)
        assert (status["total"], status["sent"], status["skipped"], status["pending"]) == (
            2, 1, 1, 0,
        )  # fmt: skip
        assert (status["failed"], status["held_for_window"]) == (0, 0)
        assert status["outside_window"] == "skip"
        await b.relay.drain()  # the next pass finds it finished
        assert (await b.status(broadcast))["state"] == "done"
        # Their next message releases nothing: a skipped delivery is over.
        assert await b.window.wrote(OUTSIDE[1], time.time()) is True
        assert await b.hold.release(OUTSIDE[0], "whatsapp") == 0


async def test_template_asks_once_and_the_broadcasts_follow_when_the_worker_writes(
    backend: Backend,
) -> None:
    async with broadcasting(backend.settings(quiet_hours="")) as b:
        first = await b.create("template")
        second = await b.create("template", "Training on Monday")
        await b.relay.drain()

        assert b.received(INSIDE[1]) == ["Union meeting on Sunday", "Training on Monday"]
        assert b.received(OUTSIDE[1]) == []
        assert b.sender.templates == [(OUTSIDE[1], "my")], "one template, in their language"
        status = await b.status(first)
        assert (status["sent"], status["pending"], status["held_for_window"]) == (1, 1, 1)
        assert (status["skipped"], status["failed"]) == (0, 0)
        assert status["state"] == "waiting"
        assert "neutral template" in str(status["note"])
        async with b.app.database.sessions() as session:
            held = list(
                await session.scalars(
                    select(BroadcastDelivery).where(BroadcastDelivery.held_for_window.is_(True))
                )
            )
        assert [(d.attempts, d.last_error) for d in held] == [(0, HELD_REASON)] * 2

        assert await b.window.wrote(OUTSIDE[1], time.time()) is True
        assert await b.hold.release(OUTSIDE[0], "whatsapp") == 2
        await b.relay.drain()
        await b.relay.drain()
        assert sorted(b.received(OUTSIDE[1])) == ["Training on Monday", "Union meeting on Sunday"]
        for broadcast in (first, second):
            status = await b.status(broadcast)
            assert (status["state"], status["sent"], status["held_for_window"]) == ("done", 2, 0)


async def test_a_held_delivery_is_given_up_after_a_week_and_cancel_stops_it(
    backend: Backend,
) -> None:
    async with broadcasting(backend.settings(quiet_hours="")) as b:
        broadcast = await b.create("template")
        await b.relay.drain()
        async with b.app.database.sessions() as session:
            [give_up_at] = await session.scalars(
                select(BroadcastDelivery.next_attempt_at).where(
                    BroadcastDelivery.held_for_window.is_(True)
                )
            )
        assert give_up_at > utc_now() + timedelta(days=6)
        async with b.app.database.transaction() as session:
            await session.execute(
                update(BroadcastDelivery)
                .where(BroadcastDelivery.held_for_window.is_(True))
                .values(next_attempt_at=utc_now() - timedelta(seconds=1))
            )
        await b.relay.drain()
        assert b.received(OUTSIDE[1]) == []
        status = await b.status(broadcast)
        assert (status["state"], status["skipped"], status["pending"]) == ("done", 1, 0)

        cancelled = await b.create("template", "Another")
        await b.relay.drain()
        status = await b.app.broadcasts.cancel("cli:test", cancelled)
        assert (status["failed"], status["pending"], status["held_for_window"]) == (1, 0, 0)
        await b.window.wrote(OUTSIDE[1], time.time())
        assert await b.hold.release(OUTSIDE[0], "whatsapp") == 0, "cancelled: nothing to send"


async def test_wvb_broadcast_takes_the_choice_and_shows_what_was_skipped(
    backend: Backend, tmp_path: Path
) -> None:
    settings = backend.settings(quiet_hours="")
    async with broadcasting(settings):
        pass
    env = {**backend.environment(settings), "WVB_QUIET_HOURS": ""}
    text = tmp_path / "news.txt"
    text.write_text("Union meeting on Sunday", encoding="utf-8")

    wrong = await run_wvb(
        env, "broadcast", "create", "--text-file", f"en={text}",
        "--whatsapp-outside-window", "always",
    )  # fmt: skip
    assert wrong.returncode == 2, "not one of the choices: a usage mistake, nothing created"
    assert "skip" in wrong.stderr
    assert "template" in wrong.stderr

    dry = await run_wvb(
        env, "broadcast", "create", "--text-file", f"en={text}", "--fallback", "default",
        "--whatsapp-outside-window", "template", "--dry-run", "--json",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["whatsapp"] == 2
    made = await run_wvb(
        env, "broadcast", "create", "--text-file", f"en={text}", "--fallback", "default",
        "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    broadcast = json.loads(made.stdout)["id"]

    async with broadcasting(settings) as b:
        await b.window.wrote(INSIDE[1], time.time())
        await b.relay.drain()
    status = await run_wvb(env, "broadcast", "status", str(broadcast), "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert {"id", "state", "total", "sent", "failed", "pending"} <= set(shown), "the contract"
    assert (shown["skipped"], shown["held_for_window"], shown["outside_window"]) == (
        1, 0, "skip",
    )  # fmt: skip
    assert shown["total"] == shown["sent"] + shown["failed"] + shown["pending"] + shown["skipped"]
    line = await run_wvb(env, "broadcast", "status", str(broadcast))
    assert "1 skipped (outside WhatsApp's 24-hour window)" in line.stdout

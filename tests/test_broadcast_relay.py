"""The broadcast relay through real parts: real databases, real Redis, each Telegram runtime's
real broadcast sender (aiogram, python-telegram-bot) over HTTP to the fake Bot API (which
enforces its rate with 429s)."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, insert, select

from bot.channels.broadcast_relay import BroadcastRelay
from bot.channels.sending import Sender
from bot.settings import Settings
from locales import LANGUAGES
from services.broadcasts import BroadcastPolicy, BroadcastService, Segment
from services.workers import address_purpose
from storage.crypto import Keyring
from storage.database import Database
from storage.models import BroadcastDelivery, Worker, WorkerAddress
from storage.send_rate import MemorySendRate, RedisSendRate
from tests.bot_driver import unpaced_sender
from tests.conftest import Backend
from tests.fake_telegram_api import FakeTelegramServer

FIRST_CHAT = 80_000_000
NO_QUIET = BroadcastPolicy(quiet_window=None)


async def seed(settings: Settings, server: FakeTelegramServer, count: int) -> Keyring:
    """``count`` subscribed workers with Telegram addresses the fake server knows."""
    from bot.settings import resolve_keys

    keyring = Keyring(resolve_keys(settings).encryption_keys)
    database = Database(settings.database_url)
    await database.upgrade()
    try:
        rows = [
            {"pseudonym": secrets.token_hex(32), "language": list(LANGUAGES)[n % 8],
             "subscribed": True}
            for n in range(count)
        ]  # fmt: skip
        async with database.transaction() as session:
            await session.execute(insert(Worker), rows)
            ids = {
                pseudonym: worker_id
                for pseudonym, worker_id in await session.execute(
                    select(Worker.pseudonym, Worker.id)
                )
            }
            addresses = []
            for n, row in enumerate(rows):
                chat = FIRST_CHAT + n
                server.register_chat({"id": chat, "type": "private", "first_name": "W"})
                pseudonym = str(row["pseudonym"])
                addresses.append(
                    {
                        "worker_id": ids[pseudonym],
                        "channel": "telegram",
                        "address_ciphertext": keyring.encrypt(
                            str(chat).encode(),
                            address_purpose(pseudonym, "telegram", ids[pseudonym]),
                        ),
                    }
                )
            await session.execute(insert(WorkerAddress), addresses)
    finally:
        await database.dispose()
    return keyring


async def create_broadcast(settings: Settings) -> int:
    database = Database(settings.database_url)
    try:
        texts = {code: f"Broadcast test in {code}" for code in LANGUAGES}
        created = await BroadcastService(database, NO_QUIET).create(
            "test", texts, Segment(), urgent=False
        )
        return int(created["id"])
    finally:
        await database.dispose()


def relay_for(
    settings: Settings,
    keyring: Keyring,
    sender: Sender,
    rate: float,
    redis: Redis | None,
) -> tuple[BroadcastRelay, Database]:
    database = Database(settings.database_url)
    send_rate = RedisSendRate(redis, settings.redis_prefix, rate) if redis else MemorySendRate(rate)
    relay = BroadcastRelay(database, keyring, sender, send_rate, policy=NO_QUIET)
    return relay, database


async def test_two_relays_at_once_never_send_the_same_delivery_twice(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    settings = backend.settings()
    keyring = await seed(settings, fake_telegram, 300)
    broadcast = await create_broadcast(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    shared = MemorySendRate(150)  # one process: the memory bucket is shared by both relays
    senders = AsyncExitStack()
    relays = [
        relay_for(
            settings,
            keyring,
            await senders.enter_async_context(unpaced_sender(telegram_runtime, fake_telegram)),
            150,
            redis,
        )
        for _ in range(2)
    ]
    if redis is None:
        for relay, _ in relays:
            relay.rate = shared
    try:
        await asyncio.gather(*(relay.drain() for relay, _ in relays))
        counts = [fake_telegram.delivery_counts[FIRST_CHAT + n] for n in range(300)]
        assert counts == [1] * 300, "everyone exactly once"
        assert all(relay.stats.sent > 0 for relay, _ in relays), [r.stats for r, _ in relays]
        assert sum(relay.stats.sent for relay, _ in relays) == 300
        status = await BroadcastService(relays[0][1]).status("test", broadcast)
        assert (status["sent"], status["pending"], status["failed"]) == (300, 0, 0)
    finally:
        await senders.aclose()
        for _, database in relays:
            await database.dispose()
        if redis is not None:
            await redis.aclose()


async def test_a_relay_faster_than_the_api_waits_out_429s_and_loses_nothing(
    backend: Backend, telegram_runtime: str
) -> None:
    server = FakeTelegramServer(global_rate_per_second=40, per_chat_rate_per_second=1)
    await server.start()
    settings = backend.settings()
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        keyring = await seed(settings, server, 120)
        broadcast = await create_broadcast(settings)
        senders = AsyncExitStack()
        sender = await senders.enter_async_context(unpaced_sender(telegram_runtime, server))
        relay, database = relay_for(settings, keyring, sender, 120, redis)  # 3x the API's cap
        try:
            await relay.drain()
            await asyncio.sleep(0)
            while True:  # 429'd rows come back after retry_after
                async with database.sessions() as session:
                    pending = await session.scalar(
                        select(func.count()).where(BroadcastDelivery.status == "pending")
                    )
                if not pending:
                    break
                await asyncio.sleep(0.5)
                await relay.drain()
            assert server.too_many_requests > 0, "the API did push back"
            assert relay.stats.rate_limited > 0
            counts = [server.delivery_counts[FIRST_CHAT + n] for n in range(120)]
            assert counts == [1] * 120
            status = await BroadcastService(database).status("test", broadcast)
            assert (status["sent"], status["failed"]) == (120, 0)
        finally:
            await senders.aclose()
            await database.dispose()
    finally:
        await server.stop()
        if redis is not None:
            await redis.aclose()


async def test_the_redis_bucket_is_one_rate_for_every_process(redis_prefix: str) -> None:
    from tests.conftest import REDIS_URL

    clients = [Redis.from_url(REDIS_URL) for _ in range(3)]
    try:
        rates = [RedisSendRate(client, redis_prefix, rate=50) for client in clients]
        taken = 0
        started = asyncio.get_running_loop().time()

        async def take(rate: RedisSendRate) -> None:
            nonlocal taken
            while asyncio.get_running_loop().time() - started < 2.0:
                granted = await rate.take(5)
                taken += granted

        await asyncio.gather(*(take(rate) for rate in rates))
        # 2 s at 50/s plus the 5-token burst: three takers together get no more than one.
        assert 90 <= taken <= 50 * 2 + 5 + 5
        await rates[0].pause(1.0)
        paused_at = asyncio.get_running_loop().time()
        await rates[1].take(1)
        assert asyncio.get_running_loop().time() - paused_at >= 0.9, "a 429 pauses everyone"
        gaps = await rates[2].chat_slots([1, 2, 1])
        assert gaps == [True, True, False], "one message a second per chat"
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        ("2026-11-22T14:30:00+00:00", "Asia/Bangkok", "2026-11-23T00:00:00+00:00"),  # 21:30 BKK
        ("2026-11-22T23:30:00+00:00", "Asia/Bangkok", "2026-11-23T00:00:00+00:00"),  # 06:30 BKK
        ("2026-11-22T05:00:00+00:00", "Asia/Bangkok", None),  # noon in Bangkok
        ("2026-11-22T05:00:00+00:00", "America/Mexico_City", "2026-11-22T13:00:00+00:00"),
    ],
)
def test_quiet_hours_are_local_time(now: str, zone: str, expected: str | None) -> None:
    policy = BroadcastPolicy(quiet_window=(21 * 60, 7 * 60))
    until = policy.quiet_until(datetime.fromisoformat(now), zone)
    assert (until.astimezone(UTC).isoformat() if until else None) == expected


def test_time_zone_comes_from_workplace_then_language_then_default() -> None:
    policy = BroadcastPolicy(default_timezone="UTC", language_timezones={"my": "Asia/Bangkok"})
    assert policy.timezone_for("my", "Asia/Yangon") == "Asia/Yangon"
    assert policy.timezone_for("my", None) == "Asia/Bangkok"
    assert policy.timezone_for("th", None) == "UTC"


async def where_rows_are(database: Database) -> list[tuple[object, ...]]:
    """Delivery rows by status, claimed or not, seconds until due, attempts and last error:
    what a stalled resume is waiting for."""
    now = datetime.now(UTC)
    async with database.sessions() as session:
        rows = await session.execute(
            select(
                BroadcastDelivery.status,
                BroadcastDelivery.claim.is_not(None),
                BroadcastDelivery.next_attempt_at,
                BroadcastDelivery.attempts,
                BroadcastDelivery.last_error,
            )
        )
        summary = Counter(
            (status, claimed, round((due - now).total_seconds()), attempts, error)
            for status, claimed, due, attempts, error in rows
        )
    return sorted(summary.items(), key=str)


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL of a child process")
# One kill-and-resume run is enough: the PostgreSQL+Redis one, where claims race hardest.
@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_killed_relay_resumes_and_repeats_at_most_what_was_in_flight(
    backend: Backend, fake_telegram: FakeTelegramServer, telegram_runtime: str
) -> None:
    settings = backend.settings()
    count = 240
    keyring = await seed(settings, fake_telegram, count)
    await create_broadcast(settings)
    env = backend.environment(settings) | {
        "WVB_TELEGRAM_TOKEN": fake_telegram.token,
        "WVB_TELEGRAM_API_BASE": fake_telegram.base_url,
        "WVB_TELEGRAM_RUNTIME": telegram_runtime,
        "WVB_BROADCAST_RATE": "40",
        "WVB_QUIET_HOURS": "",
    }
    del keyring
    wvb = str(Path(sys.executable).parent / "wvb")

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(wvb, "broadcast", "relay", env=env)

    relay = await start()
    while sum(fake_telegram.delivery_counts.values()) < count // 3:
        await asyncio.sleep(0.05)
    relay.send_signal(signal.SIGKILL)
    await relay.wait()
    database = Database(settings.database_url)
    try:
        async with database.sessions() as session:
            in_flight = await session.scalar(
                select(func.count()).where(
                    BroadcastDelivery.status == "pending", BroadcastDelivery.claim.is_not(None)
                )
            )
        relay = await start()
        try:
            # The rows the killed relay had claimed come back when their claim runs out
            # (CLAIM_SECONDS); a send that fails on a starved machine waits 30 s more. Two
            # minutes is far beyond both, even with the whole suite running on two cores.
            deadline = asyncio.get_running_loop().time() + 120
            while len(fake_telegram.delivery_counts) < count:
                if asyncio.get_running_loop().time() >= deadline:
                    pytest.fail(f"resume stalled: {await where_rows_are(database)}")
                await asyncio.sleep(0.2)
        finally:
            relay.send_signal(signal.SIGTERM)
            assert await relay.wait() == 0
    finally:
        await database.dispose()
    counts = [fake_telegram.delivery_counts[FIRST_CHAT + n] for n in range(count)]
    assert min(counts) == 1, "nobody skipped"
    duplicates = sum(c - 1 for c in counts)
    assert duplicates <= (in_flight or 0), "only messages in flight at the kill are repeated"
    assert duplicates <= 2 * (10 + 64), "within the bound docs/ARCHITECTURE.md states"

"""Broadcast benchmark: N subscribed workers, one broadcast, real `wvb broadcast relay` processes
against a fake Bot API (its own process) that answers 429 above its rate cap.

    python -m bench.broadcast_bench --rate 30 --recipients 100000 --sample-seconds 120
    python -m bench.broadcast_bench --rate 1000 --recipients 100000
    python -m bench.broadcast_bench --rate 1000 --recipients 100000 --kill-after 40

It measures, from the fake server's own record: messages delivered per second (steady state,
first to last delivered second) as a fraction of the cap, 429s, duplicates and losses; from the
relay processes (/proc): CPU seconds per 1,000 messages and peak resident memory (VmHWM).
Prints one JSON document and a Markdown row for docs/BENCHMARKS.md. PostgreSQL and Redis must
run (WVB_TEST_POSTGRES_DSN / WVB_TEST_REDIS_URL, defaults as in the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from redis.asyncio import Redis
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import insert

from bot.settings import generate_key_lines
from locales import LANGUAGES
from services.broadcasts import BroadcastPolicy, BroadcastService, Segment
from services.workers import address_purpose
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Worker, WorkerAddress

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("WVB_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("WVB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FIRST_CHAT = 10_000_000
TOKEN = "123456:BENCHMARK-token-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 (the fake's)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and peak resident memory in bytes of a live process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return cpu, peak


async def fresh_database(name: str) -> str:
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def seed(database: Database, keyring: Keyring, recipients: int) -> None:
    languages = list(LANGUAGES)
    batch = 5000
    for start in range(0, recipients, batch):
        rows = []
        for index in range(start, min(recipients, start + batch)):
            rows.append(
                {
                    "id": index + 1,
                    "pseudonym": secrets.token_hex(32),
                    "language": languages[index % len(languages)],
                    "subscribed": True,
                }
            )
        async with database.transaction() as session:
            await session.execute(insert(Worker), rows)
            await session.execute(
                insert(WorkerAddress),
                [
                    {
                        "worker_id": row["id"],
                        "channel": "telegram",
                        "address_ciphertext": keyring.encrypt(
                            str(FIRST_CHAT + row["id"] - 1).encode(),
                            address_purpose(str(row["pseudonym"]), "telegram", int(row["id"])),
                        ),
                    }
                    for row in rows
                ],
            )
    async with database.transaction() as session:
        from sqlalchemy import text

        if database.url.startswith("postgresql"):
            await session.execute(
                text("SELECT setval('workers_id_seq', (SELECT max(id) FROM workers))")
            )


def relay_environment(
    url: str, keys: str, api_base: str, rate: float, prefix: str
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}
    for line in keys.splitlines():
        name, _, value = line.partition("=")
        env[name] = value
    env.update(
        {
            "WVB_DATABASE_URL": url,
            "WVB_REDIS_URL": REDIS,
            "WVB_REDIS_PREFIX": prefix,
            "WVB_TELEGRAM_TOKEN": TOKEN,
            "WVB_TELEGRAM_API_BASE": api_base,
            "WVB_BROADCAST_RATE": str(rate),
            "WVB_QUIET_HOURS": "",
            "WVB_LOG_LEVEL": "WARNING",
        }
    )
    return env


def start_relay(env: dict[str, str]) -> subprocess.Popen[bytes]:
    wvb = str(Path(sys.executable).parent / "wvb")
    return subprocess.Popen([wvb, "broadcast", "relay"], env=env, cwd=ROOT)  # noqa: S603


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    name = f"wvb_bench_{uuid.uuid4().hex[:8]}"
    url = await fresh_database(name)
    keys = generate_key_lines()
    key_values = dict(line.split("=", 1) for line in keys.splitlines())
    from bot.settings import _decode_key

    keyring = Keyring((_decode_key(key_values["WVB_ENCRYPTION_KEYS"]),))
    database = Database(url)
    prefix = f"wvbbench-{uuid.uuid4().hex[:8]}"
    stats_port = free_port()
    fake = subprocess.Popen(  # noqa: S603, ASYNC220 (started once, before timing)
        [sys.executable, "-m", "bench.fake_api_process", "--rate", str(arguments.rate),
         "--chats", str(arguments.recipients), "--first-chat", str(FIRST_CHAT),
         "--stats-port", str(stats_port), "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    relays: list[subprocess.Popen[bytes]] = []
    cpu_spent = 0.0
    peak_memory = 0
    killed_in_flight = None
    try:
        assert fake.stdout is not None
        api_base = fake.stdout.readline().decode().strip()
        await database.upgrade()
        started = time.monotonic()
        await seed(database, keyring, arguments.recipients)
        seeded = time.monotonic() - started
        service = BroadcastService(database, BroadcastPolicy(quiet_window=None))
        texts = {code: f"Benchmark message in {code}: your rights at work." for code in LANGUAGES}
        started = time.monotonic()
        created = await service.create("bench", texts, Segment(), urgent=True)
        materialised = time.monotonic() - started
        env = relay_environment(url, keys, api_base, arguments.rate, prefix)
        relays = [start_relay(env) for _ in range(arguments.relays)]
        began = time.monotonic()
        deadline = began + (arguments.sample_seconds or 24 * 3600)
        killed = False
        async with aiohttp.ClientSession() as http:

            async def stats() -> dict[str, Any]:
                async with http.get(f"http://127.0.0.1:{stats_port}/_bench/stats") as response:
                    return dict(await response.json())

            with Progress(
                TextColumn("broadcast"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}"), transient=True,
            ) as progress:  # fmt: skip
                task = progress.add_task("", total=arguments.recipients, detail="")
                while True:
                    await asyncio.sleep(1)
                    for relay in relays:
                        if relay.poll() is None:
                            cpu, peak = proc_usage(relay.pid)
                            relay.cpu_seen = cpu  # type: ignore[attr-defined]
                            peak_memory = max(peak_memory, peak)
                    current = await stats()
                    progress.update(
                        task,
                        completed=current["chats_reached"],
                        detail=f"429s {current['too_many_requests']}",
                    )
                    if (
                        arguments.kill_after
                        and not killed
                        and time.monotonic() - began >= arguments.kill_after
                    ):
                        before_kill = current["delivered"]
                        for relay in relays:
                            cpu_spent += getattr(relay, "cpu_seen", 0.0)
                            relay.send_signal(signal.SIGKILL)
                            relay.wait()
                        killed = True
                        killed_in_flight = await in_flight_rows(url)
                        relays = [start_relay(env) for _ in range(arguments.relays)]
                        progress.console.print(
                            f"SIGKILL after {arguments.kill_after}s at {before_kill} delivered; "
                            f"{killed_in_flight} rows were claimed and unrecorded; restarted"
                        )
                    if current["chats_reached"] >= arguments.recipients:
                        break
                    if time.monotonic() >= deadline:
                        break
        for relay in relays:
            cpu_spent += getattr(relay, "cpu_seen", 0.0)
            relay.send_signal(signal.SIGTERM)
        for relay in relays:
            relay.wait(timeout=60)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{stats_port}/_bench/stats") as response,
        ):
            final = dict(await response.json())
        status = await service.status("bench", created["id"], audited=False)
    finally:
        for relay in relays:
            if relay.poll() is None:
                relay.kill()
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)
        await database.dispose()
        client = Redis.from_url(REDIS)
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()
        if not arguments.keep_database:
            admin = await asyncpg.connect(POSTGRES)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

    seconds = sorted((int(k), v) for k, v in final["per_second"].items())
    # Steady state: whole seconds between the first and the last, both partial, left out.
    steady = seconds[1:-1] if len(seconds) > 2 else seconds
    steady_rate = sum(v for _, v in steady) / max(1, len(steady))
    delivered = final["delivered"]
    complete = final["chats_reached"] >= arguments.recipients
    return {
        "rate_cap": arguments.rate,
        "recipients": arguments.recipients,
        "relays": arguments.relays,
        "seed_seconds": round(seeded, 1),
        "materialise_seconds": round(materialised, 1),
        "delivered": delivered,
        "steady_messages_per_second": round(steady_rate, 1),
        "fraction_of_cap": round(steady_rate / arguments.rate, 3),
        "too_many_requests": final["too_many_requests"],
        "duplicates": final["duplicates"],
        "lost": final["missing_count"] if complete or arguments.sample_seconds == 0 else None,
        "complete": complete,
        "status": {k: status[k] for k in ("state", "total", "sent", "failed", "pending")},
        "status_matches_server": status["sent"] == final["chats_reached"],
        "cpu_seconds_per_1000": round(cpu_spent / max(1, delivered) * 1000, 2),
        "peak_rss_mb": round(peak_memory / 2**20, 1),
        "per_10_seconds": [
            round(sum(v for _, v in seconds[i : i + 10]) / len(seconds[i : i + 10]))
            for i in range(0, len(seconds), 10)
        ],
        "killed_after_seconds": arguments.kill_after,
        "claimed_unrecorded_at_kill": killed_in_flight,
    }


async def in_flight_rows(url: str) -> int:
    """Rows claimed by the killed relay and not yet recorded (they will be sent again)."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM broadcast_deliveries "
                "WHERE status = 'pending' AND claim IS NOT NULL"
            )
        )
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, required=True, help="the fake API's cap, msgs/s")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--sample-seconds", type=float, default=0, help="stop after; 0 = finish")
    parser.add_argument("--kill-after", type=float, default=0, help="SIGKILL the relays then")
    parser.add_argument("--relays", type=int, default=1, help="relay processes")
    parser.add_argument("--keep-database", action="store_true")
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, indent=2))
    print(
        f"| {result['rate_cap']:g}/s | {result['recipients']} | {result['relays']} | "
        f"{result['delivered']} | {result['steady_messages_per_second']} | "
        f"{result['fraction_of_cap']} | {result['too_many_requests']} | {result['duplicates']} | "
        f"{result['lost'] if result['lost'] is not None else 'n/a (sample)'} | "
        f"{result['cpu_seconds_per_1000']} | {result['peak_rss_mb']} MB |"
    )


if __name__ == "__main__":
    main()

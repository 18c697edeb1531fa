"""Flood figures for docs/SECURITY.md: one account filing 30 urgent reports as fast as it can; 200
updates in a burst from one account; 40 accounts making 5 wrong receipt-code guesses each before
an honest worker checks their case.

    python -m bench.quota_flood                # SQLite + memory counters
    python -m bench.quota_flood --redis        # SQLite + Redis counters (WVB_TEST_REDIS_URL)

Runs the real gateway, engine, services and storage with the default settings (real scrypt
cost), and once more with the update quota lifted so the report and alert quotas show on their
own. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bot.app import App, open_app
from bot.settings import load_settings
from conversations.ports import ReportDraft
from tests.conftest import REDIS_URL, fresh_keys
from tests.test_quotas import Worker, cases_stored, staff_alerts


async def thirty_urgent_reports(app: App) -> dict[str, Any]:
    worker = Worker(app, 9_000_001)
    await worker.onboard("en")
    started = time.perf_counter()
    attempts = [await worker.urgent_report() for _ in range(30)]
    seconds = time.perf_counter() - started
    receipts = sum(any(r.protect_content for r in attempt) for attempt in attempts)
    return {
        "seconds": round(seconds, 2),
        "cases_stored": await cases_stored(app),
        "staff_alerts": await staff_alerts(app),
        "receipts_shown": receipts,
        "refused_before_writing": sum(
            any("as many reports as one account" in r.text for r in attempt) for attempt in attempts
        ),
    }


async def burst_of_updates(app: App) -> dict[str, Any]:
    """200 /menu commands from one account as fast as it can send them."""
    worker = Worker(app, 9_000_002)
    await worker.onboard("en")
    started = time.perf_counter()
    answers = [await worker.command("menu") for _ in range(200)]
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "answered": sum(bool(a) and "very fast" not in a[0].text for a in answers),
        "slow_down": sum(bool(a) and "very fast" in a[0].text for a in answers),
        "dropped_unanswered": sum(not a for a in answers),
    }


async def forty_guessers(app: App) -> dict[str, Any]:
    owner = app.gateway.worker("telegram", 9_100_000, 9_100_000)
    code = app.cases.new_receipt_code()
    draft = ReportDraft(
        key="bench", language="en", categories=("wages",), workplace_id=None,
        workplace_text=None, agency=None, details=("not paid",), occurred="week",
        affected="few", danger_now=False, confidentiality="confidential", receipt_code=code,
    )  # fmt: skip
    reference = (await app.cases.submit(owner, draft)).reference
    started = time.perf_counter()
    outcomes: dict[str, int] = {}
    for account in range(40):
        guesser = app.gateway.worker("telegram", 9_200_000 + account, 1).pseudonym
        for guess in range(5):
            result = await app.cases.check_status(guesser, reference, f"WRONG{guess}")
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
    seconds = time.perf_counter() - started
    honest = app.gateway.worker("telegram", 9_300_000, 1).pseudonym
    answer = await app.cases.check_status(honest, reference, code)
    return {
        "guesses": outcomes,
        "seconds_for_200_guesses": round(seconds, 2),
        "honest_worker_gets": answer.outcome.value,
        "staff_alerts": await staff_alerts(app),
    }


async def run(use_redis: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"counters": "redis" if use_redis else "memory"}
    scenarios = {
        "thirty_urgent_reports_defaults": ({}, thirty_urgent_reports),
        "thirty_urgent_reports_update_quota_lifted": (
            {"quota_updates_per_minute": 100_000},
            thirty_urgent_reports,
        ),
        "two_hundred_updates_in_a_burst": ({}, burst_of_updates),
        "forty_accounts_times_five_guesses": ({}, forty_guessers),
    }
    for name, (overrides, scenario) in scenarios.items():
        with tempfile.TemporaryDirectory() as folder:
            settings = load_settings(
                _env_file=None,
                database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}",
                redis_url=REDIS_URL if use_redis else None,
                redis_prefix=f"wvbbench-{uuid.uuid4().hex[:8]}",
                **fresh_keys(),
                **overrides,
            )
            async with open_app(settings, upgrade_schema=True) as app:
                results[name] = await scenario(app)
                if app.redis is not None:
                    async for key in app.redis.scan_iter(f"{settings.redis_prefix}:*"):
                        await app.redis.delete(key)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", action="store_true", help="counters in Redis")
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(run(arguments.redis)), indent=2))


if __name__ == "__main__":
    main()

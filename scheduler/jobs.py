"""Builds the process's scheduler. Each bot process owns its scheduler and its in-memory job store;
job stores are never shared, because APScheduler 3 does not coordinate two schedulers on one store.
Work that must survive a restart lives in database rows that these jobs poll, not in the job store.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import delete

from scheduler.case_clock import CaseClock
from services.retention import RetentionService
from storage.database import Database
from storage.models import DraftAttachment, utc_now


async def check_database(database: Database) -> None:
    """A liveness probe: a failing database shows up in the log within a minute."""
    async with database.engine.connect() as connection:
        await connection.exec_driver_sql("SELECT 1")


async def purge_abandoned_evidence(database: Database, older_than: timedelta) -> int:
    """Files of drafts never confirmed go when the drafts themselves expire."""
    async with database.transaction() as session:
        result = await session.execute(
            delete(DraftAttachment).where(DraftAttachment.created_at < utc_now() - older_than)
        )
    purged = int(getattr(result, "rowcount", 0) or 0)
    if purged:
        await database.checkpoint()
    return purged


class ProcessScheduler:
    """APScheduler plus what its asyncio executor lacks: a way to stop that waits.

    ``AsyncIOScheduler.shutdown`` only *requests* the cancellation of a running job. A job still
    inside a database call when the app then closes the database leaves aiosqlite's worker thread
    waiting, and the process never exits (seen: `wvb chat` hung at exit while the retention job,
    which runs at start, was mid-query). Every job here is wrapped so its task is known, and
    ``stop`` cancels those tasks and awaits them before returning.
    """

    def __init__(self) -> None:
        self.apscheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True})
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def add_job(self, func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        @functools.wraps(func)
        async def tracked(*call_args: Any, **call_kwargs: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                return await func(*call_args, **call_kwargs)
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                return None  # ended by stop(), on purpose: not an error for the log
            finally:
                self._running.discard(task)

        self.apscheduler.add_job(tracked, *args, **kwargs)

    @property
    def running(self) -> bool:
        return bool(self.apscheduler.running)

    def start(self) -> None:
        self.apscheduler.start()

    async def stop(self) -> None:
        """Start no more jobs, end the running ones and wait until they have ended."""
        self._stopping = True
        if self.apscheduler.running:
            self.apscheduler.shutdown(wait=False)
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def build_scheduler(
    database: Database,
    draft_ttl: timedelta,
    clock: CaseClock | None = None,
    retention: RetentionService | None = None,
) -> ProcessScheduler:
    scheduler = ProcessScheduler()
    if clock is not None:
        # Due casework lives in rows; these jobs only look for it, so missing a run loses nothing.
        scheduler.add_job(clock.run_due, "interval", minutes=1, id="case_clock",
                          max_instances=1, misfire_grace_time=60)  # fmt: skip
        scheduler.add_job(clock.escalate_daily, "interval", hours=1, id="daily_escalation",
                          max_instances=1, misfire_grace_time=600)  # fmt: skip
    if retention is not None:
        # Looks hourly, so a process that restarts often still runs it; the staff warning goes
        # once a UTC day (a row per day), and purging a case twice is impossible (purged_at).
        scheduler.add_job(retention.run, "interval", hours=1, id="retention", max_instances=1,
                          misfire_grace_time=600, next_run_time=utc_now())  # fmt: skip
    scheduler.add_job(
        purge_abandoned_evidence,
        "interval",
        hours=1,
        args=[database, draft_ttl],
        id="purge_abandoned_evidence",
        max_instances=1,
        misfire_grace_time=600,
    )
    scheduler.add_job(
        check_database,
        "interval",
        minutes=1,
        args=[database],
        id="check_database",
        max_instances=1,
        misfire_grace_time=30,
    )
    return scheduler

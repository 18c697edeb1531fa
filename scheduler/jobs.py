"""Builds the process's scheduler. Each bot process owns its scheduler and its in-memory job store;
job stores are never shared, because APScheduler 3 does not coordinate two schedulers on one store.
Work that must survive a restart lives in database rows that these jobs poll, not in the job store.
"""

from __future__ import annotations

from datetime import timedelta

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


def build_scheduler(
    database: Database,
    draft_ttl: timedelta,
    clock: CaseClock | None = None,
    retention: RetentionService | None = None,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True})
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

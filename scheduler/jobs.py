"""Builds the process's scheduler. Each bot process owns its scheduler and its in-memory job store;
job stores are never shared, because APScheduler 3 does not coordinate two schedulers on one store.
Work that must survive a restart lives in database rows that these jobs poll, not in the job store.
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from storage.database import Database


async def check_database(database: Database) -> None:
    """A liveness probe: a failing database shows up in the log within a minute."""
    async with database.engine.connect() as connection:
        await connection.exec_driver_sql("SELECT 1")


def build_scheduler(database: Database) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True})
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

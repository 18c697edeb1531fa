"""One composition root: every surface builds its services from the same settings.

The bug this guards against was real: `wvb cases remediate` built its own services with the
default clock policy, so with ``WVB_VALIDATION_REMINDER_DAYS=3,9`` the staff chat scheduled
reminders at days 3 and 9 while the CLI scheduled days 2 and 5.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage.database import Database
from storage.models import Case, CaseTask, utc_now
from tests.bot_driver import run_wvb
from tests.case_factory import app_keyring, insert_case
from tests.conftest import Backend

REFERENCE = "K7M3-9Q2X"


async def test_cli_remediate_schedules_the_configured_validation_clock(backend: Backend) -> None:
    settings = backend.settings()
    database = Database(settings.database_url)
    await database.upgrade()
    try:
        await insert_case(database, "p" * 64, REFERENCE, app_keyring(settings))
        env = backend.environment(settings)
        env["WVB_VALIDATION_REMINDER_DAYS"] = "3,9"
        env["WVB_VALIDATION_OVERDUE_DAYS"] = "12"
        before = utc_now()
        result = await run_wvb(
            env, "cases", "remediate", "k7m3 9q2x", "--summary", "Paid in full.", "--json"
        )
        assert result.returncode == 0, result.stderr
        async with database.sessions() as session:
            case_id = await session.scalar(select(Case.id).where(Case.reference == REFERENCE))
            tasks = (
                await session.execute(
                    select(CaseTask.kind, CaseTask.due_at)
                    .where(CaseTask.case_id == case_id)
                    .order_by(CaseTask.due_at)
                )
            ).all()
        days = [(kind, round((due - before) / timedelta(days=1))) for kind, due in tasks]
        assert days == [
            ("validation_reminder", 3),
            ("validation_reminder", 9),
            ("validation_overdue", 12),
        ]
    finally:
        await database.dispose()

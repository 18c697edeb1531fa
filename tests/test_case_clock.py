"""Timed casework with a controllable clock, on both databases: reminders, overdue flags, the
retaliation check-in and the daily escalation fire on time, once each, across a restart (a new
clock over the same rows) and with two processes (two clocks, two engines) at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from conversations.messages import Outbound
from conversations.ports import WorkerRef
from scheduler.case_clock import CaseClock
from services.casework import CaseworkService, Remediation
from services.outbox import Outbox, row_purpose
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Case, CaseEvent, OutboxMessage, utc_now
from tests.case_factory import insert_case
from tests.conftest import Backend

KEYRING = Keyring((b"k" * 32,))
WORKER = WorkerRef("c" * 64, "telegram", "77")


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    database = Database(backend.database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def new_case(database: Database, reference: str = "CASE-0001") -> None:
    await insert_case(database, WORKER.pseudonym, reference)


async def messages(database: Database) -> list[tuple[str, str]]:
    """(recipient, text) of everything queued in the outbox, oldest first."""
    async with database.sessions() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [
            (row.recipient, Outbound.from_bytes(
                KEYRING.decrypt(row.payload_ciphertext, row_purpose(row))).text)
            for row in rows
        ]  # fmt: skip


def at(days: float) -> datetime:
    return utc_now() + timedelta(days=days)


def clock_at(database: Database, days: float) -> CaseClock:
    return CaseClock(database, Outbox(KEYRING), now=lambda: at(days))


async def test_reminders_then_overdue_fire_on_time_once_and_never_close(
    database: Database,
) -> None:
    await new_case(database)
    casework = CaseworkService(database, KEYRING, Outbox(KEYRING))
    await casework.remediate("staff", "CASE-0001", Remediation("Paid.", {}))
    before = len(await messages(database))  # the validation prompt itself

    assert await clock_at(database, 1).run_due() == 0
    assert await clock_at(database, 2.01).run_due() == 1
    assert await clock_at(database, 2.02).run_due() == 0, "each task once"
    queued = (await messages(database))[before:]
    assert [r for r, _ in queued] == ["worker"]
    assert "Reminder" in queued[0][1]
    # The bot was down from day 3 to day 11: a new clock (a restart) does what fell due.
    assert await clock_at(database, 11).run_due() == 2
    queued = (await messages(database))[before:]
    assert [r for r, _ in queued] == ["worker", "worker", "staff"]
    assert "validation overdue" in queued[-1][1]
    async with database.sessions() as session:
        case = await session.scalar(select(Case))
        assert case is not None
        assert case.status == "awaiting_validation", "never closed automatically"
        actions = (await session.execute(select(CaseEvent.action))).scalars().all()
        assert "validation_overdue" in actions


async def test_an_answer_stops_the_reminders(database: Database) -> None:
    await new_case(database)
    casework = CaseworkService(database, KEYRING, Outbox(KEYRING))
    await casework.remediate("staff", "CASE-0001", Remediation("Paid.", {}))
    await casework.record_validation(WORKER, "CASE-0001", "no")
    before = len(await messages(database))
    assert await clock_at(database, 11).run_due() == 3  # done, with nothing left to say
    assert (await messages(database))[before:] == []


async def test_two_processes_do_each_task_exactly_once(
    backend: Backend, database: Database
) -> None:
    casework = CaseworkService(database, KEYRING, Outbox(KEYRING))
    for number in range(8):
        reference = f"CASE-{number:04d}"
        await new_case(database, reference)
        await casework.remediate("staff", reference, Remediation("Paid.", {}))
    before = len(await messages(database))
    other = Database(backend.database_url)
    try:
        done = await asyncio.gather(
            clock_at(database, 11).run_due(), CaseClock(other, Outbox(KEYRING),
                                                        now=lambda: at(11)).run_due(),
        )  # fmt: skip
    finally:
        await other.dispose()
    assert sum(done) == 8 * 3
    queued = (await messages(database))[before:]
    assert len(queued) == 8 * 3, "two reminders and one overdue flag per case, no more"


async def test_retaliation_check_in_after_closing_opens_a_linked_urgent_case_once(
    database: Database,
) -> None:
    await new_case(database)
    casework = CaseworkService(database, KEYRING, Outbox(KEYRING))
    await casework.remediate("staff", "CASE-0001", Remediation("Paid.", {}))
    await casework.record_validation(WORKER, "CASE-0001", "yes")
    assert await clock_at(database, 29).run_due() == 3  # reminders no longer due
    before = len(await messages(database))
    assert await clock_at(database, 30.01).run_due() == 1
    [(recipient, text)] = (await messages(database))[before:]
    assert recipient == "worker"
    assert "treated you badly" in text
    opened = await casework.record_retaliation_answer(WORKER, "CASE-0001", "yes", "CODE")
    again = await casework.record_retaliation_answer(WORKER, "CASE-0001", "yes", "CODE")
    assert opened is not None
    assert again == (opened[0], False)
    async with database.sessions() as session:
        linked = await session.scalar(select(Case).where(Case.reference == opened[0]))
        assert linked is not None
        assert linked.urgent
        assert linked.categories == ["retaliation"]
    assert any(r == "staff" and opened[0] in t for r, t in await messages(database)), (
        "staff are alerted"
    )


async def test_daily_escalation_runs_once_a_day_across_processes(
    backend: Backend, database: Database
) -> None:
    await new_case(database)  # acknowledgement due in 7 days
    assert await clock_at(database, 1).escalate_daily() == 0
    assert await clock_at(database, 1).escalate_daily() is None, "already done today"
    other = Database(backend.database_url)
    try:
        results = await asyncio.gather(
            clock_at(database, 8).escalate_daily(),
            CaseClock(other, Outbox(KEYRING), now=lambda: at(8)).escalate_daily(),
        )
    finally:
        await other.dispose()
    assert sorted(results, key=str) == [1, None]
    staff = [t for r, t in await messages(database) if r == "staff"]
    assert len(staff) == 1
    assert "CASE-0001 (received): acknowledgement overdue" in staff[0]

"""The outbox relay on real databases: sends once, retries with back-off, gives up loudly."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from scheduler.outbox_relay import MAX_ATTEMPTS, OutboxRelay
from services.outbox import STAFF, Outbox, OutboxPayload
from storage.crypto import Keyring
from storage.database import Database
from storage.models import OutboxMessage
from tests.conftest import Backend

KEYRING = Keyring((b"k" * 32,))


async def queued(database: Database, count: int) -> None:
    outbox = Outbox(KEYRING)
    async with database.transaction() as session:
        for number in range(count):
            outbox.enqueue(session, OutboxPayload(f"alert {number}"), recipient=STAFF)


async def rows(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        return list((await session.execute(select(OutboxMessage))).scalars())


async def test_two_relays_together_send_each_message_exactly_once(backend: Backend) -> None:
    database = Database(backend.database_url)
    await database.upgrade()
    other = Database(backend.database_url)  # a second process has its own connections
    sent: list[str] = []

    async def send(payload: OutboxPayload) -> None:
        await asyncio.sleep(0.001)
        sent.append(payload.text)

    try:
        await queued(database, 30)
        await asyncio.gather(
            OutboxRelay(database, KEYRING, send).run_once(),
            OutboxRelay(other, KEYRING, send).run_once(),
        )
        assert sorted(sent) == sorted(f"alert {n}" for n in range(30))
        assert {row.status for row in await rows(database)} == {"sent"}
    finally:
        await database.dispose()
        await other.dispose()


async def test_a_failing_send_is_retried_later_then_given_up(backend: Backend) -> None:
    database = Database(backend.database_url)
    await database.upgrade()

    async def broken(payload: OutboxPayload) -> None:
        raise ConnectionError("Telegram is away")

    try:
        await queued(database, 1)
        relay = OutboxRelay(database, KEYRING, broken)
        assert await relay.run_once() == 1
        [row] = await rows(database)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectionError")
        assert await relay.run_once() == 0, "not due again before its back-off"
        async with database.transaction() as session:
            stored = await session.get(OutboxMessage, row.id)
            assert stored is not None
            stored.attempts = MAX_ATTEMPTS - 1
            stored.next_attempt_at = row.created_at
        assert await relay.run_once() == 1
        [row] = await rows(database)
        assert row.status == "failed"
    finally:
        await database.dispose()


async def test_without_a_staff_chat_alerts_fail_with_the_setting_named(backend: Backend) -> None:
    database = Database(backend.database_url)
    await database.upgrade()
    try:
        await queued(database, 1)
        assert await OutboxRelay(database, KEYRING, None).run_once() == 1
        [row] = await rows(database)
        assert row.status == "failed"
        assert row.last_error is not None
        assert "WVB_STAFF_CHAT_ID" in row.last_error
    finally:
        await database.dispose()

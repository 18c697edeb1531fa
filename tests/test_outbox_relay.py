"""The outbox relay on real databases: sends once, retries with back-off, gives up loudly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from bot.channels.outbox_relay import MAX_ATTEMPTS, OutboxRelay
from conversations.messages import Outbound
from services.outbox import Outbox
from storage.crypto import Keyring
from storage.database import Database
from storage.models import OutboxMessage
from tests.conftest import Backend

KEYRING = Keyring((b"k" * 32,))
STAFF_CHAT = "-100"


class StaffChatSender:
    """A ``Sender`` for the Telegram channel that hands each message to ``send``."""

    channel = "telegram"

    def __init__(self, send: Callable[[Outbound], Awaitable[None]]) -> None:
        self._send = send

    async def send(self, address: str, message: Outbound) -> list[str]:
        assert address == STAFF_CHAT
        await self._send(message)
        return ["1"]


def relay(database: Database, send: Callable[[Outbound], Awaitable[None]]) -> OutboxRelay:
    return OutboxRelay(
        database, KEYRING, {"telegram": StaffChatSender(send)}, staff_address=STAFF_CHAT
    )


async def queued(database: Database, count: int) -> None:
    outbox = Outbox(KEYRING)
    async with database.transaction() as session:
        for number in range(count):
            outbox.to_staff(session, Outbound(f"alert {number}"))


async def rows(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        return list((await session.execute(select(OutboxMessage))).scalars())


async def test_two_relays_together_send_each_message_exactly_once(backend: Backend) -> None:
    database = Database(backend.database_url)
    await database.upgrade()
    other = Database(backend.database_url)  # a second process has its own connections
    sent: list[str] = []

    async def send(message: Outbound) -> None:
        await asyncio.sleep(0.001)
        sent.append(message.text)

    try:
        await queued(database, 30)
        await asyncio.gather(
            relay(database, send).run_once(),
            relay(other, send).run_once(),
        )
        assert sorted(sent) == sorted(f"alert {n}" for n in range(30))
        assert {row.status for row in await rows(database)} == {"sent"}
    finally:
        await database.dispose()
        await other.dispose()


async def test_a_failing_send_is_retried_later_then_given_up(backend: Backend) -> None:
    database = Database(backend.database_url)
    await database.upgrade()

    async def broken(message: Outbound) -> None:
        raise ConnectionError("Telegram is away")

    try:
        await queued(database, 1)
        failing = relay(database, broken)
        assert await failing.run_once() == 1
        [row] = await rows(database)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectionError")
        assert await failing.run_once() == 0, "not due again before its back-off"
        async with database.transaction() as session:
            stored = await session.get(OutboxMessage, row.id)
            assert stored is not None
            stored.attempts = MAX_ATTEMPTS - 1
            stored.next_attempt_at = row.created_at
        assert await failing.run_once() == 1
        [row] = await rows(database)
        assert row.status == "failed"
    finally:
        await database.dispose()


async def test_without_a_staff_chat_alerts_fail_with_the_setting_named(backend: Backend) -> None:
    database = Database(backend.database_url)
    await database.upgrade()
    try:
        await queued(database, 1)

        async def never(message: Outbound) -> None:
            raise AssertionError("nothing may be sent")

        # `wvb run` with Telegram but no WVB_STAFF_CHAT_ID
        relay = OutboxRelay(database, KEYRING, {"telegram": StaffChatSender(never)})
        assert await relay.run_once() == 1
        [row] = await rows(database)
        assert row.status == "failed"
        assert row.last_error is not None
        assert "WVB_STAFF_CHAT_ID" in row.last_error
    finally:
        await database.dispose()

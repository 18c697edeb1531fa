"""The outbox relay: sends queued messages, retrying with back-off, at least once.

Each message is claimed inside its own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
sent, and marked sent in that transaction, so two bot processes never send the same row; a crash
mid-send rolls the claim back and the message is sent again later (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import select

from services.outbox import STAFF, OutboxPayload, outbox_purpose
from storage.crypto import Keyring
from storage.database import Database
from storage.models import OutboxMessage, utc_now

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
IDLE_SECONDS = 5.0

SendToStaff = Callable[[OutboxPayload], Awaitable[None]]


class NotConfigured(Exception):
    """There is nowhere to send this kind of message (e.g. no staff chat is set)."""


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 5 * 2**attempts))


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        send_to_staff: SendToStaff | None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.database = database
        self.keyring = keyring
        self.send_to_staff = send_to_staff
        self.wake = wake or asyncio.Event()

    async def run_once(self, limit: int = 100) -> int:
        """Send what is due now; return how many messages were handled."""
        handled = 0
        while handled < limit and await self._send_next():
            handled += 1
        return handled

    async def _send_next(self) -> bool:
        async with self.database.transaction() as session:
            row = await session.scalar(
                select(OutboxMessage)
                .where(
                    OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= utc_now()
                )
                .order_by(OutboxMessage.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return False
            try:
                payload = OutboxPayload.from_bytes(
                    self.keyring.decrypt(row.payload_ciphertext, outbox_purpose(row.key))
                )
                await self._deliver(row, payload)
            except NotConfigured as reason:
                row.status = "failed"
                row.last_error = str(reason)[:200]
                log.warning("outbox message %d not sent: %s", row.id, reason)
            except Exception as error:
                row.attempts += 1
                row.last_error = type(error).__name__
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                    log.error("outbox message %d failed for good: %s", row.id, row.last_error)
                else:
                    row.next_attempt_at = utc_now() + backoff(row.attempts)
                    log.warning("outbox message %d will be retried: %s", row.id, row.last_error)
            else:
                row.status = "sent"
                row.sent_at = utc_now()
                row.attempts += 1
            return True

    async def _deliver(self, row: OutboxMessage, payload: OutboxPayload) -> None:
        if row.recipient == STAFF:
            if self.send_to_staff is None:
                raise NotConfigured("no staff chat is configured (WVB_STAFF_CHAT_ID)")
            await self.send_to_staff(payload)
            return
        raise NotConfigured(f"unknown recipient kind {row.recipient!r}")

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; wake early when a new message is queued."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox relay pass failed")
            self.wake.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(IDLE_SECONDS):
                    stopping = asyncio.ensure_future(stop.wait())
                    waking = asyncio.ensure_future(self.wake.wait())
                    try:
                        await asyncio.wait({stopping, waking}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        stopping.cancel()
                        waking.cancel()

"""The outbox relay: sends queued messages, retrying with back-off, at least once.

Each message is claimed for a while with a compare-and-set, sent, then marked sent, so two bot
processes never send the same row; a crash mid-send lets the claim run out and the message is
sent again later (at least once: at most the message in flight at the crash is repeated).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import select, update

from services.outbox import STAFF, WORKER, Outbox, OutboxPayload, outbox_purpose
from services.workers import address_purpose, mark_blocked
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Case, CaseEvent, OutboxMessage, Worker, WorkerAddress, utc_now

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120  # longer than any send, retries of 429s included
IDLE_SECONDS = 2.0  # how soon a message queued by another process (the CLI) goes out

SendToStaff = Callable[[OutboxPayload], Awaitable[None]]
#: (channel, decrypted address, payload); raises ``Unreachable`` when the worker blocked the bot.
SendToWorker = Callable[[str, str, OutboxPayload], Awaitable[None]]


class Unreachable(Exception):
    """The worker cannot be messaged: they used /forget, or blocked the bot."""


class Blocked(Unreachable):
    """The messenger said the worker blocked the bot: no broadcast goes to them until they
    write to us again."""


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
        send_to_worker: SendToWorker | None = None,
    ) -> None:
        self.database = database
        self.keyring = keyring
        self.send_to_staff = send_to_staff
        self.send_to_worker = send_to_worker
        self.wake = wake or asyncio.Event()

    async def run_once(self, limit: int = 100) -> int:
        """Send what is due now; return how many messages were handled."""
        handled = 0
        while handled < limit and await self._send_next():
            handled += 1
        return handled

    async def _claim(self) -> OutboxMessage | None:
        """Take one due message for ``CLAIM_SECONDS``. The compare-and-set on ``next_attempt_at``
        means two relays (two processes, on SQLite as on PostgreSQL) never both win a row."""
        now = utc_now()
        async with self.database.transaction() as session:
            row = await session.scalar(
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending")
                .where(OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            claimed = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .where(OutboxMessage.status == "pending")
                .where(OutboxMessage.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
            )
            won = getattr(claimed, "rowcount", 0) == 1
        return row if won else await self._claim()

    async def _send_next(self) -> bool:
        row = await self._claim()
        if row is None:
            return False
        # Sent outside any transaction: no lock is held while Telegram answers. A crash here
        # leaves the claim to run out, and the message is sent again (at least once).
        status, error, retry_at = "sent", None, None
        try:
            payload = OutboxPayload.from_bytes(
                self.keyring.decrypt(row.payload_ciphertext, outbox_purpose(row.key))
            )
            await self._deliver(row, payload)
        except NotConfigured as reason:
            status, error = "failed", str(reason)[:200]
            log.warning("outbox message %d not sent: %s", row.id, reason)
        except Unreachable as reason:
            status, error = "unreachable", str(reason)[:200]
            log.info("outbox message %d: worker unreachable", row.id)
            if isinstance(reason, Blocked) and row.worker_id is not None:
                async with self.database.transaction() as session:
                    await session.execute(mark_blocked([row.worker_id], utc_now()))
            await self._tell_staff_unreachable(row, str(reason))
        except Exception as failure:
            error = type(failure).__name__
            if row.attempts + 1 >= MAX_ATTEMPTS:
                status = "failed"
                log.error("outbox message %d failed for good: %s", row.id, error)
            else:
                status, retry_at = "pending", utc_now() + backoff(row.attempts + 1)
                log.warning("outbox message %d will be retried: %s", row.id, error)
        async with self.database.transaction() as session:
            values: dict[str, object] = {
                "status": status,
                "attempts": OutboxMessage.attempts + 1,
                "last_error": error,
            }
            if status == "sent":
                values["sent_at"] = utc_now()
            if retry_at is not None:
                values["next_attempt_at"] = retry_at
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
            )
        return True

    async def _deliver(self, row: OutboxMessage, payload: OutboxPayload) -> None:
        if row.recipient == STAFF:
            if self.send_to_staff is None:
                raise NotConfigured("no staff chat is configured (WVB_STAFF_CHAT_ID)")
            await self.send_to_staff(payload)
            return
        if row.recipient == WORKER:
            if self.send_to_worker is None:
                raise NotConfigured(f"no {row.channel} channel is running")
            address = await self._address(row)
            await self.send_to_worker(row.channel, address, payload)
            return
        raise NotConfigured(f"unknown recipient kind {row.recipient!r}")

    async def _tell_staff_unreachable(self, row: OutboxMessage, reason: str) -> None:
        """Staff must know a follow-up or validation prompt never reached the worker."""
        if row.case_id is None:
            return
        async with self.database.transaction() as session:
            case = await session.get(Case, row.case_id)
            if case is None:
                return
            session.add(CaseEvent(case_id=case.id, actor="system", action="worker_unreachable"))
            Outbox(self.keyring).enqueue(session, OutboxPayload(
                f"Case {case.reference}: a message could not reach the worker ({reason}). "
                "They can still read staff messages with /status and their receipt code."
            ), recipient=STAFF)  # fmt: skip

    async def _address(self, row: OutboxMessage) -> str:
        if row.worker_id is None:
            raise Unreachable("the worker used /forget")
        async with self.database.sessions() as session:
            found = (
                await session.execute(
                    select(Worker.pseudonym, WorkerAddress.address_ciphertext)
                    .join(WorkerAddress, WorkerAddress.worker_id == Worker.id)
                    .where(Worker.id == row.worker_id, WorkerAddress.channel == row.channel)
                )
            ).first()
        if found is None:
            raise Unreachable(f"no {row.channel} address for the worker")
        pseudonym, ciphertext = found
        return self.keyring.decrypt(ciphertext, address_purpose(pseudonym, row.channel)).decode()

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

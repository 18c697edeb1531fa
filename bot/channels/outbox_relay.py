"""The outbox relay: sends queued messages, retrying with back-off, at least once.

Each message is claimed for a while with a compare-and-set, sent, then marked sent, so two bot
processes never send the same row; a crash mid-send lets the claim run out and the message is
sent again later (at least once: at most the message in flight at the crash is repeated).

A message the messenger will not take because the worker's window is closed (WhatsApp's 24
hours) is held, not failed: the neutral template asks the worker to write, at most once per
closed window, and the message goes when they do (``services/window_hold.py``). Staff are not
told it failed: it has not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select, update

from bot.channels.sending import (
    Blocked,
    ChannelDown,
    Rejected,
    RetryAfter,
    Sender,
    Unreachable,
    WindowClosed,
    external_ref,
    numeric_ids,
)
from bot.channels.window_closed import WindowOpening
from conversations.messages import Outbound
from domain.parties import Side
from domain.statuses import OutboxStatus
from services.casework import tell_staff_unreachable
from services.outbox import NO_CHANNEL, Outbox, row_purpose
from services.window_hold import CLOSED_AFTER_SENDING, release_outbox
from services.workers import address_purpose, mark_blocked
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import OutboxMessage, Worker, WorkerAddress, utc_now
from storage.outage import OutageLog
from storage.recent_ids import ChatHistory
from storage.whatsapp_window import WhatsAppWindow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120  # longer than any send, retries of 429s included
IDLE_SECONDS = 2.0  # how soon a message queued by another process (the CLI) goes out
CHANNEL_DOWN_SECONDS = 30  # how long a message waits when its channel itself fails


class NotConfigured(Exception):
    """There is nowhere to send this kind of message (e.g. no staff chat is set)."""


class HeldForWindow(Exception):
    """The worker's window is closed: the message waits for them to write (``reason``)."""

    def __init__(self, reason: str, address: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 5 * 2**attempts))


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        senders: Mapping[str, Sender],
        *,
        staff_address: str | None = None,
        staff_channel: str = "telegram",
        wake: asyncio.Event | None = None,
        history: ChatHistory | None = None,
        window: WhatsAppWindow | None = None,
    ) -> None:
        """``senders``: the channels this process sends on (conversation lane), by name; the
        relay takes only rows for those. ``staff_address``: the staff chat on ``staff_channel``
        (None: staff alerts fail with a clear reason, unless no process can send them).
        ``window``: when each worker last wrote on WhatsApp, and whether the template asking
        them to write has gone (``bot/channels/window_closed.py``)."""
        self.database = database
        self.keyring = keyring
        self.senders = dict(senders)
        self.staff_address = staff_address
        self.staff_channel = staff_channel
        self.wake = wake or asyncio.Event()
        # Messages sent to a worker join their chat history, so /forget deletes them too.
        self.history = history
        self.opening = WindowOpening(window)
        self.channels = sorted({*self.senders, NO_CHANNEL})

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
                .where(OutboxMessage.status == OutboxStatus.PENDING)
                .where(OutboxMessage.next_attempt_at <= now)
                .where(OutboxMessage.channel.in_(self.channels))
                .where(OutboxMessage.held_for_window.is_(False))
                .order_by(OutboxMessage.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            claimed = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .where(OutboxMessage.status == OutboxStatus.PENDING)
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
        status, error, retry_at, ref = OutboxStatus.SENT, None, None, None
        counts_as_attempt = True
        held: HeldForWindow | None = None
        try:
            message = Outbound.from_bytes(
                self.keyring.decrypt(row.payload_ciphertext, row_purpose(row))
            )
            ref = await self._deliver(row, message)
        except DecryptionError:
            # A removed key, or a row whose recipient, worker or case was changed in the
            # database: its content goes to nobody, and the relay carries on.
            status, error = OutboxStatus.FAILED, "does not decrypt (a removed key or a changed row)"
            log.error("outbox message %d not sent: it does not decrypt", row.id)
        except HeldForWindow as waiting:
            # Not a failure: no attempt spent, staff not told; it goes when the worker writes.
            status, error, counts_as_attempt, held = (
                OutboxStatus.PENDING, waiting.reason, False, waiting
            )  # fmt: skip
            log.info("outbox message %d waits for the worker to write", row.id)
        except NotConfigured as reason:
            status, error = OutboxStatus.FAILED, str(reason)[:200]
            log.warning("outbox message %d not sent: %s", row.id, reason)
        except Unreachable as reason:
            status, error = OutboxStatus.UNREACHABLE, str(reason)[:200]
            log.info("outbox message %d: worker unreachable", row.id)
            if isinstance(reason, Blocked) and row.worker_id is not None:
                async with self.database.transaction() as session:
                    await session.execute(mark_blocked([row.worker_id], utc_now()))
            await self._tell_staff_unreachable(row, str(reason))
        except ChannelDown as reason:
            # Nothing wrong with the message: hold it, without spending an attempt.
            status, error, counts_as_attempt = OutboxStatus.PENDING, str(reason)[:200], False
            retry_at = utc_now() + timedelta(seconds=CHANNEL_DOWN_SECONDS)
            log.warning("outbox message %d waits: %s", row.id, reason)
        except RetryAfter as limited:
            status, error, counts_as_attempt = OutboxStatus.PENDING, str(limited), False
            retry_at = utc_now() + timedelta(seconds=limited.seconds)
        except Rejected as reason:
            status, error = OutboxStatus.FAILED, str(reason)[:200]
            log.error("outbox message %d refused by the messenger: %s", row.id, reason)
        except Exception as failure:
            error = type(failure).__name__
            if row.attempts + 1 >= MAX_ATTEMPTS:
                status = OutboxStatus.FAILED
                log.error("outbox message %d failed for good: %s", row.id, error)
            else:
                status, retry_at = OutboxStatus.PENDING, utc_now() + backoff(row.attempts + 1)
                log.warning("outbox message %d will be retried: %s", row.id, error)
        async with self.database.transaction() as session:
            values: dict[str, object] = {"status": status, "last_error": error}
            values["held_for_window"] = held is not None
            if counts_as_attempt:
                values["attempts"] = OutboxMessage.attempts + 1
            if status == OutboxStatus.SENT:
                values["sent_at"] = utc_now()
                if ref is not None:  # a new message: receipts of an earlier send no longer apply
                    values.update(external_ref=ref, receipt=None)
            if retry_at is not None:
                values["next_attempt_at"] = retry_at
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
            )
        if (
            held is not None
            and row.worker_id is not None
            and await self.opening.reopened(held.address)
        ):
            # The worker wrote while this was being held: their release may have come first.
            async with self.database.transaction() as session:
                await session.execute(release_outbox(row.worker_id, row.channel))
        return True

    async def _deliver(self, row: OutboxMessage, message: Outbound) -> str | None:
        """Send the row's message; the ref a delivery receipt will name it by, if any."""
        if row.recipient == Side.STAFF:
            sender = self.senders.get(self.staff_channel)
            if sender is None or self.staff_address is None:
                raise NotConfigured("no staff chat is configured (WVB_STAFF_CHAT_ID)")
            # Staff alerts can be neither forwarded nor saved out of the staff chat.
            sent = await sender.send(self.staff_address, replace(message, protect_content=True))
            return external_ref(sender, sent)
        if row.recipient == Side.WORKER:
            pseudonym, channel, address, language = await self._address(row)
            sender = self.senders.get(channel)
            if sender is None:
                raise NotConfigured(f"no {channel} channel is running")
            if row.last_error == CLOSED_AFTER_SENDING:
                await self.opening.messenger_said_closed(address)
            try:
                sent = await sender.send(address, message)
            except WindowClosed:
                raise HeldForWindow(
                    await self.opening.ask(sender, address, language), address
                ) from None
            if self.history is not None:
                try:
                    await self.history.add(pseudonym, numeric_ids(sent))
                except Exception as error:  # it went out; only /forget's reach is less
                    log.warning("outbox message not in chat history: %s", type(error).__name__)
            return external_ref(sender, sent)
        raise NotConfigured(f"unknown recipient kind {row.recipient!r}")

    async def _tell_staff_unreachable(self, row: OutboxMessage, reason: str) -> None:
        """Staff must know a follow-up or validation prompt never reached the worker."""
        if row.case_id is None:
            return
        outbox = Outbox(self.keyring, staff_channel=self.staff_channel)
        async with self.database.transaction() as session:
            await tell_staff_unreachable(session, outbox, [row.case_id], reason)

    async def _address(self, row: OutboxMessage) -> tuple[str, str, str, str]:
        """The worker's pseudonym, channel, decrypted address and language (the worker has one
        address: their pseudonym is of one channel)."""
        if row.worker_id is None:
            raise Unreachable("the worker used /forget")
        async with self.database.sessions() as session:
            found = (
                await session.execute(
                    select(
                        Worker.pseudonym,
                        WorkerAddress.channel,
                        WorkerAddress.address_ciphertext,
                        Worker.language,
                    )
                    .join(WorkerAddress, WorkerAddress.worker_id == Worker.id)
                    .where(Worker.id == row.worker_id)
                    .order_by(WorkerAddress.updated_at.desc())
                    .limit(1)
                )
            ).first()
        if found is None:
            raise Unreachable("no address for the worker")
        pseudonym, channel, ciphertext, language = found
        purpose = address_purpose(pseudonym, channel, row.worker_id)
        address = self.keyring.decrypt(ciphertext, purpose).decode()
        return pseudonym, channel, address, language

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; wake early when a new message is queued."""
        outage = OutageLog(log, "outbox relay pass")
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as error:
                outage.failed(error)
            else:
                outage.succeeded()
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

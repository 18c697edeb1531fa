"""The broadcast relay: sends delivery rows at the shared rate and records each outcome.

Claiming: a batch of due rows is taken with a compare-and-set (``next_attempt_at`` moved
``CLAIM_SECONDS`` ahead, a claim token written) in one transaction, with ``SKIP LOCKED`` on
PostgreSQL and ``BEGIN IMMEDIATE`` on SQLite, so two relays never hold the same row. A relay
sends a row only while its claim has more than ``CLAIM_MARGIN`` seconds left; what it cannot
send in time goes back for anyone to take.

Recording: outcomes are written in small batches (about every ten messages: every
``max(0.1, min(1, 10 / rate))`` seconds, or ``FLUSH_ROWS``). A relay killed between sending and
recording leaves those rows claimed; when the claim runs out they are sent again. So nobody is
skipped, and a kill repeats at most the messages sent since the last flush plus those in flight:
at most ``max(10, rate / 10) + MAX_IN_FLIGHT``.

WhatsApp workers whose 24-hour window is closed (the sender raises ``WindowClosed``) are skipped,
or sent the neutral template and held until they write, as the broadcast says
(``services/broadcasts.py``, ``bot/channels/window_closed.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.sending import (
    ChannelDown,
    Lane,
    Rejected,
    RetryAfter,
    Sender,
    Unreachable,
    WindowClosed,
    external_ref,
    numeric_ids,
)
from bot.channels.window_closed import WindowOpening
from conversations.messages import Choice, Outbound
from domain.statuses import DeliveryStatus, OutsideWindow
from locales import translator
from services.broadcasts import BroadcastPolicy, BroadcastService, footer
from services.window_hold import BROADCAST_HOLD, release_deliveries
from services.workers import address_purpose, mark_blocked
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastText,
    Worker,
    WorkerAddress,
    utc_now,
)
from storage.outage import OutageLog
from storage.recent_ids import ChatHistory
from storage.send_rate import SendRate
from storage.whatsapp_window import WhatsAppWindow

log = logging.getLogger(__name__)

CLAIM_SECONDS = 15
CLAIM_MARGIN = 11.0  # longer than one send may take (the sender's own timeout is 10 s)
FLUSH_SECONDS = 0.1
FLUSH_ROWS = 200
MAX_IN_FLIGHT = 64
MAX_ATTEMPTS = 5
IDLE_SECONDS = 1.0
LANES = 2
DUE_CHECK_SECONDS = 5.0

#: A lesson topic -> the button that opens it, in a language.
LessonButton = Callable[[str, str], Choice]


@dataclass
class _Item:
    id: int
    broadcast_id: int
    worker_id: int | None
    language: str
    timezone: str
    attempts: int
    urgent: bool = False
    outside_window: str = OutsideWindow.SKIP
    address: str | None = field(default=None, repr=False)
    pseudonym: str | None = field(default=None, repr=False)
    worker_language: str | None = None  # theirs, for the template (the text may be a fallback's)


@dataclass
class _Outcomes:
    sent: list[int] = field(default_factory=list)
    blocked: list[tuple[int, int | None]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    # (id, when, waiting for quiet hours, counts as an attempt)
    later: list[tuple[int, datetime, bool, bool]] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)  # logged once a flush, not per row
    shown: list[tuple[str, int]] = field(default_factory=list)  # (pseudonym, message id)
    refs: dict[int, str] = field(default_factory=dict)  # sent row -> its external_ref
    # WhatsApp's window closed: skipped rows; held rows (the item, and why it waits)
    skipped: list[int] = field(default_factory=list)
    held: list[tuple[_Item, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.sent) + len(self.blocked) + len(self.failed) + len(self.later)
            + len(self.skipped) + len(self.held)
        )  # fmt: skip


@dataclass
class RelayStats:
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    deferred: int = 0
    rate_limited: int = 0
    skipped: int = 0
    held: int = 0


class BroadcastRelay:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        sender: Sender,
        rate: SendRate,
        *,
        policy: BroadcastPolicy | None = None,
        lesson_button: LessonButton | None = None,
        chat_interval: float = 1.0,
        history: ChatHistory | None = None,
        window: WhatsAppWindow | None = None,
    ) -> None:
        """``sender`` sends without pacing of its own: this relay takes the tokens (broadcast
        lane) from ``rate``, which every sender of the same bot token shares. ``window``:
        WhatsApp's windows (``bot/channels/window_closed.py``)."""
        self.database = database
        self.keyring = keyring
        self.sender = sender
        self.rate = rate
        self.policy = policy or BroadcastPolicy()
        self.service = BroadcastService(database, self.policy)
        self.lesson_button = lesson_button
        self.channel = sender.channel
        self.chat_interval = chat_interval
        self.history = history  # so /forget deletes broadcast messages too
        self.opening = WindowOpening(window)
        # Outcomes are recorded about every ten messages (at least every 0.1 s, at most every
        # second): what a kill can repeat stays small at any rate.
        self.flush_seconds = max(FLUSH_SECONDS, min(1.0, 10 / rate.rate))
        self.stats = RelayStats()
        self._payloads: dict[tuple[int, str], Outbound] = {}
        self._urgent: dict[int, bool] = {}
        self._outside_window: dict[int, str] = {}
        self._last_due_check = 0.0
        self._outage = OutageLog(log, "broadcast relay pass")

    @property
    def batch_size(self) -> int:
        """About a second of sending: claims stay short, so a restart resumes quickly."""
        return max(1, min(1000, int(self.rate.rate)))

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set. Two lanes claim and send in turn, so the next batch is
        claimed and decrypted while the current one is still going out (one lane alone idles
        the sender for every claim); the shared bucket keeps their sum at the rate."""
        await asyncio.gather(*(self._lane(stop) for _ in range(LANES)))

    async def _lane(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                handled = await self.run_once(stop)
            except Exception as error:
                self._outage.failed(error)
                handled = 0
            else:
                self._outage.succeeded()
            if handled == 0:
                with suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_SECONDS):
                        await stop.wait()

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Start due broadcasts, then send one claimed batch; return how many rows were handled."""
        monotonic = time.monotonic()
        if monotonic - self._last_due_check >= DUE_CHECK_SECONDS:
            self._last_due_check = monotonic
            await self.service.start_due()
            await self.service.give_up_held()
            await self.service.finish_done()
        items, token, deadline = await self._claim()
        if not items:
            await self.service.finish_done()
            return 0
        await self._send_batch(items, token, deadline, stop)
        return len(items)

    async def drain(self, stop: asyncio.Event | None = None) -> None:
        """Send everything due now (tests and one-off runs)."""
        self._last_due_check = 0.0
        while await self.run_once(stop):
            pass

    # -- claiming -----------------------------------------------------------------------------

    async def _claim(self) -> tuple[list[_Item], str, float]:
        now = utc_now()
        token = uuid.uuid4().hex
        deadline = time.monotonic() + CLAIM_SECONDS - CLAIM_MARGIN
        due = (
            select(BroadcastDelivery.id)
            .where(BroadcastDelivery.status == DeliveryStatus.PENDING)
            .where(BroadcastDelivery.channel == self.channel)
            .where(BroadcastDelivery.next_attempt_at <= now)
            .where(BroadcastDelivery.held_for_window.is_(False))
            .order_by(BroadcastDelivery.next_attempt_at, BroadcastDelivery.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.database.transaction() as session:
            # Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT): PostgreSQL may run
            # such a subquery more than once and claim more rows than the limit.
            ids = list(await session.scalars(due))
            if not ids:
                return [], token, deadline
            claimed = await session.execute(
                update(BroadcastDelivery)
                .where(BroadcastDelivery.id.in_(ids))
                .where(BroadcastDelivery.status == DeliveryStatus.PENDING)
                .where(BroadcastDelivery.next_attempt_at <= now)
                .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), claim=token)
                .returning(
                    BroadcastDelivery.id,
                    BroadcastDelivery.broadcast_id,
                    BroadcastDelivery.worker_id,
                    BroadcastDelivery.language,
                    BroadcastDelivery.timezone,
                    BroadcastDelivery.attempts,
                )
            )
            items = [_Item(*row) for row in claimed]
            if items:
                await self._prepare(session, items)
        items.sort(key=lambda item: item.id)
        return items, token, deadline

    async def _prepare(self, session: AsyncSession, items: list[_Item]) -> None:
        """Load texts (cached per broadcast and language) and decrypt addresses."""
        broadcasts = {item.broadcast_id for item in items} - set(self._urgent)
        if broadcasts:
            for broadcast_id, urgent, topic, outside_window in await session.execute(
                select(
                    Broadcast.id, Broadcast.urgent, Broadcast.topic, Broadcast.outside_window
                ).where(Broadcast.id.in_(broadcasts))
            ):
                self._urgent[broadcast_id] = urgent
                self._outside_window[broadcast_id] = outside_window
                for language, text in await session.execute(
                    select(BroadcastText.language, BroadcastText.text).where(
                        BroadcastText.broadcast_id == broadcast_id
                    )
                ):
                    self._payloads[(broadcast_id, language)] = self._payload(topic, language, text)
        worker_ids = [item.worker_id for item in items if item.worker_id is not None]
        addresses: dict[int, tuple[str, bytes, str]] = {}
        if worker_ids:
            for worker_id, pseudonym, ciphertext, language in await session.execute(
                select(
                    Worker.id, Worker.pseudonym, WorkerAddress.address_ciphertext, Worker.language
                )
                .join(WorkerAddress, WorkerAddress.worker_id == Worker.id)
                .where(Worker.id.in_(worker_ids), WorkerAddress.channel == self.channel)
            ):
                addresses[worker_id] = (pseudonym, ciphertext, language)
        for item in items:
            item.urgent = self._urgent.get(item.broadcast_id, False)
            item.outside_window = self._outside_window.get(item.broadcast_id, OutsideWindow.SKIP)
            found = addresses.get(item.worker_id) if item.worker_id is not None else None
            if found is not None and item.worker_id is not None:
                pseudonym, ciphertext, item.worker_language = found
                item.pseudonym = pseudonym
                try:
                    item.address = self.keyring.decrypt(
                        ciphertext, address_purpose(pseudonym, self.channel, item.worker_id)
                    ).decode()
                except DecryptionError:  # a removed key or a changed row: nobody to send to
                    log.error("address of broadcast delivery %d does not decrypt", item.id)

    def _payload(self, topic: str | None, language: str, text: str) -> Outbound:
        choices: tuple[Choice, ...] = ()
        if topic and self.lesson_button is not None:
            choices = (self.lesson_button(topic, language),)
        return Outbound(f"{text}\n\n{footer(language)}", choices)

    # -- sending ------------------------------------------------------------------------------

    async def _send_batch(
        self, items: list[_Item], token: str, deadline: float, stop: asyncio.Event | None
    ) -> None:
        outcomes = _Outcomes()
        queue = list(reversed(self._screen(items, outcomes)))
        in_flight: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        last_flush = time.monotonic()
        while queue:
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                now = utc_now()  # not sent in time: back for anyone to take
                outcomes.later.extend((item.id, now, False, False) for item in queue)
                queue.clear()
                break
            wanted = min(len(queue), max(1, int(self.rate.rate / 20)))
            granted = await self.rate.take(wanted, Lane.BROADCAST)
            chunk = [queue.pop() for _ in range(min(granted, len(queue)))]
            allowed = await self.rate.chat_slots([item.worker_id or 0 for item in chunk])
            for item, may in zip(chunk, allowed, strict=True):
                if not may:  # this chat got a message less than a second ago
                    later = utc_now() + timedelta(seconds=max(1.0, self.chat_interval))
                    outcomes.later.append((item.id, later, False, False))
                    continue
                await slots.acquire()
                task = asyncio.create_task(self._send_one(item, outcomes))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: slots.release())
            if len(outcomes) >= FLUSH_ROWS or time.monotonic() - last_flush >= self.flush_seconds:
                await self._flush(outcomes, token)
                last_flush = time.monotonic()
        if in_flight:
            await asyncio.gather(*in_flight)
        await self._flush(outcomes, token)

    def _screen(self, items: list[_Item], outcomes: _Outcomes) -> list[_Item]:
        """Rows that cannot or must not go now: forgotten workers, quiet hours."""
        now = utc_now()
        ready = []
        for item in items:
            if item.worker_id is None:
                outcomes.failed.append((item.id, "the worker used /forget"))
                continue
            if item.address is None:
                outcomes.failed.append((item.id, f"no {self.channel} address for the worker"))
                continue
            if (item.broadcast_id, item.language) not in self._payloads:
                outcomes.failed.append((item.id, "no text in this language"))
                continue
            if not item.urgent:
                wait = self.policy.quiet_until(now, item.timezone)
                if wait is not None:
                    outcomes.later.append((item.id, wait, True, False))
                    continue
            ready.append(item)
        return ready

    async def _send_one(self, item: _Item, outcomes: _Outcomes) -> None:
        assert item.address is not None
        payload = self._payloads[(item.broadcast_id, item.language)]
        try:
            try:
                message_ids = await self.sender.send(item.address, payload)
            except WindowClosed:
                if item.outside_window == OutsideWindow.TEMPLATE:
                    language = item.worker_language or item.language
                    reason = await self.opening.ask(self.sender, item.address, language)
                    outcomes.held.append((item, reason))
                else:
                    outcomes.skipped.append(item.id)
                return
        except Unreachable:
            outcomes.blocked.append((item.id, item.worker_id))
        except RetryAfter as limited:
            self.stats.rate_limited += 1
            if not limited.chat_only:  # a pair-rate limit holds back only this worker's row
                await self.rate.pause(limited.seconds)
            later = utc_now() + timedelta(seconds=limited.seconds)
            outcomes.later.append((item.id, later, False, False))
        except Rejected as reason:
            outcomes.failed.append((item.id, str(reason)[:200]))
        except ChannelDown as reason:
            outcomes.problems[str(reason)] += 1
            outcomes.later.append((item.id, utc_now() + timedelta(seconds=30), False, False))
        except Exception as failure:  # trouble with this message: try again later, a few times
            if item.attempts + 1 >= MAX_ATTEMPTS:
                outcomes.failed.append((item.id, type(failure).__name__))
            else:
                later = utc_now() + timedelta(seconds=min(300, 5 * 2**item.attempts))
                outcomes.later.append((item.id, later, False, True))
            outcomes.problems[type(failure).__name__] += 1
        else:
            outcomes.sent.append(item.id)
            ref = external_ref(self.sender, message_ids)
            if ref is not None:
                outcomes.refs[item.id] = ref
            if item.pseudonym is not None:
                outcomes.shown.extend(
                    (item.pseudonym, number) for number in numeric_ids(message_ids)
                )

    async def _flush(self, outcomes: _Outcomes, token: str) -> None:
        """Record outcomes; take them out of ``outcomes`` (tasks may still be adding more)."""
        sent, outcomes.sent = outcomes.sent, []
        blocked, outcomes.blocked = outcomes.blocked, []
        failed, outcomes.failed = outcomes.failed, []
        later, outcomes.later = outcomes.later, []
        problems, outcomes.problems = outcomes.problems, Counter()
        shown, outcomes.shown = outcomes.shown, []
        refs, outcomes.refs = outcomes.refs, {}
        skipped, outcomes.skipped = outcomes.skipped, []
        held, outcomes.held = outcomes.held, []
        for problem, count in problems.items():
            log.warning(
                "%d broadcast deliveries not sent (%s); they will be retried", count, problem
            )
        if not (sent or blocked or failed or later or skipped or held):
            return
        now = utc_now()
        mine = (
            BroadcastDelivery.claim == token,
            BroadcastDelivery.status == DeliveryStatus.PENDING,
        )
        async with self.database.transaction() as session:
            if sent:
                # Every row's ref in the same statement (a CASE on the id), not one at a time.
                ref_values = {}
                if refs:
                    ref_values["external_ref"] = case(
                        refs, value=BroadcastDelivery.id, else_=BroadcastDelivery.external_ref
                    )
                await session.execute(
                    update(BroadcastDelivery)
                    .where(
                        BroadcastDelivery.id.in_(sent),
                        BroadcastDelivery.status == DeliveryStatus.PENDING,
                    )
                    .values(
                        status=DeliveryStatus.SENT,
                        sent_at=now,
                        attempts=BroadcastDelivery.attempts + 1,
                        claim=None,
                        waiting_quiet=False,
                        **ref_values,
                    )
                )
            if blocked:
                await session.execute(
                    update(BroadcastDelivery)
                    .where(BroadcastDelivery.id.in_([row for row, _ in blocked]))
                    .where(BroadcastDelivery.status == DeliveryStatus.PENDING)
                    .values(
                        status=DeliveryStatus.BLOCKED,
                        last_error="the worker blocked the bot",
                        claim=None,
                    )
                )
                workers = [worker for _, worker in blocked if worker is not None]
                if workers:
                    await session.execute(mark_blocked(workers, now))
            for row, reason in failed:
                await session.execute(
                    update(BroadcastDelivery)
                    .where(
                        BroadcastDelivery.id == row,
                        BroadcastDelivery.status == DeliveryStatus.PENDING,
                    )
                    .values(
                        status=DeliveryStatus.FAILED,
                        last_error=reason,
                        attempts=BroadcastDelivery.attempts + 1,
                        claim=None,
                    )
                )
            if skipped:
                await session.execute(
                    update(BroadcastDelivery)
                    .where(BroadcastDelivery.id.in_(skipped), *mine)
                    .values(
                        status=DeliveryStatus.SKIPPED,
                        last_error="outside the worker's WhatsApp 24-hour window",
                        claim=None,
                        waiting_quiet=False,
                    )
                )
            for item, reason in held:  # not an attempt: it goes when the worker writes
                await session.execute(
                    update(BroadcastDelivery)
                    .where(BroadcastDelivery.id == item.id, *mine)
                    .values(
                        held_for_window=True,
                        next_attempt_at=now + BROADCAST_HOLD,  # then given up as skipped
                        last_error=reason,
                        claim=None,
                        waiting_quiet=False,
                    )
                )
            groups: dict[tuple[datetime, bool, bool], list[int]] = {}
            for row, when, quiet, counted in later:
                groups.setdefault((when, quiet, counted), []).append(row)
            for (when, quiet, counted), rows in groups.items():
                values: dict[str, object] = {
                    "next_attempt_at": when,
                    "waiting_quiet": quiet,
                    "claim": None,
                }
                if counted:
                    values["attempts"] = BroadcastDelivery.attempts + 1
                await session.execute(
                    update(BroadcastDelivery)
                    .where(BroadcastDelivery.id.in_(rows), *mine)
                    .values(**values)
                )
        if shown and self.history is not None:
            try:
                await self.history.add_many(shown)
            except Exception as error:  # the messages went out; only /forget's reach is less
                log.warning(
                    "broadcast messages not added to chat history: %s", type(error).__name__
                )
        self.stats.sent += len(sent)
        self.stats.blocked += len(blocked)
        self.stats.failed += len(failed)
        self.stats.deferred += len(later)
        self.stats.skipped += len(skipped)
        self.stats.held += len(held)
        await self._release_reopened([item for item, _ in held])

    async def _release_reopened(self, items: list[_Item]) -> None:
        """Held rows whose worker wrote meanwhile (their release may have run first) go now."""
        for item in items:
            if item.worker_id is None or item.address is None:
                continue
            if await self.opening.reopened(item.address):
                async with self.database.transaction() as session:
                    await session.execute(release_deliveries(item.worker_id, self.channel))


def lesson_button(topic: str, language: str) -> Choice:
    """The "Read the lesson" button under a broadcast made from a lesson topic."""
    from conversations.learn import learn_payload

    return Choice("📖 " + translator(language).gettext("Read the lesson"), learn_payload(topic))

"""Delivery receipts: what a messenger reports later of a message the relays sent (sent,
delivered, read, failed), recorded on its outbox or broadcast row, and what a late failure means.

A relay keeps the ref of what it sent (``external_ref``: a keyed token of the messenger's message
id, never the id, which for WhatsApp encodes the phone number); a receipt names the same token,
so it finds its row without a number or an id being stored anywhere.

Receipts come late, twice, and out of order (a "read" before its "delivered"). A row's
``receipt`` only moves up the ranks of ``ReceiptStatus``: sent < delivered < read < failed, so
failed is terminal. The ranks decide, not the messenger's timestamps: those are whole seconds
(sent and delivered often share one) and no clock may undo a failure. A receipt for a ref no row
has (a reply sent within a turn, not through a relay; a row since deleted) is ignored and
counted.

A failure that moves a row to ``failed`` has consequences, once (a repeat finds it failed):

- the worker blocked the bot or cannot receive (``Undelivered.BLOCKED``): they are marked blocked
  (no broadcast reaches them until they write again); an outbox message becomes ``unreachable``
  and, for a case message, staff are told as when the send itself is refused
  (``casework.tell_staff_unreachable``); a broadcast delivery becomes ``blocked``.
- the 24-hour window was closed after all (``Undelivered.WINDOW_CLOSED``, reported after the send
  was accepted): an outbox message is due again, marked ``CLOSED_AFTER_SENDING``, and the outbox
  relay takes it down the window path as if it had been refused at once: the worker's window is
  forgotten, the neutral template asks once, the message is held until they write
  (``services/window_hold.py``). A broadcast
  delivery is ``failed`` with that reason: it is counted as not delivered, and not resent later
  out of its moment (a broadcast is news of a day, not a message a case waits for).
- anything else: ``failed``, naming the codes (``wvb outbox retry`` can put an outbox message
  back).

Only rows still ``sent`` change state; a failure of a message already held, failed or given up
moves only its ``receipt``.

A receipt can overtake its ref: the broadcast relay records what it sent in batches, up to a
second later. A failure whose ref matches no row is therefore tried once more after
``late_ref_seconds``; other receipts are not (a later one follows, and "sent" alone changes
nothing).

One transaction per batch: the rows of all its refs are read and locked (``FOR UPDATE`` on
PostgreSQL; SQLite serialises writers), merged here, and written back with one statement per
resulting state, never one per receipt. Logs carry counts and kinds only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.parties import Side
from domain.statuses import DeliveryStatus, OutboxStatus, ReceiptStatus
from services.casework import tell_staff_unreachable
from services.outbox import Outbox
from services.window_hold import CLOSED_AFTER_SENDING
from services.workers import mark_blocked
from storage.database import Database
from storage.models import BroadcastDelivery, OutboxMessage, utc_now

log = logging.getLogger(__name__)

#: How long a failure whose ref no row has yet waits before it is tried once more.
LATE_REF_SECONDS = 5.0
#: A receipt moves a row only up these ranks.
RANK: dict[ReceiptStatus, int] = {status: rank for rank, status in enumerate(ReceiptStatus)}


class Undelivered(StrEnum):
    """Why a messenger says a message it had accepted did not arrive."""

    BLOCKED = "blocked"  # the worker blocked the bot, or cannot receive messages
    WINDOW_CLOSED = "window_closed"  # WhatsApp's 24-hour window was closed
    OTHER = "other"


#: The meaning of one of the messenger's error codes (the channel knows its codes).
FailureOf = Callable[[int], Undelivered]


class Receipt(NamedTuple):
    """One status report: the ref of the message, its status (a ``ReceiptStatus`` value;
    anything else is counted and ignored) and, for a failure, the messenger's error codes."""

    ref: str
    status: str
    error_codes: tuple[int, ...] = ()


@dataclass
class ReceiptCounts:
    """What one batch did (for logs and tests: counts, never refs)."""

    moved: Counter[str] = field(default_factory=Counter)  # rows, by the receipt they moved to
    unchanged: int = 0  # rows a receipt did not move: a repeat, or older news
    unknown_refs: int = 0
    unknown_statuses: int = 0
    blocked: int = 0  # rows given up because the worker blocked the bot
    held: int = 0  # outbox messages held for the worker's window
    failed: int = 0  # rows failed for another reason (window closed included, for broadcasts)


@dataclass(frozen=True)
class _Report:
    """Everything a batch says of one ref: its highest status and the codes of its failures."""

    status: ReceiptStatus
    codes: frozenset[int] = frozenset()


def _fold(receipts: Sequence[Receipt]) -> tuple[dict[str, _Report], int]:
    """The reports of a batch, one per ref, and how many receipts had an unknown status."""
    reports: dict[str, _Report] = {}
    unknown = 0
    for receipt in receipts:
        if receipt.status not in RANK:
            unknown += 1
            continue
        status = ReceiptStatus(receipt.status)
        codes = frozenset(receipt.error_codes) if status is ReceiptStatus.FAILED else frozenset()
        current = reports.get(receipt.ref)
        if current is None or RANK[status] > RANK[current.status]:
            reports[receipt.ref] = _Report(status, codes)
        elif status is current.status:
            reports[receipt.ref] = _Report(status, current.codes | codes)
    return reports, unknown


class DeliveryReceipts:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        failure_of: FailureOf,
        *,
        late_ref_seconds: float = LATE_REF_SECONDS,
    ) -> None:
        """``outbox`` queues the staff alert of a case message that did not arrive;
        ``failure_of`` reads the messenger's error codes."""
        self.database = database
        self.outbox = outbox
        self.failure_of = failure_of
        self.late_ref_seconds = late_ref_seconds

    async def record(self, receipts: Sequence[Receipt]) -> ReceiptCounts:
        """Record one batch of receipts (one webhook delivery) in one transaction."""
        reports, unknown_statuses = _fold(receipts)
        counts = ReceiptCounts(unknown_statuses=unknown_statuses)
        unmatched = await self._apply(reports, counts)
        failed = ReceiptStatus.FAILED
        late = {ref: reports[ref] for ref in unmatched if reports[ref].status is failed}
        if late and self.late_ref_seconds > 0:
            await asyncio.sleep(self.late_ref_seconds)
            unmatched = (unmatched - late.keys()) | await self._apply(late, counts)
        counts.unknown_refs = len(unmatched)
        log.info(
            "delivery receipts: %d rows moved %s, %d unchanged, %d unknown refs, "
            "%d unknown statuses; %d blocked, %d held for the window, %d failed",
            sum(counts.moved.values()), dict(sorted(counts.moved.items())), counts.unchanged,
            counts.unknown_refs, counts.unknown_statuses, counts.blocked, counts.held,
            counts.failed,
        )  # fmt: skip
        return counts

    async def _apply(self, reports: dict[str, _Report], counts: ReceiptCounts) -> set[str]:
        """Apply ``reports`` in one transaction; return the refs no row has."""
        if not reports:
            return set()
        refs = list(reports)
        staff_told = False
        async with self.database.transaction() as session:
            messages = (
                await session.execute(
                    select(
                        OutboxMessage.id, OutboxMessage.external_ref, OutboxMessage.receipt,
                        OutboxMessage.status, OutboxMessage.worker_id, OutboxMessage.case_id,
                        OutboxMessage.recipient,
                    )
                    .where(OutboxMessage.external_ref.in_(refs))
                    .with_for_update()
                )
            ).all()  # fmt: skip
            deliveries = (
                await session.execute(
                    select(
                        BroadcastDelivery.id, BroadcastDelivery.external_ref,
                        BroadcastDelivery.receipt, BroadcastDelivery.status,
                        BroadcastDelivery.worker_id,
                    )
                    .where(BroadcastDelivery.external_ref.in_(refs))
                    .with_for_update()
                )
            ).all()  # fmt: skip
            failed_messages = await self._move(session, OutboxMessage, messages, reports, counts)
            failed_deliveries = await self._move(
                session, BroadcastDelivery, deliveries, reports, counts
            )
            blocked_workers = [
                row.worker_id
                for row in (*failed_messages, *failed_deliveries)
                if row.worker_id is not None
                and self._failure(reports[row.external_ref]) is Undelivered.BLOCKED
            ]
            if blocked_workers:
                await session.execute(mark_blocked(blocked_workers, utc_now()))
            staff_told = await self._outbox_consequences(session, failed_messages, reports, counts)
            await self._broadcast_consequences(session, failed_deliveries, reports, counts)
        if staff_told or counts.held:
            self.outbox.wake()
        return set(refs) - {row.external_ref for row in (*messages, *deliveries)}

    @staticmethod
    async def _move(
        session: AsyncSession,
        model: type[OutboxMessage] | type[BroadcastDelivery],
        rows: Sequence[Any],
        reports: dict[str, _Report],
        counts: ReceiptCounts,
    ) -> list[Any]:
        """Move each row's receipt up to its report's (one UPDATE per new receipt); return the
        rows that failed just now."""
        moving: dict[ReceiptStatus, list[int]] = defaultdict(list)
        failed_now = []
        for row in rows:
            report = reports[row.external_ref]
            if row.receipt in RANK and RANK[ReceiptStatus(row.receipt)] >= RANK[report.status]:
                counts.unchanged += 1
                continue
            moving[report.status].append(row.id)
            if report.status is ReceiptStatus.FAILED:
                failed_now.append(row)
        for receipt, ids in moving.items():
            await session.execute(update(model).where(model.id.in_(ids)).values(receipt=receipt))
            counts.moved[receipt] += len(ids)
        return failed_now

    def _failure(self, report: _Report) -> Undelivered:
        """The gravest meaning among a failure's codes (blocked, then window closed)."""
        meanings = {self.failure_of(code) for code in report.codes}
        for meaning in (Undelivered.BLOCKED, Undelivered.WINDOW_CLOSED):
            if meaning in meanings:
                return meaning
        return Undelivered.OTHER

    def _reason(self, report: _Report) -> str:
        codes = ", ".join(str(code) for code in sorted(report.codes)) or "no code"
        meaning = {
            Undelivered.BLOCKED: "the worker blocked the bot or cannot receive messages",
            Undelivered.WINDOW_CLOSED: "the worker's 24-hour window was closed",
            Undelivered.OTHER: "not delivered",
        }[self._failure(report)]
        return f"error {codes}: {meaning} (reported after sending)"[:200]

    async def _outbox_consequences(
        self,
        session: AsyncSession,
        failed: list[Any],
        reports: dict[str, _Report],
        counts: ReceiptCounts,
    ) -> bool:
        """Outbox messages still ``sent`` that failed now: given up, held or failed. Returns
        whether staff were told of a case message that did not arrive."""
        groups: dict[tuple[Undelivered, str], list[int]] = defaultdict(list)
        unreachable_cases: dict[str, set[int]] = defaultdict(set)  # by reason
        for row in failed:
            if row.status != OutboxStatus.SENT:
                continue
            report = reports[row.external_ref]
            failure, reason = self._failure(report), self._reason(report)
            groups[(failure, reason)].append(row.id)
            case_message = row.recipient == Side.WORKER and row.case_id is not None
            if failure is Undelivered.BLOCKED and case_message:
                unreachable_cases[reason].add(row.case_id)
        staff_told = 0
        for reason, case_ids in unreachable_cases.items():
            staff_told += await tell_staff_unreachable(session, self.outbox, case_ids, reason)
        now = utc_now()
        for (failure, reason), ids in groups.items():
            values: dict[str, object] = {"last_error": reason}
            if failure is Undelivered.BLOCKED:
                values["status"] = OutboxStatus.UNREACHABLE
                counts.blocked += len(ids)
            elif failure is Undelivered.WINDOW_CLOSED:
                # Not held here: the relay must first forget the window and send the template,
                # which this service cannot (it has neither the address nor a sender).
                values.update(status=OutboxStatus.PENDING, held_for_window=False, sent_at=None,
                              next_attempt_at=now, last_error=CLOSED_AFTER_SENDING)  # fmt: skip
                counts.held += len(ids)
            else:
                values["status"] = OutboxStatus.FAILED
                counts.failed += len(ids)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.SENT)
                .values(**values)
            )
        return staff_told > 0

    async def _broadcast_consequences(
        self,
        session: AsyncSession,
        failed: list[Any],
        reports: dict[str, _Report],
        counts: ReceiptCounts,
    ) -> None:
        """Broadcast deliveries still ``sent`` that failed now: blocked, or failed."""
        groups: dict[tuple[DeliveryStatus, str], list[int]] = defaultdict(list)
        for row in failed:
            if row.status != DeliveryStatus.SENT:
                continue
            report = reports[row.external_ref]
            blocked = self._failure(report) is Undelivered.BLOCKED
            status = DeliveryStatus.BLOCKED if blocked else DeliveryStatus.FAILED
            groups[(status, self._reason(report))].append(row.id)
        for (status, reason), ids in groups.items():
            if status is DeliveryStatus.BLOCKED:
                counts.blocked += len(ids)
            else:
                counts.failed += len(ids)
            await session.execute(
                update(BroadcastDelivery)
                .where(
                    BroadcastDelivery.id.in_(ids), BroadcastDelivery.status == DeliveryStatus.SENT
                )
                .values(status=status, last_error=reason)
            )

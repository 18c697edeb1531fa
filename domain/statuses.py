"""Where a case, a broadcast and a queued message stand. The values are stored (CHECK
constraints in ``storage/migrations`` list them), so they never change.

A case moves ``received`` → ``acknowledged`` → ``investigating`` → ``awaiting_validation`` →
``closed``; a worker's "no" or "partly" sends it to ``reopened``; staff can end it as
``closed_unvalidated`` (with a reason) and the worker as ``withdrawn``. Which move is allowed,
and by whom, is ``services/lifecycle.py``.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    AWAITING_VALIDATION = "awaiting_validation"
    REOPENED = "reopened"
    CLOSED = "closed"
    CLOSED_UNVALIDATED = "closed_unvalidated"
    WITHDRAWN = "withdrawn"


#: Staff are working on it: remediation can be recorded, the response clock runs.
OPEN: frozenset[CaseStatus] = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.ACKNOWLEDGED,
        CaseStatus.INVESTIGATING,
        CaseStatus.REOPENED,
    }
)
#: Nothing moves a case out of these.
TERMINAL: frozenset[CaseStatus] = frozenset(
    {CaseStatus.CLOSED, CaseStatus.CLOSED_UNVALIDATED, CaseStatus.WITHDRAWN}
)
#: Not ended yet: open, or waiting for the worker's answer about the fix (the case clock
#: escalates these when they are overdue).
UNRESOLVED: frozenset[CaseStatus] = OPEN | {CaseStatus.AWAITING_VALIDATION}


class BroadcastState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


#: A broadcast in one of these is over: it sends nothing more.
BROADCAST_ENDED: frozenset[BroadcastState] = frozenset(
    {BroadcastState.DONE, BroadcastState.CANCELLED}
)


class DeliveryStatus(StrEnum):
    """One recipient of one broadcast."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"  # the worker blocked the bot
    SKIPPED = "skipped"  # WhatsApp: outside the worker's 24-hour window, the broadcast skips them


class OutsideWindow(StrEnum):
    """What a broadcast does for a WhatsApp worker whose 24-hour window is closed."""

    SKIP = "skip"  # not sent to them; counted as skipped
    TEMPLATE = (
        "template"  # the neutral template asks them to write; the broadcast goes when they do
    )


class OutboxStatus(StrEnum):
    """One message in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # the worker used /forget, blocked the bot or has no address


class ReceiptStatus(StrEnum):
    """What the messenger last reported of a sent message (the ``receipt`` of an outbox or
    broadcast row; WhatsApp's status callbacks). Listed in rank order: a receipt only moves
    up, and ``failed`` is terminal (``services/delivery_receipts.py``)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

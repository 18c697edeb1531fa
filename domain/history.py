"""What a case's history records (``case_events.action``) and the casework that falls due
(``case_tasks.kind``). Values are stored and shown to staff in ``wvb cases show``."""

from __future__ import annotations

from enum import StrEnum

from domain.answers import Answer


class CaseAction(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    STATUS_CHANGED = "status_changed"
    ASSIGNED = "assigned"
    NOTE = "note"
    STAFF_MESSAGE = "staff_message"
    REMEDIATION = "remediation"
    CLOSED_UNVALIDATED = "closed_unvalidated"
    WORKER_MESSAGE = "worker_message"
    VALIDATION_OVERDUE = "validation_overdue"
    ACKNOWLEDGE_OVERDUE = "acknowledge_overdue"  # an urgent case not acknowledged in time
    WORKER_UNREACHABLE = "worker_unreachable"
    # The reporter used /forget while the case waited for their answer about a fix: nobody can
    # ask them any more (their reminders stop; the case stays open until staff end it).
    REPORTER_FORGOT = "reporter_forgot"
    WITHDRAWN = "withdrawn"  # the worker withdrew the report
    CONTENT_PURGED = "content_purged"  # retention, `wvb cases purge` or a withdrawal


def validation_action(answer: Answer) -> str:
    """The event of a worker's answer about the fix: ``validation_yes`` … ``validation_unsure``."""
    return f"validation_{answer}"


def retaliation_action(answer: Answer) -> str:
    """The event of a worker's answer to the retaliation check-in: ``retaliation_yes|no``."""
    return f"retaliation_{answer}"


class TaskKind(StrEnum):
    VALIDATION_REMINDER = "validation_reminder"
    VALIDATION_OVERDUE = "validation_overdue"
    RETALIATION_CHECKIN = "retaliation_checkin"
    ACKNOWLEDGE_OVERDUE = "acknowledge_overdue"  # urgent cases: flagged when not acknowledged

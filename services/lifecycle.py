"""The case lifecycle, in one place: which move is allowed from which status, and by whom.

The rule at the heart of this project — only a worker's confirmation moves a case to ``closed`` —
lives here and, independently, in the database (migration 0003: a trigger refuses ``closed``
without a worker's "yes" for the current remediation round), so no caller can bypass it.
"""

from __future__ import annotations

from domain.answers import VALIDATION_ANSWERS, Answer
from domain.errors import Refusal
from domain.statuses import OPEN, TERMINAL, UNRESOLVED, CaseStatus

#: Statuses staff may set directly. The rest come from remediation, validation or the worker.
STAFF_SETTABLE = frozenset({CaseStatus.ACKNOWLEDGED, CaseStatus.INVESTIGATING})
ANSWERS = VALIDATION_ANSWERS
#: What the worker's answer about the fix does to a case waiting for it (unsure: nothing yet).
_AFTER_ANSWER = {
    Answer.YES: CaseStatus.CLOSED,
    Answer.PARTLY: CaseStatus.REOPENED,
    Answer.NO: CaseStatus.REOPENED,
}


class LifecycleError(Refusal):
    """A move the lifecycle does not allow from the case's status. ``field`` names the part of
    a close request that is missing (``unvalidated``, ``reason``), else None; the reason says why
    in one line."""


def staff_sets(current: str, target: str) -> CaseStatus:
    if target == CaseStatus.CLOSED:
        raise LifecycleError(
            None,
            "only a worker's confirmation closes a case; staff can close it only as "
            "unvalidated, with a reason",
        )
    if target not in STAFF_SETTABLE:
        raise LifecycleError(None, f"staff cannot set a case to {target!r} directly")
    if current not in OPEN:
        raise LifecycleError(None, f"the case is {current}; it cannot become {target}")
    if current == target or (
        current == CaseStatus.INVESTIGATING and target == CaseStatus.ACKNOWLEDGED
    ):
        raise LifecycleError(None, f"the case is already {current}")
    return CaseStatus(target)


def remediated(current: str) -> CaseStatus:
    if current not in OPEN:
        raise LifecycleError(None, f"remediation is recorded on open cases; this one is {current}")
    return CaseStatus.AWAITING_VALIDATION


def validated(current: str, answer: str) -> CaseStatus:
    """The worker's answer about the fix: yes closes, partly or no reopens, unsure waits."""
    if answer not in ANSWERS:
        raise LifecycleError("answer", f"unknown answer {answer!r}")
    if current != CaseStatus.AWAITING_VALIDATION:
        raise LifecycleError(None, f"the case is {current}, not waiting for validation")
    return _AFTER_ANSWER.get(Answer(answer), CaseStatus(current))


def staff_closes(current: str, *, unvalidated: bool, reason: str | None) -> CaseStatus:
    if current in TERMINAL:
        raise LifecycleError(None, f"the case is already {current}")
    if not unvalidated:
        raise LifecycleError(
            "unvalidated",
            "workers have not confirmed the remediation, and a case closes when they do; to "
            "close it anyway, close it as unvalidated and give the reason (reported separately)",
        )
    if not reason or not reason.strip():
        raise LifecycleError("reason", "closing a case unvalidated needs a reason saying why")
    return CaseStatus.CLOSED_UNVALIDATED


def withdrawn(current: str) -> CaseStatus:
    """The worker withdraws their report: allowed until the case has ended (open, or waiting
    for their answer about a fix)."""
    if current not in UNRESOLVED:
        raise LifecycleError(None, f"the case is {current}; it can no longer be withdrawn")
    return CaseStatus.WITHDRAWN

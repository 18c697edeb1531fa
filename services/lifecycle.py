"""The case lifecycle, in one place: which move is allowed from which status, and by whom.

The rule at the heart of this project — only a worker's confirmation moves a case to ``closed`` —
lives here and, independently, in the database (migration 0003: a trigger refuses ``closed``
without a worker's "yes" for the current remediation round), so no caller can bypass it.
"""

from __future__ import annotations

OPEN = frozenset({"received", "acknowledged", "investigating", "reopened"})
TERMINAL = frozenset({"closed", "closed_unvalidated", "withdrawn"})
#: Statuses staff may set directly. The rest come from remediation, validation or the worker.
STAFF_SETTABLE = frozenset({"acknowledged", "investigating"})
ANSWERS = ("yes", "partly", "no", "unsure")


class LifecycleError(Exception):
    """A move the lifecycle does not allow; the message says why, in one line."""


def staff_sets(current: str, target: str) -> str:
    if target == "closed":
        raise LifecycleError("only a worker's confirmation closes a case; see `wvb cases close`")
    if target not in STAFF_SETTABLE:
        raise LifecycleError(f"staff cannot set a case to {target!r} directly")
    if current not in OPEN:
        raise LifecycleError(f"the case is {current}; it cannot become {target}")
    if current == target or (current == "investigating" and target == "acknowledged"):
        raise LifecycleError(f"the case is already {current}")
    return target


def remediated(current: str) -> str:
    if current not in OPEN:
        raise LifecycleError(f"remediation is recorded on open cases; this one is {current}")
    return "awaiting_validation"


def validated(current: str, answer: str) -> str:
    """The worker's answer about the fix: yes closes, partly or no reopens, unsure waits."""
    if answer not in ANSWERS:
        raise LifecycleError(f"unknown answer {answer!r}")
    if current != "awaiting_validation":
        raise LifecycleError(f"the case is {current}, not waiting for validation")
    return {"yes": "closed", "partly": "reopened", "no": "reopened"}.get(answer, current)


def staff_closes(current: str, *, unvalidated: bool, reason: str | None) -> str:
    if current in TERMINAL:
        raise LifecycleError(f"the case is already {current}")
    if not unvalidated:
        raise LifecycleError(
            "workers have not confirmed the remediation; a case closes when they do. "
            "To close it anyway use --unvalidated --reason TEXT (reported separately)"
        )
    if not reason or not reason.strip():
        raise LifecycleError("--unvalidated needs --reason TEXT saying why")
    return "closed_unvalidated"

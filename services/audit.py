"""The audit log: who did what to which case, written in the same transaction as the action."""

from __future__ import annotations

import getpass

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


def cli_actor() -> str:
    """How a staff member at the command line is named until staff accounts exist (issue 4)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def record(
    session: AsyncSession,
    actor: str,
    action: str,
    subject: str | None = None,
    **details: object,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, subject=subject, details=details))

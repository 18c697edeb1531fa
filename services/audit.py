"""The audit log: who did what to which case, written in the same transaction as the action.

Rows are hash-chained as they are flushed (``storage/audit_chain.py``); ``verify`` checks the
chain.
"""

from __future__ import annotations

import os
import pwd

from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Actor
from storage.audit_chain import ChainReport
from storage.audit_chain import verify as verify_chain
from storage.database import Database
from storage.models import AuditEntry


def os_account() -> str | None:
    """The operating-system account running this process, from the kernel's user id: not
    ``$LOGNAME`` or ``$USER``, which anyone can set to another name."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no passwd entry (some containers)
        return None


def cli_actor() -> str:
    """How a staff member at the command line is named in the audit log: their OS account."""
    account = os_account()
    return f"cli:{account}" if account else f"cli:uid{os.getuid()}"


def record(
    session: AsyncSession,
    actor: str | Actor,
    action: str,
    subject: str | None = None,
    **details: object,
) -> None:
    session.add(AuditEntry(actor=str(actor), action=action, subject=subject, details=details))


async def verify(database: Database) -> ChainReport:
    """Walk the whole log and check every row's hash follows from the row before."""
    return await verify_chain(database.engine)


__all__ = ["ChainReport", "cli_actor", "os_account", "record", "verify"]

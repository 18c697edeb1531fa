"""The one place staff roles are enforced (the rule itself is ``domain/access.py``).

Every staff action and view of a service takes an ``actor``. A surface (the CLI, the staff chat,
the web console) only says *who* acts; the service decides whether they may, with ``require``,
before it reads or changes anything, and a refusal is audited as ``staff.refused``. So a role
means the same on every surface, and a new surface cannot forget a check.
"""

from __future__ import annotations

import logging

from domain.access import PERMISSIONS, REFUSED, Actor, ActorLike, Forbidden
from services import audit
from storage.database import Database
from storage.repositories import CaseRepository

log = logging.getLogger(__name__)


async def refuse(database: Database, actor: Actor, action: str, why: str) -> None:
    """Audit a refusal (in its own transaction, since the action's is rolled back)."""
    log.info("staff action %s refused: %s", action, why)
    async with database.transaction() as session:
        audit.record(session, actor.audit_name, "staff.refused", None, command=action, why=why)


async def require(database: Database, actor: ActorLike, permission: str, action: str) -> Actor:
    """The actor, if their role has ``permission``; otherwise the refusal is audited and
    ``Forbidden`` raised. ``action`` names what was tried (``cases.show``) for the audit log."""
    who = Actor.of(actor)
    if who.may(permission):
        return who
    await refuse(database, who, action, f"role {who.role}")
    raise Forbidden(f"your staff role ({who.role}) {REFUSED[permission]}")


async def require_case(
    database: Database, actor: Actor, assigned_to: str | None, action: str
) -> None:
    """Refuse (audited) a case outside an ``assigned_only`` handler's own cases."""
    if actor.sees_case(assigned_to):
        return
    await refuse(database, actor, action, "case not assigned to them")
    raise Forbidden("this case is not assigned to you")


async def require_case_access(
    database: Database, actor: ActorLike, permission: str, reference: str, action: str
) -> Actor:
    """``require``, and for a case handler who works only on assigned cases, that this case is
    assigned to them. Checked in a short read of its own before the action's transaction, so a
    refusal is audited without waiting on the action's write lock."""
    who = await require(database, actor, permission, action)
    if who.assigned_only:
        async with database.sessions() as session:
            case = await CaseRepository(session).named(reference)
            assigned_to = case.assigned_to
        await require_case(database, who, assigned_to, action)
    return who


__all__ = [
    "PERMISSIONS", "Actor", "ActorLike", "Forbidden", "refuse", "require", "require_case",
    "require_case_access",
]  # fmt: skip

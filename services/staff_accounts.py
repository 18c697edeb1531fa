"""Staff accounts and what each role may do. The staff chat commands and the CLI ask here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from domain.errors import NotFound, Refusal
from domain.parties import StaffRole
from services import audit
from storage.crypto import Pseudonymizer
from storage.database import Database
from storage.models import StaffMember

log = logging.getLogger(__name__)

#: Permission -> roles that have it. Case summaries are open to every role; reading what the
#: worker wrote (``cases.read``) and changing a case are not.
PERMISSIONS: dict[str, frozenset[StaffRole]] = {
    "cases.view": frozenset(StaffRole),
    "cases.read": frozenset({StaffRole.ADMIN, StaffRole.CASE_HANDLER}),
    "cases.change": frozenset({StaffRole.ADMIN, StaffRole.CASE_HANDLER}),
    "broadcasts": frozenset({StaffRole.ADMIN, StaffRole.EDUCATOR}),
    "staff.manage": frozenset({StaffRole.ADMIN}),
}


@dataclass(frozen=True)
class Staff:
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"staff:{self.name}"

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


class StaffAccounts:
    def __init__(self, database: Database, pseudonymizer: Pseudonymizer) -> None:
        self.database = database
        self.pseudonymizer = pseudonymizer

    async def add(self, actor: str, name: str, role: str, telegram_id: int | None) -> Staff:
        name = name.strip()
        if not name or len(name) > 64:
            raise Refusal("name", "a staff name needs 1 to 64 characters")
        if role not in set(StaffRole):
            raise Refusal("role", f"must be one of {', '.join(StaffRole)}")
        pseudonym = self.pseudonymizer.pseudonym("telegram", telegram_id) if telegram_id else None
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                member = StaffMember(name=name, role=role, pseudonym=pseudonym)
                session.add(member)
            else:
                member.role, member.active = role, True
                member.pseudonym = pseudonym or member.pseudonym
            audit.record(session, actor, "staff.add", name, role=role)
        return Staff(name, role)

    async def remove(self, actor: str, name: str) -> None:
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                raise NotFound("name", f"no staff member named {name!r}")
            member.active = False
            audit.record(session, actor, "staff.remove", name)

    async def list(self) -> list[dict[str, object]]:
        async with self.database.sessions() as session:
            rows = (await session.execute(select(StaffMember).order_by(StaffMember.name))).scalars()
            return [
                {"name": m.name, "role": m.role, "active": m.active,
                 "telegram": m.pseudonym is not None}
                for m in rows
            ]  # fmt: skip

    async def by_messenger_id(self, channel: str, messenger_id: int | str) -> Staff | None:
        pseudonym = self.pseudonymizer.pseudonym(channel, messenger_id)
        async with self.database.sessions() as session:
            member = await session.scalar(
                select(StaffMember).where(
                    StaffMember.pseudonym == pseudonym, StaffMember.active.is_(True)
                )
            )
            return Staff(member.name, member.role) if member is not None else None

    async def require_at_command_line(
        self, account: str | None, permission: str, command: str
    ) -> None:
        """At the command line a staff member is the active staff account named like their OS
        account (``services.audit.os_account``). Refused (audited) when that account's role
        lacks ``permission``. An OS account with no staff account is the server's operator, who
        holds the keys: a role would be no boundary for them, so it is not refused."""
        if account is None:
            return
        async with self.database.sessions() as session:
            member = await session.scalar(
                select(StaffMember).where(StaffMember.name == account, StaffMember.active.is_(True))
            )
        if member is None or Staff(member.name, member.role).may(permission):
            return
        await self.refused(f"cli:{account}", command, f"role {member.role}")
        raise Refusal(
            None,
            f"your staff role ({member.role}) cannot read what workers wrote; "
            "an admin or a case handler can",
        )

    async def refused(self, actor: str, command: str, why: str) -> None:
        """An unregistered sender, or a role without the permission: audited, and logged."""
        log.warning("staff command /%s refused: %s", command, why)
        async with self.database.transaction() as session:
            audit.record(session, actor, "staff.refused", None, command=command, why=why)

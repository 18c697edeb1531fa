"""Staff accounts and what each role may do. The staff chat commands and the CLI ask here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from domain.access import Actor, ActorLike
from domain.errors import NotFound, Refusal
from domain.parties import StaffRole
from services import audit
from services.access import require
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database
from storage.models import StaffMember

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Staff:
    name: str
    role: str
    assigned_only: bool = False

    @property
    def actor(self) -> Actor:
        """This member acting in the staff chat (``services/access.py`` enforces the role)."""
        return self.acting_on("staff")

    def acting_on(self, surface: str) -> Actor:
        return Actor.staff(self.name, self.role, surface=surface, assigned_only=self.assigned_only)

    def may(self, permission: str) -> bool:
        return self.acting_on("staff").may(permission)


def _sealed_fields(member: StaffMember) -> str:
    return f"staff\x00{member.name}\x00{member.role}\x00{member.pseudonym}\x00{bool(member.active)}"


def seal_staff(member: StaffMember, keyring: Keyring) -> None:
    """Bind the row's name, role, pseudonym and active flag under the data key: a staff row
    planted or promoted by someone who can write to the database but holds no key (say, their
    own worker pseudonym copied in as an admin) is never accepted."""
    member.seal = keyring.blind_index(_sealed_fields(member))


def staff_seal_holds(member: StaffMember, keyring: Keyring, *, newest: bool = False) -> bool:
    """Whether the row's seal is valid under a configured key (``newest``: under the newest)."""
    fields = _sealed_fields(member)
    valid = [keyring.blind_index(fields)] if newest else keyring.blind_indexes(fields)
    return member.seal is not None and member.seal in valid


class StaffAccounts:
    def __init__(self, database: Database, pseudonymizer: Pseudonymizer, keyring: Keyring) -> None:
        self.database = database
        self.pseudonymizer = pseudonymizer
        self.keyring = keyring

    async def add(self, actor: ActorLike, name: str, role: str, telegram_id: int | None) -> Staff:
        actor = await require(self.database, actor, "staff.manage", "staff.add")
        name = name.strip()
        if not name or len(name) > 64:
            raise Refusal("name", "a staff name needs 1 to 64 characters")
        if role not in set(StaffRole):
            raise Refusal("role", f"must be one of {', '.join(StaffRole)}")
        pseudonym = self.pseudonymizer.pseudonym("telegram", telegram_id) if telegram_id else None
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                member = StaffMember(name=name, role=role, pseudonym=pseudonym, active=True)
                session.add(member)
            else:
                member.role, member.active = role, True
                member.pseudonym = pseudonym or member.pseudonym
            seal_staff(member, self.keyring)
            audit.record(session, actor, "staff.add", name, role=role)
        return Staff(name, role)

    async def remove(self, actor: ActorLike, name: str) -> None:
        actor = await require(self.database, actor, "staff.manage", "staff.remove")
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                raise NotFound("name", f"no staff member named {name!r}")
            member.active = False
            seal_staff(member, self.keyring)
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
        """The active staff member writing; one known under a previous ``WVB_SECRET_KEY`` is
        moved to the current key on the way."""
        pseudonym = self.pseudonymizer.pseudonym(channel, messenger_id)
        known = (pseudonym, *self.pseudonymizer.previous_pseudonyms(channel, messenger_id))
        async with self.database.transaction() as session:
            member = await session.scalar(
                select(StaffMember)
                .where(StaffMember.pseudonym.in_(known), StaffMember.active.is_(True))
                .order_by((StaffMember.pseudonym == pseudonym).desc())  # the current first
                .limit(1)
            )
            if member is None:
                return None
            if not staff_seal_holds(member, self.keyring):
                log.error(
                    "staff row %d is not sealed under the configured keys; refused", member.id
                )
                return None
            if member.pseudonym != pseudonym:
                member.pseudonym = pseudonym
                seal_staff(member, self.keyring)
            return Staff(member.name, member.role)

    async def command_line_actor(self, account: str | None, audit_name: str) -> Actor:
        """Who acts at the command line: the active staff account named like the OS account
        (``services.audit.os_account``), with its role, or else the server's operator, who holds
        the keys (a role would be no boundary for them)."""
        member = await self._command_line_member(account)
        if member is None:
            return Actor.operator(audit_name)
        return member.acting_on("cli")

    async def _command_line_member(self, account: str | None) -> Staff | None:
        if account is None:
            return None
        async with self.database.sessions() as session:
            member = await session.scalar(
                select(StaffMember).where(StaffMember.name == account, StaffMember.active.is_(True))
            )
        return None if member is None else Staff(member.name, member.role)

    async def refused(self, actor: ActorLike, command: str, why: str) -> None:
        """An unregistered sender, or a role without the permission: audited, and logged."""
        log.warning("staff command /%s refused: %s", command, why)
        async with self.database.transaction() as session:
            audit.record(session, actor, "staff.refused", None, command=command, why=why)

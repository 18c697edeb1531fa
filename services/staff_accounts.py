"""Staff accounts and what each role may do. The staff chat commands and the CLI ask here."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Actor, ActorLike
from domain.errors import NotFound, Refusal
from domain.parties import StaffRole
from locales import staff_gettext as _
from services import audit
from services.access import require
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database
from storage.models import StaffMember, StaffSession, utc_now

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
    """What the seal covers. Fields added after the first seals are appended only when set,
    so a row sealed before them (none set) keeps its seal."""
    fields = (
        f"staff\x00{member.name}\x00{member.role}\x00{member.pseudonym}\x00{bool(member.active)}"
    )
    if member.assigned_only:
        fields += "\x00assigned_only"
    if member.password_hash is not None:
        fields += f"\x00password\x00{member.password_hash}"
    if member.totp_secret is not None:
        fields += f"\x00totp\x00{hashlib.sha256(member.totp_secret).hexdigest()}"
    if member.invite_hash is not None:
        expires = member.invite_expires_at
        fields += (
            f"\x00invite\x00{member.invite_hash}\x00{expires.isoformat() if expires else 'used'}"
        )
    return fields


def seal_staff(member: StaffMember, keyring: Keyring) -> None:
    """Bind the row's name, role, pseudonym and active flag, and once set its ``assigned_only``
    flag, password hash, TOTP secret and enrolment invitation, under the data key: a staff row
    planted, promoted or given a password or second factor by someone who can write to the
    database but holds no key (say, their own worker pseudonym copied in as an admin, or their
    own password hash copied into an admin's row) is never accepted."""
    member.seal = keyring.blind_index(_sealed_fields(member))


def staff_seal_holds(member: StaffMember, keyring: Keyring, *, newest: bool = False) -> bool:
    """Whether the row's seal is valid under a configured key (``newest``: under the newest)."""
    fields = _sealed_fields(member)
    valid = [keyring.blind_index(fields)] if newest else keyring.blind_indexes(fields)
    return member.seal is not None and member.seal in valid


def totp_purpose(name: str) -> bytes:
    """What a staff member's TOTP secret is encrypted for: copied into another row, it fails."""
    return f"staff-totp\x00{name}".encode()


def pending_totp_purpose(name: str) -> bytes:
    """The secret an enrolment link offers, until the newcomer confirms a code made with it."""
    return f"staff-totp-pending\x00{name}".encode()


async def end_sessions_of(session: AsyncSession, staff_id: int, at: datetime) -> int:
    """End every open web console session of a staff member (in the caller's transaction):
    after a password or second factor changes, a role changes, or the member is removed."""
    result = await session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _distrust_if_changed(member: StaffMember, keyring: Keyring) -> None:
    """Before a row is sealed again: if it was changed behind the bot's back, drop what the
    command does not set anew (its Telegram pseudonym, password, second factor, invitation),
    so resealing never makes a planted value valid. The operator's command sets the rest."""
    if staff_seal_holds(member, keyring):
        return
    log.error("staff row %d was not sealed under the configured keys; its logins are reset",
              member.id)  # fmt: skip
    member.pseudonym = None
    member.password_hash = member.password_set_at = None
    member.totp_secret = member.totp_last_step = member.pending_totp = None
    member.invite_hash = member.invite_expires_at = None


def staff_of(member: StaffMember) -> Staff:
    return Staff(member.name, member.role, bool(member.assigned_only))


class StaffAccounts:
    def __init__(self, database: Database, pseudonymizer: Pseudonymizer, keyring: Keyring) -> None:
        self.database = database
        self.pseudonymizer = pseudonymizer
        self.keyring = keyring

    async def add(
        self,
        actor: ActorLike,
        name: str,
        role: str,
        telegram_id: int | None,
        *,
        assigned_only: bool = False,
    ) -> Staff:
        """Register a staff member, or update one (role, ``assigned_only``, Telegram id). A
        changed role or limit ends their web console sessions: the next page asks them to log
        in again, under the new role."""
        actor = await require(self.database, actor, "staff.manage", "staff.add")
        name = name.strip()
        if not name or len(name) > 64:
            raise Refusal("name", _("a staff name needs 1 to 64 characters"))
        if any(not character.isprintable() for character in name):
            raise Refusal("name", _("a staff name cannot hold control characters"))
        if role not in set(StaffRole):
            raise Refusal("role", f"must be one of {', '.join(StaffRole)}")
        if assigned_only and role != StaffRole.CASE_HANDLER:
            raise Refusal(
                "assigned_only", _("only a case handler can be limited to assigned cases")
            )
        pseudonym = self.pseudonymizer.pseudonym("telegram", telegram_id) if telegram_id else None
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                member = StaffMember(
                    name=name, role=role, pseudonym=pseudonym, active=True,
                    assigned_only=assigned_only,
                )  # fmt: skip
                session.add(member)
            else:
                _distrust_if_changed(member, self.keyring)
                if (member.role, bool(member.assigned_only)) != (role, assigned_only):
                    await end_sessions_of(session, member.id, utc_now())
                member.role, member.active = role, True
                member.assigned_only = assigned_only
                member.pseudonym = pseudonym or member.pseudonym
            seal_staff(member, self.keyring)
            details: dict[str, object] = {"role": role}
            if assigned_only:
                details["assigned_only"] = True
            audit.record(session, actor, "staff.add", name, **details)
        return Staff(name, role, assigned_only)

    async def remove(self, actor: ActorLike, name: str) -> None:
        """Take a member's access away: the staff chat, the console, and any open session."""
        actor = await require(self.database, actor, "staff.manage", "staff.remove")
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                raise NotFound("name", f"no staff member named {name!r}")
            _distrust_if_changed(member, self.keyring)
            member.active = False
            seal_staff(member, self.keyring)
            await end_sessions_of(session, member.id, utc_now())
            audit.record(session, actor, "staff.remove", name)

    async def list(self) -> list[dict[str, object]]:
        async with self.database.sessions() as session:
            rows = (await session.execute(select(StaffMember).order_by(StaffMember.name))).scalars()
            return [
                {"name": m.name, "role": m.role, "active": m.active,
                 "assigned_only": m.assigned_only, "telegram": m.pseudonym is not None,
                 "console": m.password_hash is not None and m.totp_secret is not None}
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
            return staff_of(member)

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
        return None if member is None else staff_of(member)

    async def refused(self, actor: ActorLike, command: str, why: str) -> None:
        """An unregistered sender, or a role without the permission: audited, and logged."""
        log.warning("staff command /%s refused: %s", command, why)
        async with self.database.transaction() as session:
            audit.record(session, actor, "staff.refused", None, command=command, why=why)

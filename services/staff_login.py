"""Staff log in to the web console: a password and a TOTP code, then a server-side session.

The web pages only call this; every rule is here, so it holds whatever page asks:

- **Passwords** are 12 to 1024 characters and not the staff name, kept as argon2id hashes
  (``argon2.PasswordHasher``'s defaults). Setting one ends the member's sessions.
- **The second factor** is TOTP (SHA-1, 6 digits, 30 s). Its secret is encrypted under the
  keyring for this staff name. A code of the step before or after is accepted (a phone's clock
  may be off), but only for a step later than the last one accepted: no code works twice.
- **Newcomers enrol from a link** (``invite``): a random token, kept only as a keyed hash and
  valid 72 hours. The page shows a secret drawn once (``enrolment``, the same on reload); the
  newcomer sets a password and confirms a code (``finish_enrolment``), which uses the link up.
- **Logging in** refuses every failure with the same words (``LoginRefused``); the cause goes
  to the audit log only. Failures are counted per account (5) and per client address (20) in
  15 minutes *before* anything is checked (``services/login_throttle.py``), under blinded keys.
  An unknown name costs an argon2 check too, so timing does not tell which names exist.
- **Sessions** live in ``staff_sessions``: the browser's cookie holds a random 32-byte token,
  the table only its keyed hash and a seal binding it to the member and the time it was made. A
  session ends after ``WVB_CONSOLE_IDLE_MINUTES`` idle, 12 hours after login, at logout, and
  when the member's password, second factor, role or access changes.
- **Staff rows are sealed** (``services/staff_accounts.py``): a row whose password hash, TOTP
  secret, role or invitation was changed by someone without the keys is refused, and logged by
  row id, never by name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pyotp.utils import strings_equal
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import ActorLike
from domain.errors import NotFound, Refusal
from locales import staff_gettext as _
from services import audit
from services.access import require
from services.login_throttle import Limit, LoginThrottle
from services.staff_accounts import (
    Staff,
    end_sessions_of,
    pending_totp_purpose,
    seal_staff,
    staff_of,
    staff_seal_holds,
    totp_purpose,
)
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import StaffMember, StaffSession, utc_now
from storage.rate_limits import AttemptCounter, Blinder

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: How the authenticator app names the account: "Worker Voice: NAME".
ISSUER = "Worker Voice"
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
#: The audit actor of a login attempt before anyone is known (``web:NAME`` once they are).
WEB = "web"
#: Checked when there is no real hash to check (an unknown name, a member without a password),
#: with the same parameters as a real one: argon2id of 32 random bytes, thrown away at once.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$eA0Tdr2ZMcqij4XfZbGdUw"
    "$M7D3qmldSDZn9Ry5ys4uFYuUTxemHM528AA+0mxw9JQ"
)


@dataclass(frozen=True)
class LoginPolicy:
    idle: timedelta = timedelta(minutes=30)  # WVB_CONSOLE_IDLE_MINUTES
    lifetime: timedelta = timedelta(hours=12)
    account_failures: int = 5
    address_failures: int = 20
    failure_window: timedelta = timedelta(minutes=15)
    invitation_valid: timedelta = timedelta(hours=72)
    # A session's last_seen_at is written at most this often: one write per page would be waste.
    touch_every: timedelta = timedelta(seconds=30)


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an inline SVG QR code, drawn on the server (no script)."""
    return str(
        segno.make(uri, micro=False).svg_inline(
            scale=5, title=_("Scan with your authenticator app")
        )
    )


def provisioning_uri(name: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


@dataclass(frozen=True)
class TotpEnrolment:
    """A second factor set from the command line: the secret to type or the URI to scan."""

    secret: str
    uri: str

    def qr_svg(self) -> str:
        return qr_svg(self.uri)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows a newcomer: who they are and the secret to scan."""

    name: str
    secret: str
    uri: str
    expires_at: datetime

    def qr_svg(self) -> str:
        return qr_svg(self.uri)


@dataclass(frozen=True)
class LoginResult:
    """``token`` goes into the session cookie and nowhere else; ``csrf`` into every form."""

    token: str
    staff: Staff
    csrf: str
    session_id: int


@dataclass(frozen=True)
class StaffSessionView:
    """An open session: who it is (``staff.acting_on("web")`` is the actor of every action) and
    the CSRF token its forms must carry."""

    id: int
    staff: Staff
    csrf: str


class LoginRefused(Refusal):
    """Any login that failed: the same words whatever was wrong."""

    def __init__(self) -> None:
        super().__init__(None, _("wrong name, password or code"))


class LoginThrottled(Refusal):
    """Too many failures for this account or from this address: nothing was checked."""

    def __init__(self, retry_after_seconds: int) -> None:
        minutes = max(1, math.ceil(retry_after_seconds / 60))
        super().__init__(
            None, _("too many failed logins; try again in {minutes} min").format(minutes=minutes)
        )
        self.retry_after_seconds = retry_after_seconds


class _Failed(Exception):
    """Why a login failed: for the audit log only."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def check_password(name: str, password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise Refusal(
            "password", _("a password needs at least {count} characters").format(count=PASSWORD_MIN)
        )
    if len(password) > PASSWORD_MAX:
        raise Refusal(
            "password", _("a password has at most {count} characters").format(count=PASSWORD_MAX)
        )
    if password.strip().casefold() == name.strip().casefold():
        raise Refusal("password", _("a password cannot be the staff name"))


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is, within one step of ``now``; None if none is."""
    typed = "".join(code.split())
    if len(typed) != 6 or not (typed.isascii() and typed.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now.timestamp())
    for step in (current - 1, current, current + 1):
        if strings_equal(typed, totp.generate_otp(step)):
            return step
    return None


class StaffLogin:
    """``now`` is the clock (tests move it)."""

    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        counter: AttemptCounter,
        blinder: Blinder,
        policy: LoginPolicy | None = None,
        now: Clock = utc_now,
    ) -> None:
        self.database = database
        self.keyring = keyring
        self.blinder = blinder
        self.policy = policy or LoginPolicy()
        self.now = now
        self.hasher = PasswordHasher()
        self.throttle = LoginThrottle(counter, int(self.policy.failure_window.total_seconds()))

    # -- set by an admin or the operator ----------------------------------------------------

    async def set_password(self, actor: ActorLike, name: str, password: str) -> None:
        """Set (or replace) a member's password; their open sessions end."""
        who = await require(self.database, actor, "staff.manage", "staff.password")
        check_password(name, password)
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        async with self.database.transaction() as session:
            member = await self._sealed_member(session, name)
            now = self.now()
            member.password_hash, member.password_set_at = hashed, now
            seal_staff(member, self.keyring)
            await end_sessions_of(session, member.id, now)
            audit.record(session, who, "staff.password", member.name)

    async def enrol_totp(self, actor: ActorLike, name: str) -> TotpEnrolment:
        """A new second factor for a member (replacing any): the secret to put into their
        authenticator app. Their open sessions end."""
        who = await require(self.database, actor, "staff.manage", "staff.totp")
        secret = pyotp.random_base32()
        async with self.database.transaction() as session:
            member = await self._sealed_member(session, name)
            member.totp_secret = self.keyring.encrypt(secret.encode(), totp_purpose(member.name))
            member.totp_last_step = None
            seal_staff(member, self.keyring)
            await end_sessions_of(session, member.id, self.now())
            audit.record(session, who, "staff.totp", member.name)
        return TotpEnrolment(secret, provisioning_uri(member.name, secret))

    async def invite(self, actor: ActorLike, name: str) -> str:
        """A new enrolment link's token for a member, valid 72 hours; it replaces any earlier
        link. Enrolling sets a new password and second factor, so it also serves a member who
        lost their phone."""
        who = await require(self.database, actor, "staff.manage", "staff.invite")
        token = secrets.token_urlsafe(32)
        expires = self.now().replace(microsecond=0) + self.policy.invitation_valid
        async with self.database.transaction() as session:
            member = await self._sealed_member(session, name)
            member.invite_hash = self.keyring.blind_index(_invite_value(token))
            member.invite_expires_at = expires
            member.pending_totp = None
            seal_staff(member, self.keyring)
            audit.record(session, who, "staff.invite", member.name, expires_at=expires.isoformat())
        return token

    async def can_log_in(self, name: str) -> bool:
        """Whether an active member has both a password and a second factor."""
        async with self.database.sessions() as session:
            member = await session.scalar(
                select(StaffMember).where(StaffMember.name == name, StaffMember.active.is_(True))
            )
        return member is not None and None not in (member.password_hash, member.totp_secret)

    async def check_manageable(self, actor: ActorLike, name: str, action: str) -> None:
        """Refuse now what ``set_password``, ``enrol_totp`` or ``invite`` (``action`` names
        which) would refuse for who is asking and whom: before a surface asks for a password
        it would not accept. Changes nothing."""
        await require(self.database, actor, "staff.manage", action)
        async with self.database.sessions() as session:
            await self._sealed_member(session, name)

    async def end_sessions(self, name: str) -> int:
        """End every open session of a member (say, "log out everywhere"); how many ended."""
        async with self.database.transaction() as session:
            member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
            if member is None:
                raise NotFound("name", _("no staff member named '{name}'").format(name=name))
            return await end_sessions_of(session, member.id, self.now())

    async def _sealed_member(self, session: AsyncSession, name: str) -> StaffMember:
        """An active member whose row holds its seal: resealing a row changed behind our back
        would make the change ours. ``wvb staff add`` registers such a member anew."""
        member = await session.scalar(
            select(StaffMember).where(StaffMember.name == name, StaffMember.active.is_(True))
        )
        if member is None:
            raise NotFound("name", _("no active staff member named '{name}'").format(name=name))
        if not staff_seal_holds(member, self.keyring):
            log.error("staff row %d is not sealed under the configured keys; refused", member.id)
            raise Refusal(
                "name",
                _(
                    "this staff account was changed outside the bot; register it again with "
                    "`wvb staff add` before setting its login"
                ),
            )
        return member

    # -- enrolment from a link ----------------------------------------------------------------

    async def enrolment(self, token: str) -> Enrolment:
        """What the link's page shows: the member's name and a TOTP secret, drawn at the first
        visit and the same on every reload until the enrolment is finished."""
        now = self.now()
        async with self.database.transaction() as session:
            member = await self._invited(session, token, now)
            purpose = pending_totp_purpose(member.name)
            if member.pending_totp is not None:
                secret = self._decrypt_pending(member)
            else:
                secret = pyotp.random_base32()
                drawn = await session.execute(
                    update(StaffMember)
                    .where(StaffMember.id == member.id, StaffMember.pending_totp.is_(None))
                    .values(pending_totp=self.keyring.encrypt(secret.encode(), purpose))
                )
                if getattr(drawn, "rowcount", 1) != 1:  # another reload drew one first
                    await session.refresh(member)
                    secret = self._decrypt_pending(member)
            assert member.invite_expires_at is not None
            return Enrolment(
                member.name, secret, provisioning_uri(member.name, secret), member.invite_expires_at
            )

    async def finish_enrolment(
        self, token: str, password: str, password_again: str, code: str
    ) -> Staff:
        """Set the newcomer's password and second factor, once a code from their app matches
        the secret the page showed. The link is then used up; they log in as anyone does."""
        now = self.now()
        if password != password_again:
            raise Refusal("password_again", _("the two passwords are not the same"))
        async with self.database.sessions() as session:
            member = await self._invited(session, token, now)
            check_password(member.name, password)
            offered = member.pending_totp
            if offered is None:
                raise Refusal("token", _("open the enrolment link again to see the code to scan"))
            secret = self._decrypt_pending(member)
        step = matching_step(secret, code, now)
        if step is None:
            raise Refusal(
                "code",
                _("that is not the code your app shows now; check the phone's time and try again"),
            )
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        async with self.database.transaction() as session:
            member = await self._invited(session, token, now)
            if member.pending_totp != offered:
                raise Refusal("token", _("open the enrolment link again to see the code to scan"))
            member.password_hash, member.password_set_at = hashed, now
            member.totp_secret = self.keyring.encrypt(secret.encode(), totp_purpose(member.name))
            member.totp_last_step = step  # the code just typed cannot log in
            member.pending_totp = None
            member.invite_expires_at = None  # used
            seal_staff(member, self.keyring)
            await end_sessions_of(session, member.id, now)
            staff = staff_of(member)
            audit.record(session, staff.acting_on(WEB), "staff.enrolled", member.name)
        return staff

    async def _invited(self, session: AsyncSession, token: str, now: datetime) -> StaffMember:
        invalid = _(
            "this enrolment link is not valid: it was mistyped or replaced by a newer one; ask "
            "an admin for a new link"
        )
        hashes = self.keyring.blind_indexes(_invite_value(token))
        found = list(await session.scalars(
            select(StaffMember).where(StaffMember.invite_hash.in_(hashes)).limit(2)
        ))  # fmt: skip
        if len(found) != 1 or not found[0].active:
            raise Refusal("token", invalid)
        member = found[0]
        if not staff_seal_holds(member, self.keyring):
            log.error("staff row %d is not sealed under the configured keys; refused", member.id)
            raise Refusal("token", invalid)
        if member.invite_expires_at is None:
            raise Refusal(
                "token", _("this enrolment link was already used; ask an admin for a new link")
            )
        if now >= member.invite_expires_at:
            raise Refusal("token", _("this enrolment link expired; ask an admin for a new link"))
        return member

    def _decrypt_pending(self, member: StaffMember) -> str:
        assert member.pending_totp is not None
        try:
            plain = self.keyring.decrypt(member.pending_totp, pending_totp_purpose(member.name))
        except DecryptionError:
            log.error("staff row %d: the offered TOTP secret does not decrypt", member.id)
            raise Refusal("token", _("ask an admin for a new enrolment link")) from None
        return plain.decode()

    # -- logging in and out ------------------------------------------------------------------

    async def log_in(self, username: str, password: str, code: str, client: str) -> LoginResult:
        """A new session for the member, if the name, password and code are right and neither
        the account nor the ``client`` address (the browser's IP) is held back."""
        name = username.strip()
        now = self.now()
        policy = self.policy
        limits = [
            Limit("staff_login_account", self._blind("account", name), policy.account_failures),
            Limit("staff_login_address", self._blind("address", client), policy.address_failures),
        ]
        hold = await self.throttle.take(limits, now.timestamp())
        if hold is not None:
            by = "account" if hold.limit is limits[0] else "address"
            log.warning("staff login held back: too many failures for this %s", by)
            await self._record_attempt("staff.login_throttled", name, client, by=by)
            raise LoginThrottled(hold.retry_after_seconds)
        try:
            result = await self._log_in(name, password, code, client, now)
        except _Failed as failed:
            log.info("staff login refused (%s)", failed.cause)
            await self._record_attempt("staff.login_failed", name, client, cause=failed.cause)
            raise LoginRefused() from None
        await self.throttle.give_back(limits, now.timestamp())
        return result

    async def _log_in(
        self, name: str, password: str, code: str, client: str, now: datetime
    ) -> LoginResult:
        member = None
        if 0 < len(name) <= 64:
            async with self.database.sessions() as session:
                member = await session.scalar(select(StaffMember).where(StaffMember.name == name))
        cause = None
        if member is None:
            cause = "unknown_name"
        elif not member.active:
            cause = "inactive"
        elif not staff_seal_holds(member, self.keyring):
            log.error("staff row %d is not sealed under the configured keys; refused", member.id)
            cause = "seal"
        elif member.password_hash is None:
            cause = "no_password"
        elif member.totp_secret is None:
            cause = "no_totp"
        # Exactly one argon2 check whatever the cause, so the time taken tells nothing.
        real = member.password_hash if member is not None and cause is None else None
        checked = await self._password_matches(real or DUMMY_HASH, password)
        if member is None or cause is not None:
            raise _Failed(cause or "unknown_name")
        if not checked:
            raise _Failed("password")
        assert member.totp_secret is not None
        try:
            secret = self.keyring.decrypt(member.totp_secret, totp_purpose(member.name)).decode()
        except DecryptionError:
            log.error("staff row %d: the TOTP secret does not decrypt; refused", member.id)
            raise _Failed("seal") from None
        step = matching_step(secret, code, now)
        if step is None:
            raise _Failed("code")
        token = secrets.token_urlsafe(32)
        created = now.replace(microsecond=0)
        async with self.database.transaction() as session:
            # Compare-and-set: of two logins with one code, racing, only one gets it.
            accepted = await session.execute(
                update(StaffMember)
                .where(
                    StaffMember.id == member.id,
                    or_(StaffMember.totp_last_step.is_(None), StaffMember.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
            if getattr(accepted, "rowcount", 0) != 1:
                raise _Failed("code_reused")
            row = StaffSession(
                token_hash=self.keyring.blind_index(_session_value(token)),
                staff_id=member.id,
                created_at=created,
                last_seen_at=now,
                seal=self.keyring.blind_index(_session_seal_value(token, member.id, created)),
            )
            session.add(row)
            await session.flush()
            staff = staff_of(member)
            audit.record(session, staff.acting_on(WEB), "staff.login", member.name,
                         client=self._client_tag(client))  # fmt: skip
        return LoginResult(token, staff, self._csrf(token), row.id)

    async def session(self, token: str) -> StaffSessionView | None:
        """The open session this cookie's token names; None when there is none, it ended, sat
        idle too long, is older than the lifetime, or its member lost access."""
        now = self.now()
        found = await self._open_session(token)
        if found is None:
            return None
        row, member = found
        expired = (
            now - row.last_seen_at >= self.policy.idle
            or now - row.created_at >= self.policy.lifetime
        )
        if expired or not member.active or not staff_seal_holds(member, self.keyring):
            if member.active and not staff_seal_holds(member, self.keyring):
                log.error("staff row %d is not sealed under the configured keys; refused",
                          member.id)  # fmt: skip
            await self._end(row.id, now)
            return None
        if now - row.last_seen_at >= self.policy.touch_every:
            async with self.database.transaction() as session:
                await session.execute(
                    update(StaffSession)
                    .where(StaffSession.id == row.id, StaffSession.ended_at.is_(None))
                    .values(last_seen_at=now)
                )
        return StaffSessionView(row.id, staff_of(member), self._csrf(token))

    async def log_out(self, token: str) -> None:
        """End this cookie's session (nothing happens for an unknown or ended one)."""
        found = await self._open_session(token)
        if found is None:
            return
        row, member = found
        async with self.database.transaction() as session:
            await session.execute(
                update(StaffSession)
                .where(StaffSession.id == row.id, StaffSession.ended_at.is_(None))
                .values(ended_at=self.now())
            )
            audit.record(session, staff_of(member).acting_on(WEB), "staff.logout", member.name)

    async def _open_session(self, token: str) -> tuple[StaffSession, StaffMember] | None:
        if not token or len(token) > 200:
            return None
        hashes = self.keyring.blind_indexes(_session_value(token))
        async with self.database.sessions() as session:
            found = (
                await session.execute(
                    select(StaffSession, StaffMember)
                    .join(StaffMember, StaffMember.id == StaffSession.staff_id)
                    .where(StaffSession.token_hash.in_(hashes), StaffSession.ended_at.is_(None))
                )
            ).first()
        if found is None:
            return None
        row, member = found[0], found[1]
        seal = _session_seal_value(token, row.staff_id, row.created_at)
        if row.seal not in self.keyring.blind_indexes(seal):
            log.error("staff session %d is not sealed under the configured keys; refused", row.id)
            return None
        return row, member

    async def _end(self, session_id: int, now: datetime) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                update(StaffSession)
                .where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
                .values(ended_at=now)
            )

    # -- helpers --------------------------------------------------------------------------------

    async def _password_matches(self, hashed: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(hashed, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    def _blind(self, kind: str, value: str) -> str:
        return self.blinder(f"staff-login\x00{kind}\x00{value}")

    def _client_tag(self, client: str) -> str:
        """The address in the audit log: a keyed token, the same for the same address, so
        failures from one place can be told apart without keeping anyone's address."""
        return self._blind("audit-address", client)[:16]

    def _csrf(self, token: str) -> str:
        return self.keyring.blind_index(f"staff-csrf\x00{token}")

    async def _record_attempt(self, action: str, name: str, client: str, **details: str) -> None:
        """Audit a failed or held login, naming the account only if it exists (what was typed
        as a name may be a password)."""
        async with self.database.transaction() as session:
            known = await session.scalar(select(StaffMember.name).where(StaffMember.name == name))
            audit.record(session, WEB, action, known, client=self._client_tag(client), **details)


def _invite_value(token: str) -> str:
    return f"staff-invite\x00{token}"


def _session_value(token: str) -> str:
    return f"staff-session\x00{token}"


def _session_seal_value(token: str, staff_id: int, created_at: datetime) -> str:
    return f"staff-session-owner\x00{token}\x00{staff_id}\x00{created_at.isoformat()}"


__all__ = [
    "Enrolment",
    "LoginPolicy",
    "LoginRefused",
    "LoginResult",
    "LoginThrottled",
    "StaffLogin",
    "StaffSessionView",
    "TotpEnrolment",
    "qr_svg",
]

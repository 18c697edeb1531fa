"""Staff log in to the web console with a password and a TOTP code (services/staff_login.py):
password rules and argon2id, one refusal for every wrong part, codes accepted once, throttling
per account and per address, sessions that end when idle, when old, at logout and when a
member's access changes, enrolment links, and rows a database writer changed refused. Real
application, real database and state store, on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text

from bot.app import App, open_app
from bot.logging_setup import QUIET_BELOW_WARNING
from bot.settings import SettingsError, generate_key_lines, load_settings
from domain.access import Actor, Forbidden
from domain.errors import NotFound, Refusal
from services.key_rotation import KeyRotation
from services.staff_accounts import staff_seal_holds
from services.staff_login import DUMMY_HASH, LoginRefused, LoginResult, LoginThrottled
from storage.models import AuditEntry, StaffMember
from tests.conftest import Backend
from tests.dumps import database_dump, leaks, redis_dump

OPERATOR = "cli:operator"
PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "another long passphrase"
ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.2"
REFUSED = "wrong name, password or code"


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2027, 3, 1, 9, 0, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(backend: Backend, clock: Clock) -> AsyncIterator[App]:
    async with open_app(backend.settings(), upgrade_schema=True) as opened:
        opened.staff_login.now = clock
        yield opened


def code(secret: str, clock: Clock, steps: int = 0) -> str:
    """What an authenticator app shows at the clock's time, ``steps`` of 30 s later."""
    return pyotp.TOTP(secret).at(clock.now.timestamp(), counter_offset=steps)


async def member(app: App, name: str = "Mai", role: str = "case_handler") -> str:
    """A staff member with a password and a second factor; returns the TOTP secret."""
    await app.staff_accounts.add(OPERATOR, name, role, None)
    await app.staff_login.set_password(OPERATOR, name, PASSWORD)
    return (await app.staff_login.enrol_totp(OPERATOR, name)).secret


async def log_in(app: App, clock: Clock, secret: str, name: str = "Mai") -> LoginResult:
    return await app.staff_login.log_in(name, PASSWORD, code(secret, clock), ADDRESS)


async def audit_rows(app: App, action: str) -> list[AuditEntry]:
    async with app.database.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def staff_row(app: App, name: str) -> StaffMember:
    async with app.database.sessions() as session:
        row = await session.scalar(select(StaffMember).where(StaffMember.name == name))
    assert row is not None
    return row


async def sql(app: App, statement: str, **values: object) -> None:
    """What someone who can write to the database, but holds no key, does."""
    async with app.database.transaction() as session:
        await session.execute(text(statement), values)


# -- passwords ------------------------------------------------------------------------------


async def test_a_password_needs_12_to_1024_characters_and_is_not_the_name(app: App) -> None:
    await app.staff_accounts.add(OPERATOR, "Kittipong Wongsawat", "viewer", None)
    login = app.staff_login
    for weak in ("eleven char", "x" * 1025, "Kittipong Wongsawat", " kittipong wongsawat "):
        with pytest.raises(Refusal) as refused:
            await login.set_password(OPERATOR, "Kittipong Wongsawat", weak)
        assert refused.value.field == "password"
    assert (await staff_row(app, "Kittipong Wongsawat")).password_hash is None
    await login.set_password(OPERATOR, "Kittipong Wongsawat", "twelve chars")
    await login.set_password(OPERATOR, "Kittipong Wongsawat", "x" * 1024)
    with pytest.raises(NotFound):
        await login.set_password(OPERATOR, "Nobody", PASSWORD)


async def test_only_the_operator_or_an_admin_sets_passwords_and_second_factors(app: App) -> None:
    await app.staff_accounts.add(OPERATOR, "Mai", "case_handler", None)
    handler = Actor.staff("Mai", "case_handler", surface="web")
    admin = Actor.staff("Ann", "admin", surface="web")
    with pytest.raises(Forbidden):
        await app.staff_login.set_password(handler, "Mai", PASSWORD)
    with pytest.raises(Forbidden):
        await app.staff_login.enrol_totp(handler, "Mai")
    with pytest.raises(Forbidden):
        await app.staff_login.invite(handler, "Mai")
    assert [row.details["command"] for row in await audit_rows(app, "staff.refused")] == [
        "staff.password", "staff.totp", "staff.invite",
    ]  # fmt: skip
    await app.staff_login.set_password(admin, "Mai", PASSWORD)
    assert (await staff_row(app, "Mai")).password_hash is not None


async def test_the_password_is_kept_as_an_argon2id_hash_and_audited_without_it(app: App) -> None:
    await app.staff_accounts.add(OPERATOR, "Mai", "case_handler", None)
    await app.staff_login.set_password(OPERATOR, "Mai", PASSWORD)

    row = await staff_row(app, "Mai")
    assert row.password_hash is not None
    assert row.password_hash.startswith("$argon2id$v=19$")
    assert PasswordHasher().verify(row.password_hash, PASSWORD)
    assert row.password_set_at is not None
    [audited] = await audit_rows(app, "staff.password")
    assert (audited.actor, audited.subject) == (OPERATOR, "Mai")
    assert PASSWORD not in json.dumps(audited.details)


async def test_enrolling_totp_gives_a_sha1_six_digit_30_second_secret(app: App) -> None:
    await app.staff_accounts.add(OPERATOR, "Mai Lee", "case_handler", None)
    enrolment = await app.staff_login.enrol_totp(OPERATOR, "Mai Lee")

    assert len(enrolment.secret) == 32
    assert enrolment.uri == pyotp.TOTP(enrolment.secret).provisioning_uri(
        name="Mai Lee", issuer_name="Worker Voice"
    )
    parsed = pyotp.parse_uri(enrolment.uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")
    assert enrolment.qr_svg().startswith("<svg")
    row = await staff_row(app, "Mai Lee")
    assert row.totp_secret is not None
    assert enrolment.secret.encode() not in row.totp_secret, "kept encrypted"
    [audited] = await audit_rows(app, "staff.totp")
    assert enrolment.secret not in json.dumps(audited.details)
    again = await app.staff_login.enrol_totp(OPERATOR, "Mai Lee")
    assert again.secret != enrolment.secret


# -- logging in -----------------------------------------------------------------------------


async def test_a_password_and_a_current_code_open_a_session(app: App, clock: Clock) -> None:
    secret = await member(app, "Mai", "case_handler")
    await app.staff_accounts.add(OPERATOR, "Mai", "case_handler", None, assigned_only=True)
    await app.staff_login.set_password(OPERATOR, "Mai", PASSWORD)

    result = await log_in(app, clock, secret)

    assert (result.staff.name, result.staff.role, result.staff.assigned_only) == (
        "Mai", "case_handler", True,
    )  # fmt: skip
    assert len(result.token) >= 43  # 32 random bytes
    assert result.csrf
    assert result.csrf != result.token
    view = await app.staff_login.session(result.token)
    assert view is not None
    assert view.staff == result.staff
    assert view.csrf == result.csrf
    assert view.id == result.session_id
    assert view.staff.acting_on("web").audit_name == "web:Mai"
    [audited] = await audit_rows(app, "staff.login")
    assert (audited.actor, audited.subject) == ("web:Mai", "Mai")
    assert await app.staff_login.session("not-a-token") is None


async def test_a_wrong_name_password_or_code_gets_one_and_the_same_refusal(
    app: App, clock: Clock
) -> None:
    secret = await member(app)
    login = app.staff_login
    wrong = str((int(code(secret, clock)) + 1) % 1_000_000).zfill(6)
    attempts = [
        ("Mai", "not the password at all", code(secret, clock)),
        ("Mai", PASSWORD, wrong),
        ("Mai", PASSWORD, "abcdef"),
        ("Someone", PASSWORD, code(secret, clock)),
        (PASSWORD, "Mai", code(secret, clock)),  # the password typed as the name
    ]
    for name, password, typed in attempts:
        with pytest.raises(LoginRefused) as refused:
            await login.log_in(name, password, typed, OTHER_ADDRESS)
        assert str(refused.value) == REFUSED
    failed = await audit_rows(app, "staff.login_failed")
    assert [(row.subject, row.details["cause"]) for row in failed] == [
        ("Mai", "password"), ("Mai", "code"), ("Mai", "code"),
        (None, "unknown_name"), (None, "unknown_name"),
    ]  # fmt: skip
    assert PASSWORD not in json.dumps([row.details for row in failed])
    assert all(row.actor == "web" for row in failed)


async def test_an_unknown_name_costs_a_password_check_too(
    app: App, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So the time a refusal takes does not tell which names exist."""
    secret = await member(app)
    hasher = CountingHasher()
    monkeypatch.setattr(app.staff_login, "hasher", hasher)
    for name in ("Someone", "Mai"):
        with pytest.raises(LoginRefused):
            await app.staff_login.log_in(name, "a wrong password", code(secret, clock), ADDRESS)
    assert len(hasher.checked) == 2
    assert all(hash.startswith("$argon2id$") for hash in hasher.checked)
    # The stand-in costs what a real hash costs: made with the hasher's own parameters.
    assert not hasher.check_needs_rehash(DUMMY_HASH)


class CountingHasher(PasswordHasher):
    """argon2's hasher, counting the hashes it checks."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.checked.append(str(hash))
        return super().verify(hash, password)


async def test_a_member_without_password_or_second_factor_cannot_log_in(
    app: App, clock: Clock
) -> None:
    await app.staff_accounts.add(OPERATOR, "Nok", "viewer", None)
    with pytest.raises(LoginRefused):
        await app.staff_login.log_in("Nok", "", "000000", ADDRESS)
    await app.staff_login.set_password(OPERATOR, "Nok", PASSWORD)
    with pytest.raises(LoginRefused):
        await app.staff_login.log_in("Nok", PASSWORD, "000000", ADDRESS)
    failed = await audit_rows(app, "staff.login_failed")
    assert [row.details["cause"] for row in failed] == ["no_password", "no_totp"]


async def test_a_code_is_accepted_once(app: App, clock: Clock) -> None:
    secret = await member(app)
    await log_in(app, clock, secret)
    with pytest.raises(LoginRefused):
        await log_in(app, clock, secret)  # the same code, seen over a shoulder
    clock.move(seconds=30)
    await log_in(app, clock, secret)  # the next one
    causes = [row.details["cause"] for row in await audit_rows(app, "staff.login_failed")]
    assert causes == ["code_reused"]
    assert (await staff_row(app, "Mai")).totp_last_step == int(clock.now.timestamp()) // 30


async def test_codes_of_the_step_before_and_after_are_accepted_once(app: App, clock: Clock) -> None:
    """A phone's clock may be 30 s off either way; further off, or older than the last code
    accepted, is refused."""
    secret = await member(app)
    login = app.staff_login
    with pytest.raises(LoginRefused):
        await login.log_in("Mai", PASSWORD, code(secret, clock, -2), ADDRESS)
    with pytest.raises(LoginRefused):
        await login.log_in("Mai", PASSWORD, code(secret, clock, +2), ADDRESS)
    await login.log_in("Mai", PASSWORD, code(secret, clock, -1), ADDRESS)
    await login.log_in("Mai", PASSWORD, code(secret, clock, +1), ADDRESS)
    with pytest.raises(LoginRefused):  # older than the code just accepted
        await login.log_in("Mai", PASSWORD, code(secret, clock), ADDRESS)
    causes = [row.details["cause"] for row in await audit_rows(app, "staff.login_failed")]
    assert causes == ["code", "code", "code_reused"]


async def test_five_failures_hold_an_account_for_fifteen_minutes(app: App, clock: Clock) -> None:
    secret = await member(app)
    ann = await member(app, "Ann", "admin")
    login = app.staff_login
    for attempt in range(5):
        with pytest.raises(LoginRefused):
            await login.log_in("Mai", f"guess number {attempt}", "123456", f"192.0.2.{attempt}")
    with pytest.raises(LoginThrottled) as throttled:
        await log_in(app, clock, secret)  # right, but checked only once the hold ends
    wait = throttled.value.retry_after_seconds
    assert 0 < wait <= 15 * 60
    # Another account, from an address that tried Mai's, is not held.
    assert (await login.log_in("Ann", PASSWORD, code(ann, clock), "192.0.2.0")).staff.name == "Ann"
    clock.move(seconds=wait - 1)
    with pytest.raises(LoginThrottled):
        await log_in(app, clock, secret)
    clock.move(seconds=1)
    result = await log_in(app, clock, secret)
    assert result.staff.name == "Mai"
    held = await audit_rows(app, "staff.login_throttled")
    assert [(row.subject, row.details["by"]) for row in held] == [("Mai", "account")] * 2
    assert [row.details["cause"] for row in await audit_rows(app, "staff.login_failed")] == [
        "password"
    ] * 5


async def test_held_tries_do_not_extend_the_hold(app: App, clock: Clock) -> None:
    secret = await member(app)
    for attempt in range(5):
        with pytest.raises(LoginRefused):
            await app.staff_login.log_in("Mai", f"guess {attempt} wrong", "123456", ADDRESS)
    first_wait = 0
    for _ in range(10):
        with pytest.raises(LoginThrottled) as throttled:
            await app.staff_login.log_in("Mai", "still guessing here", "123456", ADDRESS)
        first_wait = first_wait or throttled.value.retry_after_seconds
        clock.move(seconds=30)
    clock.move(seconds=first_wait - 300)
    await log_in(app, clock, secret)


async def test_twenty_failures_hold_an_address_for_everyone(app: App, clock: Clock) -> None:
    secret = await member(app)
    for attempt in range(20):
        with pytest.raises(LoginRefused):
            await app.staff_login.log_in(f"guess{attempt}", PASSWORD, "123456", ADDRESS)
    with pytest.raises(LoginThrottled):
        await log_in(app, clock, secret)
    [held] = await audit_rows(app, "staff.login_throttled")
    assert (held.subject, held.details["by"]) == ("Mai", "address")
    result = await app.staff_login.log_in("Mai", PASSWORD, code(secret, clock), OTHER_ADDRESS)
    assert result.staff.name == "Mai"
    clock.move(minutes=15)
    clock.move(seconds=30)
    await log_in(app, clock, secret)


# -- sessions -------------------------------------------------------------------------------


async def test_a_session_ends_after_30_idle_minutes(app: App, clock: Clock) -> None:
    result = await log_in(app, clock, await member(app))
    for _ in range(3):
        clock.move(minutes=29, seconds=59)
        assert await app.staff_login.session(result.token) is not None
    clock.move(minutes=30)
    assert await app.staff_login.session(result.token) is None
    clock.move(seconds=-60)  # ended for good, not only too late
    assert await app.staff_login.session(result.token) is None


async def test_the_idle_time_is_a_setting(backend: Backend, clock: Clock) -> None:
    async with open_app(backend.settings(console_idle_minutes=5), upgrade_schema=True) as app:
        app.staff_login.now = clock
        result = await log_in(app, clock, await member(app))
        clock.move(minutes=4, seconds=59)
        assert await app.staff_login.session(result.token) is not None
        clock.move(minutes=5)
        assert await app.staff_login.session(result.token) is None


async def test_a_session_ends_12_hours_after_logging_in_however_busy(
    app: App, clock: Clock
) -> None:
    result = await log_in(app, clock, await member(app))
    for _ in range(12 * 3 - 1):
        clock.move(minutes=20)
        assert await app.staff_login.session(result.token) is not None
    clock.move(minutes=20)
    assert await app.staff_login.session(result.token) is None


async def test_logging_out_ends_the_session(app: App, clock: Clock) -> None:
    secret = await member(app)
    result = await log_in(app, clock, secret)
    clock.move(seconds=30)
    other = await log_in(app, clock, secret)  # another browser
    await app.staff_login.log_out(result.token)
    assert await app.staff_login.session(result.token) is None
    assert await app.staff_login.session(other.token) is not None
    await app.staff_login.log_out(result.token)  # twice is harmless
    await app.staff_login.log_out("not-a-token")
    [audited] = await audit_rows(app, "staff.logout")
    assert (audited.actor, audited.subject) == ("web:Mai", "Mai")


async def test_removing_a_member_or_changing_their_access_ends_their_sessions(
    app: App, clock: Clock
) -> None:
    secret = await member(app)

    async def fresh_session() -> str:
        clock.move(seconds=30)
        return (await log_in(app, clock, secret)).token

    changes = [
        lambda: app.staff_accounts.add(OPERATOR, "Mai", "viewer", None),
        lambda: app.staff_accounts.add(OPERATOR, "Mai", "case_handler", None, assigned_only=True),
        lambda: app.staff_login.set_password(OPERATOR, "Mai", PASSWORD),
        lambda: app.staff_login.end_sessions("Mai"),
        lambda: app.staff_accounts.remove(OPERATOR, "Mai"),
    ]
    for change in changes:
        token = await fresh_session()
        await change()
        assert await app.staff_login.session(token) is None
    with pytest.raises(LoginRefused):  # removed
        await app.staff_login.log_in("Mai", PASSWORD, code(secret, clock, 1), ADDRESS)
    await app.staff_accounts.add(OPERATOR, "Mai", "case_handler", None, assigned_only=True)
    token_unchanged = await fresh_session()
    await app.staff_accounts.add(OPERATOR, "Mai", "case_handler", 70001, assigned_only=True)
    assert await app.staff_login.session(token_unchanged) is not None, "same role: kept"
    await app.staff_login.enrol_totp(OPERATOR, "Mai")
    assert await app.staff_login.session(token_unchanged) is None


async def test_a_password_hash_written_into_the_database_is_refused(
    app: App, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone who can write to the database puts a hash of their own password into an
    admin's row (or copies their own row's): the seal no longer holds, so neither that
    password nor the admin's open session works."""
    secret = await member(app, "Ann", "admin")
    session = await log_in(app, clock, secret, "Ann")
    await sql(app, "UPDATE staff SET password_hash = :hash WHERE name = 'Ann'",
              hash=PasswordHasher().hash(OTHER_PASSWORD))  # fmt: skip
    clock.move(seconds=30)
    with caplog.at_level(logging.INFO):
        with pytest.raises(LoginRefused):
            await app.staff_login.log_in("Ann", OTHER_PASSWORD, code(secret, clock), ADDRESS)
        assert await app.staff_login.session(session.token) is None
    assert "not sealed" in caplog.text
    assert "Ann" not in caplog.text
    [failed] = await audit_rows(app, "staff.login_failed")
    assert failed.details["cause"] == "seal"


async def test_registering_a_changed_row_again_never_makes_what_was_planted_valid(
    app: App, clock: Clock
) -> None:
    """Resealing is how a planted value would become ours: a login cannot be set on a row
    whose seal does not hold, and `wvb staff add` (which repairs it) drops its logins."""
    secret = await member(app, "Ann", "admin")
    await sql(app, "UPDATE staff SET password_hash = :hash WHERE name = 'Ann'",
              hash=PasswordHasher().hash(OTHER_PASSWORD))  # fmt: skip
    with pytest.raises(Refusal, match="changed outside the bot"):
        await app.staff_login.enrol_totp(OPERATOR, "Ann")
    await app.staff_accounts.add(OPERATOR, "Ann", "admin", None)

    row = await staff_row(app, "Ann")
    assert staff_seal_holds(row, app.keyring)
    assert (row.password_hash, row.totp_secret) == (None, None)
    with pytest.raises(LoginRefused):
        await app.staff_login.log_in("Ann", OTHER_PASSWORD, code(secret, clock), ADDRESS)
    await app.staff_login.set_password(OPERATOR, "Ann", PASSWORD)
    secret = (await app.staff_login.enrol_totp(OPERATOR, "Ann")).secret
    assert (await log_in(app, clock, secret, "Ann")).staff.role == "admin"


async def test_a_session_moved_to_another_member_in_the_database_is_refused(
    app: App, clock: Clock
) -> None:
    """A viewer who can write to the database points their own session at an admin's row."""
    await member(app, "Ann", "admin")
    viewer_secret = await member(app, "Vee", "viewer")
    session = await log_in(app, clock, viewer_secret, "Vee")
    ann = await staff_row(app, "Ann")
    await sql(app, "UPDATE staff_sessions SET staff_id = :ann", ann=ann.id)
    assert await app.staff_login.session(session.token) is None


async def test_a_row_sealed_before_the_console_keeps_its_seal(app: App) -> None:
    """The seal grew new fields (password, TOTP, assigned_only, invitation); a row sealed
    before, with none of them set, holds as it did."""
    await app.staff_accounts.add(OPERATOR, "Vee", "viewer", 7001)
    row = await staff_row(app, "Vee")
    fields = f"staff\x00Vee\x00viewer\x00{row.pseudonym}\x00True"  # the seal of migration 0005
    assert row.seal == app.keyring.blind_index(fields)
    assert staff_seal_holds(row, app.keyring)
    assert await app.staff_accounts.by_messenger_id("telegram", 7001) is not None


async def test_totp_secrets_move_with_a_key_rotation(backend: Backend, clock: Clock) -> None:
    first = backend.settings()
    assert first.encryption_keys is not None
    old_key = first.encryption_keys.get_secret_value()
    new_key = generate_key_lines().splitlines()[1].split("=", 1)[1]
    assert first.secret_key is not None
    secret_key = first.secret_key.get_secret_value()
    async with open_app(first, upgrade_schema=True) as app:
        app.staff_login.now = clock
        secret = await member(app)
        token = await app.staff_login.invite(OPERATOR, "Mai")
        offered = await app.staff_login.enrolment(token)
    both = backend.settings(secret_key=secret_key, encryption_keys=f"{new_key},{old_key}")
    async with open_app(both) as app:
        app.staff_login.now = clock
        report = await KeyRotation(app.database, app.keyring).run(actor=OPERATOR)
        assert report.failures == []
        assert report.reencrypted["staff"] == 1
        assert (await app.staff_login.enrolment(token)).secret == offered.secret
    async with open_app(backend.settings(secret_key=secret_key, encryption_keys=new_key)) as app:
        app.staff_login.now = clock
        assert (await log_in(app, clock, secret)).staff.name == "Mai"


# -- enrolment links ------------------------------------------------------------------------


async def test_a_newcomer_enrols_from_a_link_without_the_command_line(
    app: App, clock: Clock
) -> None:
    await app.staff_accounts.add(OPERATOR, "Nok", "educator", None)
    login = app.staff_login
    token = await login.invite(OPERATOR, "Nok")

    offered = await login.enrolment(token)
    assert offered.name == "Nok"
    assert offered.uri == pyotp.TOTP(offered.secret).provisioning_uri(
        name="Nok", issuer_name="Worker Voice"
    )
    assert (await login.enrolment(token)).secret == offered.secret, "the same on reload"
    with pytest.raises(Refusal) as refused:
        await login.finish_enrolment(token, PASSWORD, OTHER_PASSWORD, code(offered.secret, clock))
    assert refused.value.field == "password_again"
    with pytest.raises(Refusal) as refused:
        await login.finish_enrolment(token, "too short", "too short", code(offered.secret, clock))
    assert refused.value.field == "password"
    with pytest.raises(Refusal) as refused:
        await login.finish_enrolment(token, PASSWORD, PASSWORD, code(offered.secret, clock, 3))
    assert refused.value.field == "code"

    staff = await login.finish_enrolment(token, PASSWORD, PASSWORD, code(offered.secret, clock))

    assert (staff.name, staff.role) == ("Nok", "educator")
    [audited] = await audit_rows(app, "staff.enrolled")
    assert (audited.actor, audited.subject) == ("web:Nok", "Nok")
    with pytest.raises(LoginRefused):  # the code confirmed at enrolment is spent
        await login.log_in("Nok", PASSWORD, code(offered.secret, clock), ADDRESS)
    clock.move(seconds=30)
    assert (
        await login.log_in("Nok", PASSWORD, code(offered.secret, clock), ADDRESS)
    ).staff == staff
    for again in (
        login.enrolment(token),
        login.finish_enrolment(token, PASSWORD, PASSWORD, code(offered.secret, clock)),
    ):
        with pytest.raises(Refusal, match="already used"):
            await again


async def test_an_enrolment_link_lasts_72_hours_and_a_new_one_replaces_it(
    app: App, clock: Clock
) -> None:
    await app.staff_accounts.add(OPERATOR, "Nok", "viewer", None)
    login = app.staff_login
    first = await login.invite(OPERATOR, "Nok")
    offered = await login.enrolment(first)
    second = await login.invite(OPERATOR, "Nok")
    with pytest.raises(Refusal, match="not valid"):
        await login.enrolment(first)
    assert (await login.enrolment(second)).secret != offered.secret
    clock.move(hours=71, minutes=59)
    await login.enrolment(second)
    clock.move(minutes=1)
    for expired in (login.enrolment(second),
                    login.finish_enrolment(second, PASSWORD, PASSWORD, "123456")):  # fmt: skip
        with pytest.raises(Refusal, match="expired"):
            await expired
    with pytest.raises(Refusal, match="not valid"):
        await login.enrolment("made-up-token")
    await app.staff_accounts.remove(OPERATOR, "Nok")
    with pytest.raises(NotFound):
        await login.invite(OPERATOR, "Nok")
    [invited, _] = await audit_rows(app, "staff.invite")
    assert first not in json.dumps(invited.details)


async def test_an_invitation_copied_to_another_row_in_the_database_is_refused(
    app: App,
) -> None:
    """The attacker invites themselves (a viewer) and copies the invitation's hash into an
    admin's row, to enrol their own password and phone as the admin."""
    await member(app, "Ann", "admin")
    await app.staff_accounts.add(OPERATOR, "Vee", "viewer", None)
    token = await app.staff_login.invite(OPERATOR, "Vee")
    await sql(app, "UPDATE staff SET invite_hash = (SELECT invite_hash FROM staff WHERE name = "
                   "'Vee'), invite_expires_at = (SELECT invite_expires_at FROM staff WHERE "
                   "name = 'Vee') WHERE name = 'Ann'")  # fmt: skip
    await sql(app, "UPDATE staff SET invite_hash = NULL WHERE name = 'Vee'")
    with pytest.raises(Refusal):
        await app.staff_login.enrolment(token)


# -- what must never be kept ------------------------------------------------------------------


async def test_no_password_secret_or_token_in_the_audit_log_logs_or_redis(
    app: App, backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for library in QUIET_BELOW_WARNING:  # as every `wvb` process sets them (aiosqlite's echo)
        caplog.set_level(logging.WARNING, logger=library)
    await app.staff_accounts.add(OPERATOR, "Nok", "case_handler", None)
    invite = await app.staff_login.invite(OPERATOR, "Nok")
    offered = await app.staff_login.enrolment(invite)
    await app.staff_login.finish_enrolment(invite, PASSWORD, PASSWORD, code(offered.secret, clock))
    clock.move(seconds=30)
    result = await app.staff_login.log_in("Nok", PASSWORD, code(offered.secret, clock), ADDRESS)
    with pytest.raises(LoginRefused):
        await app.staff_login.log_in("Nok", OTHER_PASSWORD, "123456", ADDRESS)
    with pytest.raises(LoginRefused):
        await app.staff_login.log_in(OTHER_PASSWORD, PASSWORD, "123456", ADDRESS)
    enrolment = await app.staff_login.enrol_totp(OPERATOR, "Nok")
    await app.staff_login.log_out(result.token)

    secrets = [PASSWORD, OTHER_PASSWORD, offered.secret, enrolment.secret, invite, result.token,
               result.csrf]  # fmt: skip
    async with app.database.sessions() as session:
        audit = json.dumps([
            [row.actor, row.action, row.subject, row.details]
            for row in await session.scalars(select(AuditEntry))
        ])  # fmt: skip
    assert leaks(audit.encode(), secrets) == []
    assert leaks(caplog.text.encode(), [*secrets, ADDRESS, "Nok"]) == []
    assert leaks(await redis_dump(backend), [*secrets, ADDRESS, "Nok"]) == []
    assert leaks(await database_dump(backend, app), [*secrets, ADDRESS]) == []


# -- settings -------------------------------------------------------------------------------


def test_console_settings_have_defaults_and_are_checked() -> None:
    settings = load_settings(_env_file=None)
    assert settings.console_listen == "127.0.0.1:8081"
    assert settings.console_host_port == ("127.0.0.1", 8081)
    assert settings.console_base_url == "http://127.0.0.1:8081"
    assert settings.console_idle_minutes == 30
    ipv6 = load_settings(_env_file=None, console_listen="[::1]:8081")
    assert ipv6.console_base_url == "http://[::1]:8081"
    behind_proxy = load_settings(_env_file=None, console_url="https://console.example.org/")
    assert behind_proxy.console_base_url == "https://console.example.org"
    for wrong in ({"console_listen": "8081"}, {"console_url": "console.example.org"},
                  {"console_idle_minutes": 0}):  # fmt: skip
        with pytest.raises(SettingsError, match=f"WVB_{next(iter(wrong)).upper()}"):
            load_settings(_env_file=None, **wrong)

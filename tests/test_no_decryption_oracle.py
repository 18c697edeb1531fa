"""Someone who can write to the database but holds no key gets no plaintext out of the bot.

Each attack is plain SQL on the database, as such an attacker would do it; then the bot runs as
usual (/status, the outbox relay) and must deliver nothing to them."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text

from bot.channels.outbox_relay import OutboxRelay
from conversations.messages import Outbound
from conversations.ports import ReportDraft, StatusOutcome, WorkerRef
from domain.references import normalize
from services.cases import CaseService
from services.casework import CaseworkService
from services.outbox import Outbox
from services.staff_accounts import StaffAccounts
from services.workers import WorkerProfileService
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database
from storage.models import OutboxMessage
from storage.rate_limits import MemoryAttemptCounter
from tests.conftest import Backend

KEYRING = Keyring((b"k" * 32,))
STAFF_CHAT = "-100"
VICTIM = WorkerRef("v" * 64, "telegram", "1001")
ATTACKER = WorkerRef("a" * 64, "telegram", "6666")
VICTIM_CODE = "ABCD-EFGH-JKMN-PQRS"
ATTACKER_CODE = "WXYZ-2345-6789-ABCD"
SECRET = "my supervisor Somchai hit me"


class RecordingSender:
    channel = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, address: str, message: Outbound) -> list[str]:
        self.sent.append((address, message.text))
        return [str(len(self.sent))]


def draft(code: str, *, urgent: bool = False) -> ReportDraft:
    return ReportDraft(
        key=str(uuid.uuid4()), language="en", categories=("violence",) if urgent else ("wages",),
        workplace_id=None, workplace_text=None, agency=None, details=(SECRET,), occurred="week",
        affected="me", danger_now=urgent, confidentiality="confidential", receipt_code=code,
    )  # fmt: skip


def scrypt_only_hash(code: str) -> str:
    """A receipt hash as the attacker can make it (scrypt of a code they chose, no key), which is
    also exactly how the code before migration 0011 stored every receipt hash."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(normalize(code).encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"scrypt$16384$8$1${b64(salt)}${b64(digest)}"


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    database = Database(backend.database_url)
    await database.upgrade()
    profiles = WorkerProfileService(database, KEYRING, Outbox(KEYRING))
    await profiles.save(VICTIM, "en")
    await profiles.save(ATTACKER, "en")
    yield database
    await database.dispose()


def case_service(database: Database) -> CaseService:
    return CaseService(database, KEYRING, Outbox(KEYRING), MemoryAttemptCounter())


async def sql(database: Database, statement: str, **values: object) -> None:
    async with database.transaction() as session:
        await session.execute(text(statement), values)


async def test_entries_relabelled_as_staff_with_a_planted_hash_are_not_shown(
    database: Database,
) -> None:
    cases = case_service(database)
    receipt = await cases.submit(VICTIM, draft(VICTIM_CODE))
    await sql(database, "UPDATE case_entries SET author = 'staff'")

    # The victim's own code: the relabelled entry is not passed off as a staff message.
    found = await cases.check_status(VICTIM.pseudonym, receipt.reference, VICTIM_CODE)
    assert found.outcome == StatusOutcome.FOUND
    assert found.case is not None
    assert found.case.staff_messages == ()

    # A hash the attacker made without the key, of a code they chose: never matches.
    await sql(
        database, "UPDATE cases SET receipt_hash = :hash", hash=scrypt_only_hash(ATTACKER_CODE)
    )
    planted = await cases.check_status(ATTACKER.pseudonym, receipt.reference, ATTACKER_CODE)
    assert planted.outcome == StatusOutcome.NOT_FOUND


async def test_a_receipt_hash_copied_from_the_attackers_own_case_does_not_open_another(
    database: Database,
) -> None:
    cases = case_service(database)
    victims = await cases.submit(VICTIM, draft(VICTIM_CODE))
    own = await cases.submit(ATTACKER, draft(ATTACKER_CODE))
    await sql(database, "UPDATE case_entries SET author = 'staff'")
    await sql(
        database,
        "UPDATE cases SET receipt_hash = (SELECT receipt_hash FROM cases WHERE reference = :own) "
        "WHERE reference = :victims",
        own=own.reference, victims=victims.reference,
    )  # fmt: skip
    result = await cases.check_status(ATTACKER.pseudonym, victims.reference, ATTACKER_CODE)
    assert result.outcome == StatusOutcome.NOT_FOUND


async def outbox_after_attack(
    database: Database, attack: str, caplog: pytest.LogCaptureFixture
) -> tuple[RecordingSender, list[OutboxMessage]]:
    await sql(database, attack)
    sender = RecordingSender()
    relay = OutboxRelay(database, KEYRING, {"telegram": sender}, staff_address=STAFF_CHAT)
    with caplog.at_level(logging.DEBUG):
        await relay.run_once()
    async with database.sessions() as session:
        rows = list((await session.execute(select(OutboxMessage))).scalars())
    return sender, rows


async def test_a_staff_alert_re_pointed_at_a_worker_is_not_sent(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await case_service(database).submit(VICTIM, draft(VICTIM_CODE, urgent=True))
    sender, rows = await outbox_after_attack(
        database,
        "UPDATE outbox SET recipient = 'worker', "
        f"worker_id = (SELECT id FROM workers WHERE pseudonym = '{ATTACKER.pseudonym}')",
        caplog,
    )
    assert sender.sent == []
    assert [row.status for row in rows] == ["failed"]
    assert "decrypt" in (rows[0].last_error or "")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "does not decrypt" in logged
    assert "URGENT" not in logged


async def test_a_staff_reply_re_pointed_at_another_worker_or_case_is_not_sent(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    receipt = await case_service(database).submit(VICTIM, draft(VICTIM_CODE))
    casework = CaseworkService(database, KEYRING, Outbox(KEYRING))
    await casework.reply("cli:staff", receipt.reference, "We will visit on Monday")
    attacker_id = f"(SELECT id FROM workers WHERE pseudonym = '{ATTACKER.pseudonym}')"
    sender, rows = await outbox_after_attack(
        database, f"UPDATE outbox SET worker_id = {attacker_id}", caplog
    )
    assert sender.sent == []
    assert [row.status for row in rows] == ["failed"]
    assert "Monday" not in "\n".join(record.getMessage() for record in caplog.records)


async def test_a_workers_address_moved_under_anothers_pseudonym_is_not_used(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The attacker gives the victim's worker row their own pseudonym and moves their own
    (encrypted) address onto it: the relay would find a pseudonym and an address that match."""
    receipt = await case_service(database).submit(VICTIM, draft(VICTIM_CODE))
    casework = CaseworkService(database, KEYRING, Outbox(KEYRING))
    await casework.reply("cli:staff", receipt.reference, "We will visit on Monday")
    victim_id = f"(SELECT id FROM workers WHERE pseudonym = '{VICTIM.pseudonym}')"
    attacker_id = f"(SELECT id FROM workers WHERE pseudonym = '{ATTACKER.pseudonym}')"
    await sql(database, f"DELETE FROM worker_addresses WHERE worker_id = {victim_id}")
    await sql(database, f"UPDATE worker_addresses SET worker_id = {victim_id}")
    await sql(database, f"UPDATE workers SET pseudonym = 'x' WHERE id = {attacker_id}")
    sender, rows = await outbox_after_attack(
        database,
        f"UPDATE workers SET pseudonym = '{ATTACKER.pseudonym}' "
        f"WHERE pseudonym = '{VICTIM.pseudonym}'",
        caplog,
    )
    assert sender.sent == []
    assert [row.status for row in rows] == ["failed"]


async def test_a_staff_row_planted_or_promoted_in_the_database_is_not_accepted(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The attacker writes to the bot as a worker, copies their own pseudonym into a new admin
    row, and promotes a viewer: neither may use staff commands (which show case content)."""
    pseudonymizer = Pseudonymizer(b"s" * 32)
    accounts = StaffAccounts(database, pseudonymizer, KEYRING)
    await accounts.add("cli:admin", "Vee", "viewer", 7001)
    assert await accounts.by_messenger_id("telegram", 7001) is not None
    await sql(
        database,
        "INSERT INTO staff (name, role, pseudonym, active, created_at) "
        "VALUES ('Mallory', 'admin', :pseudonym, true, '2026-01-01')",
        pseudonym=pseudonymizer.pseudonym("telegram", 6666),
    )
    await sql(database, "UPDATE staff SET role = 'admin' WHERE name = 'Vee'")
    assert await accounts.by_messenger_id("telegram", 6666) is None
    assert await accounts.by_messenger_id("telegram", 7001) is None

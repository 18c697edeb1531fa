"""Data written before migration 0011 still reads after it, and `wvb keys rotate` checks that
every row reads under the newest key alone, naming the rows that do not."""

from __future__ import annotations

import os
from datetime import timedelta

import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from bot.app import open_app
from bot.channels.outbox_relay import OutboxRelay
from bot.settings import Settings, resolve_keys
from conversations.messages import Outbound
from conversations.ports import StatusOutcome, WorkerRef
from services.key_rotation import KeyRotation
from storage.crypto import key_id
from storage.database import Database, alembic_config, upgrade_schema
from storage.models import (
    Case,
    CaseEntry,
    PendingUpgrade,
    UTCDateTime,
    Worker,
    WorkerAddress,
    utc_now,
)
from tests.bot_driver import run_wvb
from tests.conftest import Backend
from tests.test_no_decryption_oracle import RecordingSender, scrypt_only_hash

PSEUDONYM = "p" * 64
REFERENCE = "K7M3-9Q2X"
CODE = "ABCD-EFGH-JKMN-PQRS"
CASES_0010 = sa.table(
    "cases",
    *(sa.column(name) for name in ("id", "reference", "status", "occurred", "affected",
                                   "danger_now", "confidentiality", "urgent", "language",
                                   "reporter_id", "draft_key", "receipt_hash")),
    sa.column("categories", sa.JSON),
    *(sa.column(name, UTCDateTime) for name in ("created_at", "updated_at",
                                                "acknowledge_due_at", "response_due_at")),
)  # fmt: skip


# The outbox as 0010 left it: the model has columns later migrations add (0015's window hold and
# receipts), which an ORM insert would name.
OUTBOX_0010 = sa.table(
    "outbox",
    *(sa.column(name) for name in ("id", "key", "channel", "recipient", "worker_id", "case_id",
                                   "payload_ciphertext", "status", "attempts")),
    *(sa.column(name, UTCDateTime) for name in ("next_attempt_at", "created_at")),
)  # fmt: skip


async def downgrade_schema(database: Database, revision: str) -> None:
    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(downgrade)


def old_encrypt(key: bytes, plaintext: bytes, purpose: bytes) -> bytes:
    """A ciphertext exactly as the code before 0011 wrote it (format 1)."""
    header, nonce = b"\x01" + key_id(key), os.urandom(12)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + purpose)


async def write_as_before_0011(database: Database, key: bytes) -> None:
    now = utc_now()
    async with database.transaction() as session:
        worker = Worker(pseudonym=PSEUDONYM, language="en")
        session.add(worker)
        await session.flush()
        address = old_encrypt(key, b"1001", f"address\x00telegram\x00{PSEUDONYM}".encode())
        session.add(WorkerAddress(worker_id=worker.id, channel="telegram",
                                  address_ciphertext=address))  # fmt: skip
        await session.execute(sa.insert(CASES_0010).values(
            reference=REFERENCE, status="acknowledged", categories=["wages"], occurred="week",
            affected="me", danger_now=False, confidentiality="confidential", urgent=False,
            language="en", reporter_id=worker.id, draft_key="d",
            receipt_hash=scrypt_only_hash(CODE),
            created_at=now, updated_at=now, acknowledge_due_at=now + timedelta(days=7),
            response_due_at=now + timedelta(days=90),
        ))  # fmt: skip
        case_id = await session.scalar(text("SELECT id FROM cases"))
        entry = f"case\x00{REFERENCE}\x00entry".encode()
        for author, words in (("worker", b"they kept my passport"), ("staff", b"Which month?")):
            session.add(CaseEntry(case_id=case_id, author=author, kind="text",
                                  ciphertext=old_encrypt(key, words, entry)))  # fmt: skip
        key_text = "0f6c7a4e-0000-4000-8000-000000000001"
        await session.execute(sa.insert(OUTBOX_0010).values(
            key=key_text, channel="telegram", recipient="worker", worker_id=worker.id,
            case_id=case_id, status="pending", attempts=0, next_attempt_at=now, created_at=now,
            payload_ciphertext=old_encrypt(key, Outbound("Staff: which month?").to_bytes(),
                                           f"outbox\x00{key_text}".encode()),
        ))  # fmt: skip


async def database_from_before_0011(settings: Settings) -> bytes:
    """The database of ``settings`` as the code before 0011 left it, then migrated to head (the
    one-time upgrade pending); returns the encryption key its rows were written with."""
    key = resolve_keys(settings).encryption_keys[0]
    database = Database(settings.database_url)
    try:
        await upgrade_schema(database.engine, "0010")
        await downgrade_schema(database, "0010")  # a PostgreSQL test database is kept at head
        await write_as_before_0011(database, key)
        await database.upgrade()
    finally:
        await database.dispose()
    return key


async def test_rows_written_before_0011_read_after_it_and_format_1_never_again(
    backend: Backend,
) -> None:
    settings = backend.settings()
    key = await database_from_before_0011(settings)

    async with open_app(settings, upgrade_schema=False) as app:  # the upgrade runs here
        status = await app.cases.check_status("someone", REFERENCE, CODE)
        assert status.outcome == StatusOutcome.FOUND
        assert status.case is not None
        assert [m.text for m in status.case.staff_messages] == ["Which month?"]
        shown = await app.staff.show_case("cli:test", REFERENCE)
        assert [entry.text for entry in shown.entries] == ["they kept my passport", "Which month?"]
        assert shown.worker_reachable
        await app.casework.reply("cli:test", REFERENCE, "We call on Monday")
        sender = RecordingSender()
        await OutboxRelay(app.database, app.keyring, {"telegram": sender}).run_once()
        assert sender.sent == [("1001", "Staff: which month?"), sender.sent[1]]
        assert sender.sent[1][0] == "1001"
        assert "Monday" in sender.sent[1][1]
        async with app.database.sessions() as session:
            assert await session.scalar(select(PendingUpgrade.name)) is None
            assert await session.scalar(text("SELECT reporter_id FROM cases")) is None
            case = await session.scalar(select(Case))
            assert case is not None
            assert case.receipt_hash.startswith("scrypt-gcm$")
            case_id = case.id

        # A format-1 row put back afterwards (say, from an old backup) is never read.
        async with app.database.transaction() as session:
            restored = old_encrypt(key, b"restored", f"case\x00{REFERENCE}\x00entry".encode())
            session.add(CaseEntry(case_id=case_id, author="staff", kind="text",
                                  ciphertext=restored))  # fmt: skip
        status = await app.cases.check_status("someone", REFERENCE, CODE)
        assert status.case is not None
        assert "restored" not in [m.text for m in status.case.staff_messages]
        report = await KeyRotation(app.database, app.keyring).run(actor="cli:operator")
        assert report.failures == [("case_entries", report.failures[0][1])]


async def test_keys_rotate_names_each_row_that_does_not_read_and_fails(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await app.profiles.save(WorkerRef(PSEUDONYM, "telegram", "1001"), "en")
        async with app.database.transaction() as session:
            address = await session.scalar(select(WorkerAddress))
            assert address is not None
            address.address_ciphertext = os.urandom(60)  # damaged
            bad_id = address.id
    env = backend.environment(settings)
    result = await run_wvb(env, "keys", "rotate")
    assert result.returncode == 1, result.stderr
    assert f"worker_addresses row {bad_id} does not decrypt" in result.stderr
    assert "worker_addresses: 0 re-encrypted, 0 already current, 0 verified" in result.stderr

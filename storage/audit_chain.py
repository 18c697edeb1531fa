"""The audit log's hash chain: each row holds SHA-256(previous row's hash, its own content).

Database triggers refuse UPDATE and DELETE on ``audit_log``; the chain shows whether someone went
around them (disabled a trigger, edited the file, restored an old backup and dropped rows):
``verify`` names the first row whose hash does not follow from the row before it.

Every row added through the ORM is chained here, at flush, whoever adds it (``services.audit``
and any later surface). Writers must not fork the chain: on PostgreSQL the flush first takes a
transaction-scoped advisory lock, so the next writer reads the last hash only after this one
committed (or rolled back); SQLite transactions already begin with the write lock
(``storage/database.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, UOWTransaction

from storage.models import AuditEntry, utc_now

#: The "previous hash" of the first row.
GENESIS = "0" * 64
#: pg_advisory_xact_lock key serialising audit writers ("wvbaudit" in ASCII).
_LOCK_KEY = int.from_bytes(b"wvbaudit", "big") & 0x7FFF_FFFF_FFFF_FFFF


def canonical(
    at: datetime, actor: str, action: str, subject: str | None, details: dict[str, Any]
) -> bytes:
    """A row's content as the hash sees it: the same bytes on SQLite and PostgreSQL."""
    document = {
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chain_hash(previous: str, content: bytes) -> str:
    return hashlib.sha256(previous.encode() + b"\n" + content).hexdigest()


def entry_hash(previous: str, entry: AuditEntry) -> str:
    content = canonical(entry.at, entry.actor, entry.action, entry.subject, entry.details)
    return chain_hash(previous, content)


@event.listens_for(Session, "before_flush")
def _chain_new_entries(session: Session, _context: UOWTransaction, _instances: object) -> None:
    new = [item for item in session.new if isinstance(item, AuditEntry)]
    if not new:
        return
    new.sort(key=lambda item: inspect(item).insert_order or 0)
    with session.no_autoflush:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        previous = connection.execute(
            select(AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1)
        ).scalar()
    previous = previous or GENESIS
    for entry in new:
        if entry.at is None:
            entry.at = utc_now()
        entry.at = entry.at.replace(microsecond=0)
        if entry.details is None:
            entry.details = {}
        entry.row_hash = entry_hash(previous, entry)
        previous = entry.row_hash


@dataclass(frozen=True)
class ChainReport:
    rows: int
    last_id: int | None
    head: str
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_id is None


_COLUMNS = (
    AuditEntry.id,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.subject,
    AuditEntry.details,
    AuditEntry.row_hash,
)


async def _rows(engine: AsyncEngine) -> AsyncIterator[Any]:
    """Every row in id order, a batch at a time (the log grows without bound)."""
    last = 0
    while True:
        async with engine.connect() as connection:
            query = select(*_COLUMNS).where(AuditEntry.id > last).order_by(AuditEntry.id)
            batch = (await connection.execute(query.limit(1000))).all()
        if not batch:
            return
        for row in batch:
            yield row
        last = batch[-1].id


async def verify(engine: AsyncEngine) -> ChainReport:
    previous, count, last_id = GENESIS, 0, None
    async for row in _rows(engine):
        count += 1
        expected = chain_hash(
            previous, canonical(row.at, row.actor, row.action, row.subject, row.details)
        )
        if row.row_hash != expected:
            before = f"row {last_id}" if last_id is not None else "the start of the log"
            return ChainReport(
                count, last_id, previous, row.id,
                f"audit row {row.id} does not follow from {before}: it was changed, or a row "
                "before it was removed",
            )  # fmt: skip
        previous, last_id = row.row_hash, row.id
    return ChainReport(count, last_id, previous)

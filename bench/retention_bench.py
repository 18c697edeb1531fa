"""Retention benchmark: N ended cases past the limit, each with entries, an event note, a
validation and an outbox row; how long one run of the retention job takes to purge them all,
and how many content rows are left (must be 0).

    python -m bench.retention_bench --cases 1000                  # SQLite file in a temp folder
    python -m bench.retention_bench --cases 1000 --postgres       # a throwaway PostgreSQL database

Prints one JSON document. PostgreSQL must run for --postgres (WVB_TEST_POSTGRES_DSN, default as
in the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import func, select

from services.outbox import Outbox
from services.retention import RetentionPolicy, RetentionService
from storage.crypto import Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    OutboxMessage,
    Validation,
    utc_now,
)

ADMIN_DSN = os.environ.get("WVB_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
KEYRING = Keyring((os.urandom(32),))


async def fill(database: Database, cases: int) -> None:
    ended = utc_now() - timedelta(days=120)
    async with database.transaction() as session:
        for n in range(cases):
            case = Case(reference=f"B{n:07d}", status="closed_unvalidated", categories=["wages"],
                        occurred="week", affected="few", danger_now=False,
                        confidentiality="confidential", language="en", draft_key=f"bench-{n}",
                        receipt_hash="-", acknowledge_due_at=ended, response_due_at=ended,
                        ended_at=ended)  # fmt: skip
            session.add(case)
            await session.flush()
            sealed = KEYRING.encrypt(b"x" * 2000, b"bench")
            for kind in ("text", "text", "photo"):
                session.add(CaseEntry(case_id=case.id, author="worker", kind=kind,
                                      ciphertext=sealed))  # fmt: skip
            session.add(CaseEvent(case_id=case.id, actor="cli:bench", action="closed_unvalidated",
                                  to_status="closed_unvalidated",
                                  note_ciphertext=sealed))  # fmt: skip
            session.add(Validation(case_id=case.id, round=1, respondent="reporter", answer="no"))
            session.add(OutboxMessage(key=str(uuid.uuid4()), channel="telegram", recipient="staff",
                                      case_id=case.id, payload_ciphertext=b"-"))  # fmt: skip


async def left(database: Database) -> int:
    async with database.sessions() as session:
        total = 0
        for model in (CaseEntry, Validation, OutboxMessage):
            total += int(await session.scalar(select(func.count()).select_from(model)) or 0)
        notes = select(func.count()).select_from(CaseEvent)
        total += int(await session.scalar(notes.where(CaseEvent.note_ciphertext.is_not(None))) or 0)
        return total


async def measure(url: str, cases: int) -> dict[str, object]:
    database = Database(url)
    try:
        await database.upgrade()
        await fill(database, cases)
        job = RetentionService(database, Outbox(KEYRING), RetentionPolicy(90))
        started = time.perf_counter()
        run = await job.run()
        seconds = time.perf_counter() - started
        return {"cases": cases, "purged": len(run.purged), "seconds": round(seconds, 2),
                "ms_per_case": round(1000 * seconds / max(1, cases), 2),
                "content_rows_left": await left(database)}  # fmt: skip
    finally:
        await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if not args.postgres:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"
            result = await measure(url, args.cases)
        print(json.dumps({"backend": "sqlite", **result}))
        return
    name = f"wvb_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        result = await measure(f"{base}/{name}", args.cases)
        print(json.dumps({"backend": "postgresql", **result}))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())

"""Audit chain benchmark: what hash-chaining costs a staff action, and how long `wvb audit
verify` takes over a large log, on SQLite (a temporary file) or PostgreSQL (a throwaway
database on WVB_TEST_POSTGRES_DSN, default as in the tests).

    python -m bench.audit_chain_bench --backend sqlite --rows 100000 --writes 1000
    python -m bench.audit_chain_bench --backend postgres --rows 100000 --writes 1000
    python -m bench.audit_chain_bench --backend sqlite --rows 0 --writes 1000 --without-chain

``--writes`` audited transactions one after another (each takes the chain's lock and reads the
last hash), then ``--rows`` rows in bulk, then one full verification. ``--without-chain``
turns the chaining off, for the cost of the same writes without it. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import event
from sqlalchemy.orm import Session

from services import audit
from storage import audit_chain
from storage.database import Database

POSTGRES = os.environ.get("WVB_TEST_POSTGRES_DSN", "postgresql://127.0.0.1:5432/test")


async def measure(
    database: Database, rows: int, writes: int, chain: bool = True
) -> dict[str, float | int]:
    await database.upgrade()
    started = time.perf_counter()
    for n in range(writes):
        async with database.transaction() as session:
            audit.record(session, "staff:bench", "case.view", f"REF-{n}")
    per_write = (time.perf_counter() - started) / max(writes, 1)
    for start in range(0, rows, 1000):
        async with database.transaction() as session:
            for n in range(start, min(rows, start + 1000)):
                audit.record(session, "staff:bench", "cases.list", None, count=n)
    if not chain:
        return {"ms_per_audited_transaction": round(per_write * 1000, 2)}
    started = time.perf_counter()
    report = await audit.verify(database)
    verify_seconds = time.perf_counter() - started
    assert report.intact, report.problem
    return {
        "rows_verified": report.rows,
        "ms_per_audited_transaction": round(per_write * 1000, 2),
        "verify_seconds": round(verify_seconds, 2),
        "verify_rows_per_second": round(report.rows / verify_seconds),
    }


async def main(backend: str, rows: int, writes: int, chain: bool) -> None:
    if not chain:
        event.remove(Session, "before_flush", audit_chain._chain_new_entries)
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            database = Database(f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}")
            try:
                result = await measure(database, rows, writes, chain)
            finally:
                await database.dispose()
    else:
        name = f"wvb_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(POSTGRES)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            database = Database(f"{base}/{name}")
            try:
                result = await measure(database, rows, writes, chain)
            finally:
                await database.dispose()
        finally:
            await admin.execute(f'DROP DATABASE "{name}"')
            await admin.close()
    print(json.dumps({"backend": backend, "chain": chain, **result}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--without-chain", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(
        main(arguments.backend, arguments.rows, arguments.writes, not arguments.without_chain)
    )

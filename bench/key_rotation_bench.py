"""Key rotation and receipt-check cost on an embedded SQLite database.

    python -m bench.key_rotation_bench --cases 300

Files N reports (two text entries each, and a staff reply queued in the outbox), then times
`KeyRotation.run` under a new first key (re-encrypt, then read every row back under the new key
alone), and the receipt check before and after sealing: bare scrypt against scrypt + AES-GCM.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from conversations.ports import ReportDraft, WorkerRef
from services.cases import CaseService
from services.casework import CaseworkService
from services.key_rotation import KeyRotation
from services.outbox import Outbox
from services.workers import WorkerProfileService
from storage import codes
from storage.crypto import Keyring
from storage.database import Database
from storage.rate_limits import MemoryAttemptCounter

CODE = "ABCD-EFGH-JKMN-PQRS"


async def main(cases: int) -> dict[str, object]:
    old, new = os.urandom(32), os.urandom(32)
    keyring = Keyring((old,))
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}")
        await database.upgrade()
        try:
            outbox = Outbox(keyring)
            intake = CaseService(database, keyring, outbox, MemoryAttemptCounter())
            casework = CaseworkService(database, keyring, outbox)
            profiles = WorkerProfileService(database, keyring, Outbox(keyring))
            for number in range(cases):
                worker = WorkerRef(f"{number:064x}", "telegram", str(10_000 + number))
                await profiles.save(worker, "en")
                receipt = await intake.submit(worker, ReportDraft(
                    key=str(uuid.uuid4()), language="en", categories=("wages",),
                    workplace_id=None, workplace_text=None, agency=None,
                    details=("not paid for May", "nor June"), occurred="week", affected="me",
                    danger_now=False, confidentiality="confidential", receipt_code=CODE,
                ))  # fmt: skip
                await casework.reply("bench", receipt.reference, "We will call the employer")
            started = time.perf_counter()
            report = await KeyRotation(database, Keyring((new, old))).run()
            rotation_seconds = time.perf_counter() - started
        finally:
            await database.dispose()
    rows = sum(report.reencrypted.values()) + sum(report.already_current.values())
    stored = codes.hash_receipt(CODE, keyring, "K7M3-9Q2X")
    salt = os.urandom(16)
    timings = {}
    for name, check in (
        # What a check cost before: scrypt alone.
        ("scrypt_only_ms", lambda: hashlib.scrypt(CODE.encode(), salt=salt, n=2**14, r=8, p=1)),
        ("sealed_check_ms", lambda: codes.verify_receipt(CODE, stored, keyring, "K7M3-9Q2X")),
    ):
        started = time.perf_counter()
        for _ in range(20):
            check()
        timings[name] = round((time.perf_counter() - started) / 20 * 1000, 2)
    return {
        "cases": cases,
        "rows": rows,
        "reencrypted": report.reencrypted,
        "verified": report.verified,
        "failures": len(report.failures),
        "rotation_seconds": round(rotation_seconds, 2),
        "rows_per_second": round(rows / rotation_seconds),
        **timings,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    print(json.dumps(asyncio.run(main(parser.parse_args().cases)), indent=2))

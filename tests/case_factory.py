"""A reported case straight in the database, for tests of what happens after intake."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.settings import Settings, resolve_keys
from domain.references import new_receipt_code
from services.reporters import seal_reporter
from storage.codes import hash_receipt
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Case, Worker, utc_now


def app_keyring(settings: Settings) -> Keyring:
    """The keyring of the app these settings open."""
    return Keyring(resolve_keys(settings).encryption_keys)


#: The keyring tests use unless they run the app with keys of its own.
TEST_KEYRING = Keyring((b"k" * 32,))


async def insert_case(
    database: Database, pseudonym: str, reference: str, keyring: Keyring = TEST_KEYRING
) -> str:
    """A received ``wages`` case reported by the worker ``pseudonym`` (created if new), sealed
    under ``keyring``; returns its receipt code."""
    code = new_receipt_code()
    async with database.transaction() as session:
        worker = await session.scalar(select(Worker).where(Worker.pseudonym == pseudonym))
        if worker is None:
            worker = Worker(pseudonym=pseudonym, language="en")
            session.add(worker)
            await session.flush()
        now = utc_now()
        case = Case(
            reference=reference,
            categories=["wages"],
            occurred="week",
            affected="few",
            danger_now=False,
            confidentiality="confidential",
            language="en",
            draft_key=reference,
            receipt_hash=hash_receipt(code, keyring, reference),
            acknowledge_due_at=now + timedelta(days=7),
            response_due_at=now + timedelta(days=90),
        )
        seal_reporter(case, keyring, pseudonym)
        session.add(case)
    return code

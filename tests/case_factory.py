"""A reported case straight in the database, for tests of what happens after intake."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage.database import Database
from storage.models import Case, Worker, utc_now


async def insert_case(database: Database, pseudonym: str, reference: str) -> None:
    """A received ``wages`` case reported by the worker ``pseudonym`` (created if new)."""
    async with database.transaction() as session:
        worker = await session.scalar(select(Worker).where(Worker.pseudonym == pseudonym))
        if worker is None:
            worker = Worker(pseudonym=pseudonym, language="en")
            session.add(worker)
            await session.flush()
        now = utc_now()
        session.add(
            Case(
                reference=reference,
                categories=["wages"],
                occurred="week",
                affected="few",
                danger_now=False,
                confidentiality="confidential",
                language="en",
                reporter_id=worker.id,
                draft_key=reference,
                receipt_hash="not a real hash",
                acknowledge_due_at=now + timedelta(days=7),
                response_due_at=now + timedelta(days=90),
            )
        )

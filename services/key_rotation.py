"""Key rotation: re-encrypt every stored ciphertext under the newest key.

Put the new key first in ``WVB_ENCRYPTION_KEYS`` (keep the old ones after it), run
``wvb keys rotate``, then remove the old keys. Each table is walked in batches; a row already
under the newest key is left alone, so an interrupted rotation simply runs again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services import audit
from services.cases import case_purpose, draft_purpose
from services.outbox import outbox_purpose
from services.workers import address_purpose
from storage.conversation_state import RedisConversationStore
from storage.crypto import Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    DraftAttachment,
    OutboxMessage,
    Worker,
    WorkerAddress,
)

BATCH = 200
Progress = Callable[[str, int, int], None]  # table, done, total


@dataclass
class RotationReport:
    reencrypted: dict[str, int]
    already_current: dict[str, int]


class KeyRotation:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        state_store: RedisConversationStore | None = None,
    ) -> None:
        self.database = database
        self.keyring = keyring
        self.state_store = state_store

    def _renew(self, blob: bytes | None, purpose: bytes) -> bytes | None:
        if blob is None or self.keyring.is_current(blob):
            return None
        return self.keyring.encrypt(self.keyring.decrypt(blob, purpose), purpose)

    async def run(self, progress: Progress | None = None, *, actor: str) -> RotationReport:
        """Re-encrypt everything; the start and the outcome are written to the audit log."""
        async with self.database.transaction() as session:
            audit.record(session, actor, "keys.rotate.start")
        report = RotationReport({}, {})
        tables: list[tuple[str, type[Any], Callable[[AsyncSession, Any], Awaitable[bool]]]] = [
            ("worker_addresses", WorkerAddress, self._address),
            ("cases", Case, self._case),
            ("case_entries", CaseEntry, self._entry),
            ("case_events", CaseEvent, self._event),
            ("draft_attachments", DraftAttachment, self._draft),
            ("outbox", OutboxMessage, self._outbox),
        ]
        for name, model, renew in tables:
            changed = unchanged = 0
            async with self.database.sessions() as session:
                total = int(await session.scalar(select(func.count()).select_from(model)) or 0)
            last_id = 0
            while True:
                async with self.database.transaction() as session:
                    rows: Sequence[Any] = (
                        (
                            await session.execute(
                                select(model)
                                .where(model.id > last_id)
                                .order_by(model.id)
                                .limit(BATCH)
                            )
                        )
                        .scalars()
                        .all()
                    )
                    for row in rows:
                        if await renew(session, row):
                            changed += 1
                        else:
                            unchanged += 1
                if not rows:
                    break
                last_id = rows[-1].id
                if progress:
                    progress(name, changed + unchanged, total)
            report.reencrypted[name] = changed
            report.already_current[name] = unchanged
        if self.state_store is not None:
            changed, unchanged = await self.state_store.reencrypt_all(self.keyring)
            report.reencrypted["conversation_state"] = changed
            report.already_current["conversation_state"] = unchanged
        async with self.database.transaction() as session:
            audit.record(
                session, actor, "keys.rotate", None,
                reencrypted=report.reencrypted, already_current=report.already_current,
            )  # fmt: skip
        return report

    def _renew_column(self, row: object, column: str, purpose: bytes) -> bool:
        """Re-encrypt one column of one row under the newest key; True if it changed."""
        renewed = self._renew(getattr(row, column), purpose)
        if renewed is not None:
            setattr(row, column, renewed)
        return renewed is not None

    async def _address(self, session: AsyncSession, row: WorkerAddress) -> bool:
        pseudonym = await session.scalar(select(Worker.pseudonym).where(Worker.id == row.worker_id))
        purpose = address_purpose(str(pseudonym), row.channel)
        return self._renew_column(row, "address_ciphertext", purpose)

    async def _case(self, session: AsyncSession, row: Case) -> bool:
        workplace = self._renew_column(
            row, "workplace_other_ciphertext", case_purpose(row.reference, "workplace")
        )
        agency = self._renew_column(row, "agency_ciphertext", case_purpose(row.reference, "agency"))
        return workplace or agency

    async def _reference(self, session: AsyncSession, case_id: int) -> str:
        return str(await session.scalar(select(Case.reference).where(Case.id == case_id)))

    async def _entry(self, session: AsyncSession, row: CaseEntry) -> bool:
        purpose = case_purpose(await self._reference(session, row.case_id), "entry")
        return self._renew_column(row, "ciphertext", purpose)

    async def _event(self, session: AsyncSession, row: CaseEvent) -> bool:
        if row.note_ciphertext is None:
            return False
        purpose = case_purpose(await self._reference(session, row.case_id), "event")
        return self._renew_column(row, "note_ciphertext", purpose)

    async def _draft(self, session: AsyncSession, row: DraftAttachment) -> bool:
        return self._renew_column(row, "ciphertext", draft_purpose(row.draft_key))

    async def _outbox(self, session: AsyncSession, row: OutboxMessage) -> bool:
        return self._renew_column(row, "payload_ciphertext", outbox_purpose(row.key))

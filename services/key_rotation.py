"""Key rotation and the one-time upgrade: re-encrypt every stored ciphertext under the newest key
and the current format, then check that every row reads under the newest key alone.

Rotation: put the new key first in ``WVB_ENCRYPTION_KEYS`` (keep the old ones after it), run
``wvb keys rotate``, then remove the old keys. Each table is walked in batches; a row already
under the newest key and format is left alone, so an interrupted rotation simply runs again. A
row that cannot be decrypted is left as it is and named (table and row id) in the report.

Upgrade (migration 0011): format-1 ciphertexts were bound to less than they are now (a case
entry to its case reference only, an outbox row to its key only, an address to pseudonym and
channel), receipt hashes were bare scrypt, and ``cases.reporter_id`` linked each case to its
worker's row. Migrations hold no key, so 0011 only records the upgrade in ``pending_upgrades``;
the first process that opens the application runs it here, with the keys: format-1 ciphertexts
are read under their old associated data and written as format 2 under the new, hashes are
sealed, the reporter is blinded. Only while that row exists are format-1 ciphertexts read at all;
once the upgrade has run, a format-1 row (say, one restored from an old backup by someone who
can write to the database) never decrypts again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.parties import SYSTEM_ACTOR
from services import audit, key_canary
from services.cases import case_purpose, draft_purpose, entry_purpose
from services.outbox import row_purpose
from services.reporters import reporter_pseudonym, seal_reporter
from services.staff_accounts import (
    pending_totp_purpose,
    seal_staff,
    staff_seal_holds,
    totp_purpose,
)
from services.workers import address_purpose
from storage import codes
from storage.conversation_state import RedisConversationStore
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    CaseEvent,
    DraftAttachment,
    OutboxMessage,
    PendingUpgrade,
    StaffMember,
    Worker,
    WorkerAddress,
)

log = logging.getLogger(__name__)
#: The audit actor of the one-time upgrade the first process runs after migration 0011.
UPGRADE_ACTOR = f"{SYSTEM_ACTOR}:upgrade"

BATCH = 200
UPGRADE = "bind_ciphertexts"  # the row migration 0011 writes
Progress = Callable[[str, int, int], None]  # table, done, total
TABLES: tuple[tuple[str, type[Any]], ...] = (
    ("worker_addresses", WorkerAddress),
    ("cases", Case),
    ("case_entries", CaseEntry),
    ("case_events", CaseEvent),
    ("draft_attachments", DraftAttachment),
    ("outbox", OutboxMessage),
    ("staff", StaffMember),
)
# The column migration 0002 made and 0011 empties (no longer in the model).
_LEGACY_CASES = sa.table("cases", sa.column("id", sa.Integer), sa.column("reporter_id", sa.Integer))


@dataclass
class RotationReport:
    reencrypted: dict[str, int] = field(default_factory=dict)
    already_current: dict[str, int] = field(default_factory=dict)
    #: Rows read back under the newest key alone, per table.
    verified: dict[str, int] = field(default_factory=dict)
    #: (table, row id) of every row that could not be re-encrypted or did not read back.
    failures: list[tuple[str, int]] = field(default_factory=list)
    upgraded: bool = False


# -- what format-1 ciphertexts were bound to -------------------------------------------------


def _legacy_entry(reference: str) -> bytes:
    return case_purpose(reference, "entry")


def _legacy_address(pseudonym: str, channel: str) -> bytes:
    return f"address\x00{channel}\x00{pseudonym}".encode()


def _legacy_draft(draft_key: str) -> bytes:
    return f"draft\x00{draft_key}".encode()


def _legacy_outbox(key: str) -> bytes:
    return f"outbox\x00{key}".encode()


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
        self._legacy = False

    async def pending(self) -> bool:
        async with self.database.sessions() as session:
            return await session.get(PendingUpgrade, UPGRADE) is not None

    async def upgrade_if_pending(self) -> RotationReport | None:
        """Run the one-time upgrade if migration 0011 left it to do (every process calls this
        when it opens the application; it costs one query once done)."""
        if not await self.pending():
            return None
        log.info("upgrading stored ciphertexts to the current format (once)")
        report = await self.run(actor=UPGRADE_ACTOR)
        if report.failures:
            log.error(
                "%d rows could not be upgraded (first: %s row %d); `wvb keys rotate` names them",
                len(report.failures),
                *report.failures[0],
            )
        return report

    async def run(self, progress: Progress | None = None, *, actor: str) -> RotationReport:
        """Re-encrypt what is not under the newest key and format, verify, report; the start
        and the outcome are written to the audit log."""
        async with self.database.transaction() as session:
            audit.record(session, actor, "keys.rotate.start")
        self._legacy = await self.pending()
        report = RotationReport(upgraded=self._legacy)
        for name, model in TABLES:
            changed = unchanged = 0
            async for session, rows in self._batches(model, name, progress, write=True):
                legacy_reporters = await self._legacy_reporters(session, model, rows)
                for row in rows:
                    try:
                        renewed = await self._renew_row(session, row, legacy_reporters)
                    except DecryptionError:
                        report.failures.append((name, row.id))
                        log.error("%s row %d does not decrypt; left as it is", name, row.id)
                        continue
                    if renewed:
                        changed += 1
                    else:
                        unchanged += 1
            report.reencrypted[name], report.already_current[name] = changed, unchanged
        try:  # the key canary moves to the newest key with the rest (services/key_canary.py)
            await key_canary.reseal(self.database, self.keyring)
        except DecryptionError:
            report.failures.append(("key_canary", key_canary.CANARY_ID))
            log.error("the key canary does not decrypt; left as it is")
        if self.state_store is not None:
            changed, unchanged = await self.state_store.reencrypt_all(
                self.keyring, legacy=self._legacy
            )
            report.reencrypted["conversation_state"] = changed
            report.already_current["conversation_state"] = unchanged
        if self._legacy:
            # Done once, even if some rows failed: while the row exists format 1 is read, and a
            # format-1 row restored from an old backup would be re-encrypted as if it were ours.
            # Rows that failed stay unreadable, and every later `wvb keys rotate` names them.
            async with self.database.transaction() as session:
                await session.execute(delete(PendingUpgrade).where(PendingUpgrade.name == UPGRADE))
        await self._verify(report, progress)
        async with self.database.transaction() as session:
            audit.record(
                session, actor, "keys.rotate", None,
                reencrypted=report.reencrypted, already_current=report.already_current,
                verified=report.verified, failures=len(report.failures),
            )  # fmt: skip
        return report

    async def _batches(
        self, model: type[Any], name: str, progress: Progress | None, *, write: bool
    ) -> AsyncIterator[tuple[AsyncSession, list[Any]]]:
        async with self.database.sessions() as session:
            total = int(await session.scalar(select(func.count()).select_from(model)) or 0)
        last_id, done = 0, 0
        while True:
            opener = self.database.transaction if write else self.database.sessions
            async with opener() as session:
                query = select(model).where(model.id > last_id).order_by(model.id).limit(BATCH)
                rows = list((await session.execute(query)).scalars())
                if rows:
                    yield session, rows
            if not rows:
                return
            last_id, done = rows[-1].id, done + len(rows)
            if progress:
                progress(name, done, total)

    async def _legacy_reporters(
        self, session: AsyncSession, model: type[Any], rows: list[Any]
    ) -> dict[int, str]:
        """Upgrade only: case id -> the pseudonym its ``reporter_id`` column still names."""
        if not self._legacy or model is not Case:
            return {}
        found = await session.execute(
            select(_LEGACY_CASES.c.id, Worker.pseudonym)
            .join(Worker, Worker.id == _LEGACY_CASES.c.reporter_id)
            .where(_LEGACY_CASES.c.id.in_([row.id for row in rows]))
        )
        return {case_id: pseudonym for case_id, pseudonym in found}

    # -- one row -------------------------------------------------------------------------------

    def _renew(self, blob: bytes | None, purpose: bytes, legacy: bytes) -> bytes | None:
        """``blob`` under the newest key and format, or None if it already is (or is None)."""
        if blob is None or self.keyring.is_current(blob):
            return None
        legacy_purpose = legacy if self._legacy else None
        plain = self.keyring.decrypt(blob, purpose, legacy_purpose=legacy_purpose)
        return self.keyring.encrypt(plain, purpose)

    def _renew_column(self, row: object, column: str, purpose: bytes, legacy: bytes) -> bool:
        renewed = self._renew(getattr(row, column), purpose, legacy)
        if renewed is not None:
            setattr(row, column, renewed)
        return renewed is not None

    async def _renew_row(
        self, session: AsyncSession, row: Any, legacy_reporters: dict[int, str]
    ) -> bool:
        if isinstance(row, Case):
            return await self._case(session, row, legacy_reporters)
        if isinstance(row, StaffMember):
            return self._staff(row)
        changed = False
        for column, purpose, legacy in await self._purposes(session, row):
            changed = self._renew_column(row, column, purpose, legacy) or changed
        return changed

    async def _purposes(self, session: AsyncSession, row: Any) -> list[tuple[str, bytes, bytes]]:
        """(column, associated data now, associated data of format 1) of a non-case row."""
        if isinstance(row, WorkerAddress):
            pseudonym = str(
                await session.scalar(select(Worker.pseudonym).where(Worker.id == row.worker_id))
            )
            return [(
                "address_ciphertext",
                address_purpose(pseudonym, row.channel, row.worker_id),
                _legacy_address(pseudonym, row.channel),
            )]  # fmt: skip
        if isinstance(row, CaseEntry):
            reference = await self._reference(session, row.case_id)
            purpose = entry_purpose(reference, row.case_id, row.author, row.kind)
            return [("ciphertext", purpose, _legacy_entry(reference))]
        if isinstance(row, CaseEvent):
            event = case_purpose(await self._reference(session, row.case_id), "event")
            return [("note_ciphertext", event, event)]
        if isinstance(row, DraftAttachment):
            purpose = draft_purpose(row.draft_key, row.kind)
            return [("ciphertext", purpose, _legacy_draft(row.draft_key))]
        if isinstance(row, OutboxMessage):
            return [("payload_ciphertext", row_purpose(row), _legacy_outbox(row.key))]
        raise TypeError(type(row).__name__)

    async def _reference(self, session: AsyncSession, case_id: int) -> str:
        return str(await session.scalar(select(Case.reference).where(Case.id == case_id)))

    async def _case(
        self, session: AsyncSession, row: Case, legacy_reporters: dict[int, str]
    ) -> bool:
        changed = False
        for column, part in (("workplace_other_ciphertext", "workplace"),
                             ("agency_ciphertext", "agency")):  # fmt: skip
            purpose = case_purpose(row.reference, part)
            changed = self._renew_column(row, column, purpose, purpose) or changed
        resealed = codes.reseal(row.receipt_hash, self.keyring, row.reference, legacy=self._legacy)
        if resealed is not None:
            row.receipt_hash, changed = resealed, True
        if row.id in legacy_reporters:
            seal_reporter(row, self.keyring, legacy_reporters[row.id])
            await session.execute(
                sa.update(_LEGACY_CASES)
                .where(_LEGACY_CASES.c.id == row.id)
                .values(reporter_id=None)
            )
            changed = True
        elif row.reporter_ciphertext is not None and not self.keyring.is_current(
            row.reporter_ciphertext
        ):
            pseudonym = reporter_pseudonym(row, self.keyring)
            if pseudonym is None:
                raise DecryptionError("reporter")
            seal_reporter(row, self.keyring, pseudonym)  # the tag moves to the newest key too
            changed = True
        return changed

    def _staff(self, row: StaffMember) -> bool:
        """The TOTP secrets move to the newest key, then the seal (which covers the secret's
        hash) is made again under it; a row whose seal does not hold is left as it is."""
        if not staff_seal_holds(row, self.keyring) and not (self._legacy and row.seal is None):
            raise DecryptionError("staff seal")
        changed = False
        for column, purpose in _staff_secrets(row):
            changed = self._renew_column(row, column, purpose, purpose) or changed
        if changed or not staff_seal_holds(row, self.keyring, newest=True):
            seal_staff(row, self.keyring)
            return True
        return False

    # -- verification --------------------------------------------------------------------------

    async def _verify(self, report: RotationReport, progress: Progress | None) -> None:
        """Read every row back under the newest key alone: what is left once the old keys go."""
        newest = self.keyring.newest_only()
        failed = set(report.failures)
        for name, model in TABLES:
            verified = 0
            async for session, rows in self._batches(
                model, f"verify {name}", progress, write=False
            ):
                for row in rows:
                    if await self._reads(session, row, newest):
                        verified += 1
                    elif (name, row.id) not in failed:
                        report.failures.append((name, row.id))
            report.verified[name] = verified
        failed_canary = ("key_canary", key_canary.CANARY_ID)
        if not await key_canary.reads_under(self.database, newest) and failed_canary not in failed:
            report.failures.append(failed_canary)
        if self.state_store is not None:
            readable, _ = await self.state_store.count_readable(newest)
            report.verified["conversation_state"] = readable

    async def _reads(self, session: AsyncSession, row: Any, newest: Keyring) -> bool:
        try:
            for blob, purpose in await self._blobs(session, row):
                newest.decrypt(blob, purpose)
        except DecryptionError:
            return False
        if isinstance(row, StaffMember):
            return staff_seal_holds(row, newest)
        if isinstance(row, Case):
            if not codes.opens(row.receipt_hash, newest, row.reference):
                return False
            if row.reporter_ciphertext is not None:
                pseudonym = reporter_pseudonym(row, newest)
                return pseudonym is not None and row.reporter_tag == newest.blind_index(pseudonym)
        return True

    async def _blobs(self, session: AsyncSession, row: Any) -> list[tuple[bytes, bytes]]:
        if isinstance(row, StaffMember):
            return [
                (blob, purpose)
                for column, purpose in _staff_secrets(row)
                if (blob := getattr(row, column)) is not None
            ]
        if isinstance(row, Case):
            pairs = [
                (row.workplace_other_ciphertext, case_purpose(row.reference, "workplace")),
                (row.agency_ciphertext, case_purpose(row.reference, "agency")),
            ]
            return [(blob, purpose) for blob, purpose in pairs if blob is not None]
        return [
            (blob, purpose)
            for column, purpose, _ in await self._purposes(session, row)
            if (blob := getattr(row, column)) is not None
        ]


def _staff_secrets(row: StaffMember) -> list[tuple[str, bytes]]:
    """(column, associated data) of a staff row's encrypted TOTP secrets."""
    return [
        ("totp_secret", totp_purpose(row.name)),
        ("pending_totp", pending_totp_purpose(row.name)),
    ]


def failure_lines(report: RotationReport, limit: int = 20) -> Iterator[str]:
    """One line per row that does not read under the newest key (the first ``limit``)."""
    for table, row_id in report.failures[:limit]:
        yield f"{table} row {row_id} does not decrypt under the newest key"
    if len(report.failures) > limit:
        yield f"... and {len(report.failures) - limit} more rows"

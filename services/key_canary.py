"""The key canary: kept with the data, it tells whether the configured keys are the ones the data
was made with.

Keys that do not match the data do quiet harm: every saved case reads "[cannot be decrypted]",
and every returning worker gets another pseudonym, so is greeted as a stranger. The one row of
``key_canary`` (migration 0014) lets the composition root refuse such keys before it writes
anything (``bot/app.py``):

- ``secret_key_check`` is HMAC-SHA256 of a fixed label under WVB_SECRET_KEY: a keyed MAC of a
  constant, never a hash of the key, so it says "made with this key" and nothing else;
- ``encryption_check`` is a fixed label sealed with AES-GCM under the newest key of
  WVB_ENCRYPTION_KEYS; it opens under any configured key that made it.

A database from before the canary has no row: it is written on first open, once the stored
ciphertexts show they were made with a configured key (the key id in their header). The pseudonym
key cannot be checked that way (a pseudonym cannot be recomputed without a messenger id), so
there the keys of that first open are believed.

Deliberate changes move the canary along: opening with the old pseudonym key listed in
WVB_PREVIOUS_SECRET_KEYS records the new one (workers move over as they next write), and
`wvb keys rotate` reseals the encryption check under the newest key with every other row
(``services/key_rotation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.parties import SYSTEM_ACTOR
from services import audit
from storage.crypto import DecryptionError, Keyring, Pseudonymizer
from storage.database import Database
from storage.models import (
    Case,
    CaseEntry,
    DraftAttachment,
    KeyCanary,
    OutboxMessage,
    StaffMember,
    Worker,
    WorkerAddress,
)

CANARY_ID = 1
_LABEL = b"wvb-key-canary"
_PURPOSE = b"key-canary\x00encryption-keys"
#: The audit actor of a recorded change of the pseudonym key.
KEYS_ACTOR = f"{SYSTEM_ACTOR}:keys"
#: Ciphertext columns sampled when a database has no canary yet, and how many rows of each.
_SAMPLED = (
    WorkerAddress.address_ciphertext,
    CaseEntry.ciphertext,
    Case.reporter_ciphertext,
    OutboxMessage.payload_ciphertext,
    DraftAttachment.ciphertext,
)
_SAMPLE_ROWS = 50


@dataclass(frozen=True)
class KeyVerdict:
    """Which configured keys are not the ones the data was made with."""

    secret_key_wrong: bool = False
    encryption_keys_wrong: bool = False
    #: The canary names a key of WVB_PREVIOUS_SECRET_KEYS: a deliberate change, to be recorded.
    secret_key_replaced: bool = False

    @property
    def keys_match(self) -> bool:
        return not (self.secret_key_wrong or self.encryption_keys_wrong)


@dataclass(frozen=True)
class KeyEvidence:
    """What the database says about the keys its data was made with."""

    secret_key_check: str | None = None
    encryption_check: bytes | None = None
    #: Without a canary: a sample of the stored ciphertexts, and whether any data is stored.
    sampled_ciphertexts: tuple[bytes, ...] = field(default=(), repr=False)
    holds_data: bool = False

    @property
    def has_canary(self) -> bool:
        return self.secret_key_check is not None

    def verdict(self, pseudonymizer: Pseudonymizer, keyring: Keyring) -> KeyVerdict:
        """Judge keys against the evidence; pure, so other keys can be tried for advice."""
        if self.secret_key_check is None or self.encryption_check is None:
            unknown = bool(self.sampled_ciphertexts) and not any(
                keyring.knows_key_of(blob) for blob in self.sampled_ciphertexts
            )
            return KeyVerdict(encryption_keys_wrong=unknown)
        secret_ok = pseudonymizer.matches(self.secret_key_check)
        replaced = not secret_ok and pseudonymizer.previous_key_matches(self.secret_key_check)
        return KeyVerdict(
            secret_key_wrong=not (secret_ok or replaced),
            encryption_keys_wrong=not opens(self.encryption_check, keyring),
            secret_key_replaced=replaced,
        )


def seal(keyring: Keyring) -> bytes:
    return keyring.encrypt(_LABEL, _PURPOSE)


def opens(sealed: bytes, keyring: Keyring) -> bool:
    try:
        return keyring.decrypt(sealed, _PURPOSE) == _LABEL
    except DecryptionError:
        return False


async def read_evidence(database: Database) -> KeyEvidence:
    async with database.sessions() as session:
        return await evidence_in(session)


async def evidence_in(session: AsyncSession) -> KeyEvidence:
    """What the database says about its keys, read in ``session`` (which may be read-only:
    `wvb doctor` reads it so)."""
    canary = await session.get(KeyCanary, CANARY_ID)
    if canary is not None:
        return KeyEvidence(canary.secret_key_check, canary.encryption_check, holds_data=True)
    sampled: list[bytes] = []
    for column in _SAMPLED:
        query = select(column).where(column.is_not(None)).limit(_SAMPLE_ROWS)
        sampled += [bytes(blob) for blob in await session.scalars(query) if blob is not None]
    people = await session.scalar(select(Worker.id).limit(1)) or await session.scalar(
        select(StaffMember.id).limit(1)
    )
    return KeyEvidence(sampled_ciphertexts=tuple(sampled), holds_data=bool(sampled or people))


async def check_and_record(
    database: Database, pseudonymizer: Pseudonymizer, keyring: Keyring
) -> tuple[KeyVerdict, KeyEvidence]:
    """Judge the keys; when they match, write the canary if there is none yet, and record a
    deliberate change of the pseudonym key. Keys that do not match write nothing."""
    for attempt in range(2):
        try:
            async with database.transaction() as session:
                evidence = await evidence_in(session)
                verdict = evidence.verdict(pseudonymizer, keyring)
                if verdict.keys_match:
                    await _record(session, evidence, verdict, pseudonymizer, keyring)
                return verdict, evidence
        except IntegrityError:
            # Another process wrote the first canary meanwhile: judge the keys against it.
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _record(
    session: AsyncSession,
    evidence: KeyEvidence,
    verdict: KeyVerdict,
    pseudonymizer: Pseudonymizer,
    keyring: Keyring,
) -> None:
    if not evidence.has_canary:
        session.add(
            KeyCanary(
                id=CANARY_ID,
                secret_key_check=pseudonymizer.key_check(),
                encryption_check=seal(keyring),
            )
        )
        await session.flush()
    elif verdict.secret_key_replaced:
        canary = await session.get(KeyCanary, CANARY_ID)
        assert canary is not None
        canary.secret_key_check = pseudonymizer.key_check()
        audit.record(session, KEYS_ACTOR, "keys.secret_key.replaced")


# -- `wvb keys rotate` ---------------------------------------------------------------------------


async def reseal(database: Database, keyring: Keyring) -> bool | None:
    """Seal the encryption check under the newest key: True if it changed, False if it already
    was, None if there is no canary; DecryptionError if no configured key opens it."""
    async with database.transaction() as session:
        canary = await session.get(KeyCanary, CANARY_ID)
        if canary is None:
            return None
        if keyring.is_current(canary.encryption_check):
            return False
        if not opens(canary.encryption_check, keyring):
            raise DecryptionError("key canary")
        canary.encryption_check = seal(keyring)
        return True


async def reads_under(database: Database, keyring: Keyring) -> bool:
    """Whether the canary (if any) opens under ``keyring`` (the newest key alone, when
    rotation verifies what is left once the old keys go)."""
    async with database.sessions() as session:
        sealed: Any = await session.scalar(
            select(KeyCanary.encryption_check).where(KeyCanary.id == CANARY_ID)
        )
    return sealed is None or opens(bytes(sealed), keyring)

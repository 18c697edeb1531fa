"""Who reported a case, without a column a database reader could follow to a worker.

A case holds its reporter twice, neither in the clear:

- ``reporter_tag``: a blind index of the reporter's pseudonym (``Keyring.blind_index``). Given a
  pseudonym, the bot finds that worker's cases (a worker answering about their own case, /forget).
  Without the keys the tag names no worker; two cases of one worker share it.
- ``reporter_ciphertext``: the pseudonym, encrypted and bound to the case reference. Given a case,
  the bot finds whom to write to (staff replies, validation prompts, reminders).

/forget clears both, so the case is reachable only by receipt code, as before.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import DecryptionError, Keyring
from storage.models import Case, Worker

log = logging.getLogger(__name__)


def reporter_purpose(reference: str) -> bytes:
    return f"case\x00{reference}\x00reporter".encode()


def seal_reporter(case: Case, keyring: Keyring, pseudonym: str | None) -> None:
    """Name ``pseudonym`` (None: nobody) as the reporter of ``case``."""
    if pseudonym is None:
        case.reporter_tag, case.reporter_ciphertext = None, None
        return
    case.reporter_tag = keyring.blind_index(pseudonym)
    case.reporter_ciphertext = keyring.encrypt(pseudonym.encode(), reporter_purpose(case.reference))


def reporter_pseudonym(case: Case, keyring: Keyring) -> str | None:
    if case.reporter_ciphertext is None:
        return None
    try:
        return keyring.decrypt(case.reporter_ciphertext, reporter_purpose(case.reference)).decode()
    except DecryptionError:
        log.error("the reporter of case %d does not decrypt; treated as unreachable", case.id)
        return None


async def reporter_id(session: AsyncSession, case: Case, keyring: Keyring) -> int | None:
    """The ``workers`` row of the case's reporter, or None if they used /forget."""
    pseudonym = reporter_pseudonym(case, keyring)
    if pseudonym is None:
        return None
    worker_id: int | None = await session.scalar(
        select(Worker.id).where(Worker.pseudonym == pseudonym)
    )
    return worker_id


def reported_by(pseudonym: str, keyring: Keyring) -> ColumnElement[bool]:
    """Cases this worker reported (under any configured key: a rotation may be under way)."""
    return Case.reporter_tag.in_(keyring.blind_indexes(pseudonym))


async def forget_reporter(session: AsyncSession, pseudonym: str, keyring: Keyring) -> None:
    """Cut every link from cases to this worker."""
    await session.execute(
        update(Case)
        .where(reported_by(pseudonym, keyring))
        .values(reporter_tag=None, reporter_ciphertext=None)
    )

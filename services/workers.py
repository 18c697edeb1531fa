"""Worker profiles: language and how to reach the worker, stored under a pseudonym."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime

from sqlalchemy import Update, delete, select, update
from sqlalchemy.exc import IntegrityError

from conversations.ports import WorkerProfile, WorkerRef
from services.casework import reporter_forgetting
from services.outbox import Outbox
from services.reporters import forget_reporter, reported_by, seal_reporter
from services.window_hold import drop_held
from storage.crypto import DecryptionError, Keyring
from storage.database import Database
from storage.models import Case, Worker, WorkerAddress, Workplace
from storage.repositories import WorkerRepository

log = logging.getLogger(__name__)


def mark_blocked(worker_ids: list[int], at: datetime) -> Update:
    """The statement recording that these workers blocked the bot: no broadcast reaches them
    until they write again (``WorkerProfileService.mark_reachable``)."""
    return (
        update(Worker)
        .where(Worker.id.in_(worker_ids), Worker.blocked_at.is_(None))
        .values(blocked_at=at)
    )


def address_purpose(pseudonym: str, channel: str, worker_id: int) -> bytes:
    """Associated data binding an address ciphertext to its worker (row and pseudonym) and
    channel: an address moved to another worker's row, or a worker row given another
    pseudonym, fails to decrypt, so nobody can re-point a worker's messages at their own chat."""
    return f"address\x00{channel}\x00{pseudonym}\x00{worker_id}".encode()


class WorkerProfileService:
    def __init__(self, database: Database, keyring: Keyring, outbox: Outbox) -> None:
        self.database = database
        self.keyring = keyring
        self.outbox = outbox  # /forget tells staff about cases waiting for the worker's answer

    async def find(self, pseudonym: str) -> WorkerProfile | None:
        async with self.database.sessions() as session:
            worker = await WorkerRepository(session).by_pseudonym(pseudonym)
            if worker is None:
                return None
            return WorkerProfile(worker.language, worker.subscribed, worker.workplace_id)

    async def save(self, worker: WorkerRef, language: str) -> None:
        for attempt in range(2):
            try:
                async with self.database.transaction() as session:
                    repository = WorkerRepository(session)
                    stored = await repository.save_profile(worker.pseudonym, language)
                    ciphertext = self.keyring.encrypt(
                        worker.address.encode(),
                        address_purpose(worker.pseudonym, worker.channel, stored.id),
                    )
                    await repository.set_address(stored, worker.channel, ciphertext)
                return
            except IntegrityError:
                # Another process created the same worker a moment ago; the retry updates it.
                if attempt:
                    raise

    async def adopt_previous(self, worker: WorkerRef) -> str | None:
        """Move a worker known under one of ``worker.previous_pseudonyms`` (another of their ids
        on the channel, or a previous ``WVB_SECRET_KEY``; the first known in that order) to their
        current pseudonym: the profile row, their addresses (the one on this channel becomes the
        one they write from now), the cases they reported. Returns the old pseudonym if the
        worker was moved now; None if they are known under the current one already, or not at
        all (two profiles of one person are never merged)."""
        async with self.database.sessions() as session:
            if await WorkerRepository(session).by_pseudonym(worker.pseudonym) is not None:
                return None  # the common case: one indexed read per turn
        async with self.database.transaction() as session:
            candidates = {
                found.pseudonym: found
                for found in await session.scalars(
                    select(Worker).where(Worker.pseudonym.in_(worker.previous_pseudonyms))
                )
            }
            old = next((p for p in worker.previous_pseudonyms if p in candidates), None)
            if old is None:
                return None
            found = candidates[old]
            for address in await session.scalars(
                select(WorkerAddress).where(WorkerAddress.worker_id == found.id)
            ):
                if address.channel == worker.channel:
                    plain = worker.address.encode()
                else:
                    plain = self.keyring.decrypt(
                        address.address_ciphertext, address_purpose(old, address.channel, found.id)
                    )
                address.address_ciphertext = self.keyring.encrypt(
                    plain, address_purpose(worker.pseudonym, address.channel, found.id)
                )
            for case in await session.scalars(select(Case).where(reported_by(old, self.keyring))):
                seal_reporter(case, self.keyring, worker.pseudonym)
            found.pseudonym = worker.pseudonym
        return old

    async def forget(self, pseudonym: str) -> None:
        """Delete the worker and their addresses; their cases stay, no longer linked to anyone
        (``services/reporters.py``), reachable only by receipt code."""
        async with self.database.transaction() as session:
            staff_told = await reporter_forgetting(session, pseudonym, self.keyring, self.outbox)
            await forget_reporter(session, pseudonym, self.keyring)
            worker_id = await session.scalar(select(Worker.id).where(Worker.pseudonym == pseudonym))
            if worker_id is not None:
                await drop_held(session, worker_id)
            await session.execute(delete(Worker).where(Worker.pseudonym == pseudonym))
        await self.database.checkpoint()
        if staff_told:
            self.outbox.wake()

    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                update(Worker).where(Worker.pseudonym == pseudonym).values(subscribed=subscribed)
            )

    async def set_workplace(self, pseudonym: str, workplace_id: int | None) -> None:
        async with self.database.transaction() as session:
            if workplace_id is not None and await session.get(Workplace, workplace_id) is None:
                workplace_id = None  # removed meanwhile: better none than a wrong one
            await session.execute(
                update(Worker)
                .where(Worker.pseudonym == pseudonym)
                .values(workplace_id=workplace_id)
            )

    async def mark_reachable(self, worker: WorkerRef) -> None:
        """Unblock a worker who wrote again, and keep their address the one they wrote from: a
        WhatsApp worker's ids can change under one pseudonym (``whatsapp/identity.py``).
        One read per turn; a write only when something changed."""
        async with self.database.sessions() as session:
            found = (
                await session.execute(
                    select(Worker.id, Worker.blocked_at, WorkerAddress.address_ciphertext)
                    .outerjoin(
                        WorkerAddress,
                        (WorkerAddress.worker_id == Worker.id)
                        & (WorkerAddress.channel == worker.channel),
                    )
                    .where(Worker.pseudonym == worker.pseudonym)
                )
            ).first()
        if found is None:
            return
        worker_id, blocked, ciphertext = found
        purpose = address_purpose(worker.pseudonym, worker.channel, worker_id)
        moved = ciphertext is not None and not self._holds(ciphertext, purpose, worker.address)
        if blocked is None and not moved:
            return
        async with self.database.transaction() as session:
            if blocked is not None:
                await session.execute(
                    update(Worker).where(Worker.id == worker_id).values(blocked_at=None)
                )
            if moved:
                await session.execute(
                    update(WorkerAddress)
                    .where(
                        WorkerAddress.worker_id == worker_id,
                        WorkerAddress.channel == worker.channel,
                    )
                    .values(
                        address_ciphertext=self.keyring.encrypt(worker.address.encode(), purpose)
                    )
                )

    def _holds(self, ciphertext: bytes, purpose: bytes, address: str) -> bool:
        """Whether the stored address is ``address``. One that does not decrypt (a key no
        longer listed, a row moved) is not: the address the worker writes from replaces it."""
        try:
            return hmac.compare_digest(self.keyring.decrypt(ciphertext, purpose), address.encode())
        except DecryptionError:
            log.warning("a worker's stored address did not decrypt; replaced by the current one")
            return False

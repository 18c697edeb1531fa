"""Repositories: the only place that writes SQL for a table. Services call these."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.interfaces import ORMOption

from domain.errors import CaseNotFound
from domain.references import normalize_reference
from storage.models import Case, Worker, WorkerAddress


class CaseRepository:
    """Cases by reference: the one lookup every surface goes through, so each accepts what a
    person types (``k7m3 9q2x``, ``K7M3-9Q2X``, O for 0 …) the same way."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(
        self,
        reference: str,
        *,
        where: ColumnElement[bool] | None = None,
        lock: bool = False,
        load: Sequence[ORMOption] = (),
    ) -> Case | None:
        """The case ``reference`` names (only if it also meets ``where``, when given: e.g. the
        worker asking reported it); ``lock`` holds it until the transaction ends, ``load`` loads
        relationships with it."""
        canonical = normalize_reference(reference)
        if canonical is None:
            return None
        query = select(Case).where(Case.reference == canonical)
        if where is not None:
            query = query.where(where)
        if lock:
            query = query.with_for_update()
        if load:
            query = query.options(*load)
        return await self.session.scalar(query)

    async def named(
        self, reference: str, *, lock: bool = False, load: Sequence[ORMOption] = ()
    ) -> Case:
        """Like ``find``, for staff: a reference that names no case is refused, saying so."""
        case = await self.find(reference, lock=lock, load=load)
        if case is None:
            raise CaseNotFound(reference)
        return case


class WorkerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_pseudonym(self, pseudonym: str) -> Worker | None:
        result = await self.session.execute(select(Worker).where(Worker.pseudonym == pseudonym))
        return result.scalar_one_or_none()

    async def save_profile(self, pseudonym: str, language: str) -> Worker:
        worker = await self.by_pseudonym(pseudonym)
        if worker is None:
            worker = Worker(pseudonym=pseudonym, language=language)
            self.session.add(worker)
        else:
            worker.language = language
        await self.session.flush()
        return worker

    async def set_address(self, worker: Worker, channel: str, ciphertext: bytes) -> None:
        result = await self.session.execute(
            select(WorkerAddress).where(
                WorkerAddress.worker_id == worker.id, WorkerAddress.channel == channel
            )
        )
        address = result.scalar_one_or_none()
        if address is None:
            self.session.add(
                WorkerAddress(worker_id=worker.id, channel=channel, address_ciphertext=ciphertext)
            )
        else:
            address.address_ciphertext = ciphertext
        await self.session.flush()

"""Repositories: the only place that writes SQL for a table. Services call these."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Worker, WorkerAddress


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

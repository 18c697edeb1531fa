"""The transactional outbox: messages are rows written with the change that caused them, and a
relay (``bot/channels/outbox_relay.py``) sends them. A crash can delay a message, never lose it.

A row holds the ``Outbound`` the core built, serialised and encrypted: the same message type every
channel renders in a turn, so a message sent later looks exactly like one sent at once."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.messages import Outbound
from domain.parties import Side
from services.reporters import reporter_id
from storage.crypto import Keyring
from storage.models import Case, OutboxMessage, Worker, WorkerAddress

#: The channel of a row whose worker has no address any more: every relay may take it.
NO_CHANNEL = "-"


def outbox_purpose(key: str, recipient: str, worker_id: int | None, case_id: int | None) -> bytes:
    """Associated data of a queued message: every column that decides who receives it. A row
    re-pointed at another worker, at staff, or at another case fails to decrypt and is not sent."""
    return f"outbox\x00{key}\x00{recipient}\x00{worker_id}\x00{case_id}".encode()


def row_purpose(row: OutboxMessage) -> bytes:
    return outbox_purpose(row.key, row.recipient, row.worker_id, row.case_id)


class StaffDestination:
    """Whether staff alerts have somewhere to go, as far as this process can tell: ``problem``
    says why not (None: they have). Set from the settings when the app is built and refused
    later if the channel finds the staff chat unfit (a channel, a public group). The worker is
    told "our staff have been alerted" only while it is reachable (``Cases.can_alert_staff``);
    the alerts themselves are queued either way and go out once a destination is configured."""

    def __init__(self, problem: str | None) -> None:
        self.problem = problem

    @property
    def reachable(self) -> bool:
        return self.problem is None

    def refuse(self, problem: str) -> None:
        self.problem = problem


class Outbox:
    def __init__(
        self,
        keyring: Keyring,
        wake: Callable[[], None] | None = None,
        staff_channel: str = "telegram",
    ) -> None:
        self.keyring = keyring
        self._wake = wake or (lambda: None)
        self.staff_channel = staff_channel

    async def to_worker(
        self,
        session: AsyncSession,
        worker_id: int | None,
        message: Outbound,
        *,
        case_id: int | None = None,
    ) -> None:
        """Queue ``message`` for a worker, on the channel they use. A worker who used /forget
        (or has no address) still gets a row, on ``NO_CHANNEL``: the relay that takes it finds
        nobody to send to and tells staff, instead of the message vanishing silently."""
        channel = None
        if worker_id is not None:
            channel = await session.scalar(
                select(WorkerAddress.channel)
                .where(WorkerAddress.worker_id == worker_id)
                .order_by(WorkerAddress.updated_at.desc())
                .limit(1)
            )
            if message.language is None:  # for what the channel words itself (a list button)
                language = await session.scalar(
                    select(Worker.language).where(Worker.id == worker_id)
                )
                message = dataclasses.replace(message, language=language)
        self._add(session, message, Side.WORKER, channel or NO_CHANNEL, worker_id, case_id)

    async def to_reporter(self, session: AsyncSession, case: Case, message: Outbound) -> None:
        """Queue ``message`` for the worker who reported ``case`` (``services/reporters.py``)."""
        worker_id = await reporter_id(session, case, self.keyring)
        await self.to_worker(session, worker_id, message, case_id=case.id)

    def to_staff(
        self, session: AsyncSession, message: Outbound, *, case_id: int | None = None
    ) -> None:
        """Queue an alert for staff, on the channel where the staff chat is."""
        self._add(session, message, Side.STAFF, self.staff_channel, None, case_id)

    def _add(
        self,
        session: AsyncSession,
        message: Outbound,
        recipient: Side,
        channel: str,
        worker_id: int | None,
        case_id: int | None,
    ) -> None:
        key = str(uuid.uuid4())
        session.add(
            OutboxMessage(
                key=key,
                channel=channel,
                recipient=recipient,
                worker_id=worker_id,
                case_id=case_id,
                payload_ciphertext=self.keyring.encrypt(
                    message.to_bytes(), outbox_purpose(key, recipient, worker_id, case_id)
                ),
            )
        )

    def wake(self) -> None:
        """Tell the relay to look now (call after the transaction commits)."""
        self._wake()

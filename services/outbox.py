"""The transactional outbox: messages are rows written with the change that caused them, and a
relay (``scheduler/outbox_relay.py``) sends them. A crash can delay a message, never lose it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.messages import Choice, Outbound
from storage.crypto import Keyring
from storage.models import OutboxMessage

STAFF = "staff"
WORKER = "worker"


def outbox_purpose(key: str) -> bytes:
    return f"outbox\x00{key}".encode()


@dataclass(frozen=True)
class OutboxPayload:
    text: str
    protect_content: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (label, payload) buttons

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"text": self.text, "protect": self.protect_content, "choices": self.choices}
        ).encode()

    def outbound(self) -> Outbound:
        """The message as a channel sends it."""
        return Outbound(
            self.text,
            tuple(Choice(label, data) for label, data in self.choices),
            protect_content=self.protect_content,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> OutboxPayload:
        loaded = json.loads(raw)
        choices = tuple((str(label), str(payload)) for label, payload in loaded.get("choices", []))
        return cls(loaded["text"], bool(loaded.get("protect", False)), choices)


class Outbox:
    def __init__(self, keyring: Keyring, wake: Callable[[], None] | None = None) -> None:
        self.keyring = keyring
        self._wake = wake or (lambda: None)

    def enqueue(
        self,
        session: AsyncSession,
        payload: OutboxPayload,
        *,
        recipient: str,
        channel: str = "telegram",
        worker_id: int | None = None,
        case_id: int | None = None,
    ) -> None:
        key = str(uuid.uuid4())
        session.add(
            OutboxMessage(
                key=key,
                channel=channel,
                recipient=recipient,
                worker_id=worker_id,
                case_id=case_id,
                payload_ciphertext=self.keyring.encrypt(payload.to_bytes(), outbox_purpose(key)),
            )
        )

    def wake(self) -> None:
        """Tell the relay to look now (call after the transaction commits)."""
        self._wake()

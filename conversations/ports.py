"""The service interfaces the conversation core calls. Implementations live in ``services/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class WorkerRef:
    """Who the conversation is with, as far as the core may know.

    ``pseudonym`` is a keyed hash of the messenger identity; ``address`` is what the channel needs
    to message the worker back. It is kept out of ``repr`` so it can never reach a log line or a
    traceback by accident, and is stored only encrypted.
    """

    pseudonym: str
    channel: str
    address: str = field(repr=False)


@dataclass(frozen=True)
class WorkerProfile:
    language: str
    subscribed: bool


class WorkerProfiles(Protocol):
    async def find(self, pseudonym: str) -> WorkerProfile | None:
        """The stored profile of a worker who finished onboarding, or None."""

    async def save(self, worker: WorkerRef, language: str) -> None:
        """Create or update the profile (language, reachable address) after onboarding."""


@dataclass(frozen=True)
class Services:
    """Everything the conversation core may call, bundled so flows take one argument."""

    profiles: WorkerProfiles

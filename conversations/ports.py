"""The service interfaces the conversation core calls. Implementations live in ``services/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from conversations.messages import LEAST_CAPABILITIES, ChannelCapabilities, FetchMedia
from domain.answers import Answer
from domain.statuses import CaseStatus


class MediaUnavailable(Exception):
    """The channel could not hand over a file the worker sent."""


class MediaTooLarge(MediaUnavailable):
    """The file is larger than the channel lets a bot download."""


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
    # Pseudonyms the worker may be known under from before, to move them to ``pseudonym``: of
    # their other ids on this channel (aliases), and under WVB_PREVIOUS_SECRET_KEYS; in order.
    previous_pseudonyms: tuple[str, ...] = field(default=(), repr=False)
    # What the worker's channel can do; what the worker is told follows it.
    capabilities: ChannelCapabilities = LEAST_CAPABILITIES


@dataclass(frozen=True)
class WorkerProfile:
    language: str
    subscribed: bool
    workplace_id: int | None = None


class WorkerProfiles(Protocol):
    async def find(self, pseudonym: str) -> WorkerProfile | None:
        """The stored profile of a worker who finished onboarding, or None."""

    async def save(self, worker: WorkerRef, language: str) -> None:
        """Create or update the profile (language, reachable address) after onboarding."""

    async def forget(self, pseudonym: str) -> None:
        """Erase the profile and address and cut the link to the worker's cases."""

    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None:
        """Whether the worker receives broadcasts (/subscribe, /stop)."""

    async def set_workplace(self, pseudonym: str, workplace_id: int | None) -> None:
        """The workplace the worker wants news about (segments, time zone, contacts)."""

    async def mark_reachable(self, worker: WorkerRef) -> None:
        """The worker wrote to us: if they had blocked the bot, they may be messaged again, at
        the address they wrote from."""


@dataclass(frozen=True)
class WorkplaceOption:
    id: int
    name: str


@dataclass(frozen=True)
class ReportDraft:
    """A finished report as the conversation collected it; evidence files are already stored
    under ``key`` by ``Cases.add_evidence``."""

    key: str
    language: str
    categories: tuple[str, ...]
    workplace_id: int | None
    workplace_text: str | None = field(repr=False)
    agency: str | None = field(repr=False)
    details: tuple[str, ...] = field(repr=False)
    occurred: str
    affected: str
    danger_now: bool
    confidentiality: str
    receipt_code: str = field(repr=False)


@dataclass(frozen=True)
class CaseReceipt:
    reference: str
    urgent: bool
    acknowledge_due: datetime
    response_due: datetime
    # Urgent, but staff got no new alert: the worker's earlier urgent alert today stands for it
    # (the per-worker quota of urgent alerts, services/quotas.py).
    alert_collapsed: bool = False
    # An urgent case's acknowledgement target (WVB_URGENT_ACKNOWLEDGE_HOURS), told to the worker
    # in hours instead of a date; None for other cases.
    acknowledge_within_hours: int | None = None


@dataclass(frozen=True)
class StaffMessage:
    at: datetime
    text: str = field(repr=False)


@dataclass(frozen=True)
class CaseStatusView:
    reference: str
    status: CaseStatus
    created_at: datetime
    acknowledge_due: datetime
    response_due: datetime
    acknowledged: bool
    staff_messages: tuple[StaffMessage, ...]
    # Proof, for a short while, that this worker gave the right code: lets them withdraw the
    # report without the code being kept in the conversation (None: it cannot be withdrawn).
    withdraw_token: str | None = field(default=None, repr=False)
    # False once the worker who reported it used /forget: the bot can no longer write to them
    # (staff replies, the question whether a fix is real).
    reporter_linked: bool = True


class StatusOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # a wrong reference and a wrong code both end here
    THROTTLED = "throttled"


@dataclass(frozen=True)
class StatusResult:
    outcome: StatusOutcome
    case: CaseStatusView | None = None


class WithdrawOutcome(StrEnum):
    WITHDRAWN = "withdrawn"  # status withdrawn, content deleted, staff told
    NOT_POSSIBLE = "not_possible"  # the case ended meanwhile, or the proof expired


class EvidenceOutcome(StrEnum):
    STORED = "stored"
    UNSUPPORTED = "unsupported"  # not a type the bot cleans
    REFUSED = "refused"  # a known type that could not be cleaned safely (limits, damage)
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"  # the channel could not hand over the file
    OVER_QUOTA = "over_quota"  # the worker sent as many bytes of files today as one may


class Cases(Protocol):
    async def workplaces(self) -> list[WorkplaceOption]:
        """Active workplaces staff configured, by name."""

    async def emergency_contacts(self, language: str, workplace_id: int | None) -> str | None:
        """The emergency contacts for the workplace's country in this language, if configured."""

    async def can_alert_staff(self) -> bool:
        """Whether an urgent alert has somewhere to go (a staff chat is configured and fit): a
        worker is told "our staff have been alerted" only when this is true."""

    async def report_wait(self, pseudonym: str) -> int:
        """Seconds until the worker may start another report (0: now): the daily quota."""

    async def add_evidence(
        self,
        draft_key: str,
        kind: str,
        fetch: FetchMedia,
        declared_mime: str | None,
        *,
        pseudonym: str,
    ) -> EvidenceOutcome:
        """Fetch, strip metadata, encrypt and keep a file for a draft not yet confirmed, within
        the worker's daily quota of evidence bytes."""

    async def discard_draft(self, draft_key: str) -> None:
        """Delete the evidence of a draft the worker cancelled."""

    def new_receipt_code(self) -> str:
        """A fresh secret receipt code (shown to the worker once, stored only hashed)."""

    async def submit(self, worker: WorkerRef, draft: ReportDraft) -> CaseReceipt:
        """Commit the case; the same draft submitted twice gives the same case."""

    async def check_status(self, pseudonym: str, reference: str, code: str) -> StatusResult:
        """Look a case up by reference and receipt code, throttling guesses."""

    async def withdraw(self, pseudonym: str, token: str) -> WithdrawOutcome:
        """Withdraw the report a status check gave ``token`` for: its content is deleted at
        once and staff are told the reference only."""


class ValidationAnswer(StrEnum):
    """What the worker's answer about a fix did."""

    CLOSED = CaseStatus.CLOSED.value
    REOPENED = CaseStatus.REOPENED.value
    NOTED = "noted"
    NOT_APPLICABLE = "not_applicable"


class Casework(Protocol):
    async def record_validation(self, worker: WorkerRef, reference: str, answer: Answer) -> str:
        """Record the worker's answer about a fix; returns a ``ValidationAnswer`` value."""

    async def add_worker_message(self, worker: WorkerRef, reference: str, text: str) -> bool:
        """Add the worker's follow-up answer or comment to their case; False if not theirs."""

    async def add_worker_file(
        self, worker: WorkerRef, reference: str, kind: str, fetch: FetchMedia, mime: str | None
    ) -> EvidenceOutcome:
        """A photo, document or voice note answering staff, added to the worker's case."""

    async def record_retaliation_answer(
        self, worker: WorkerRef, reference: str, answer: Answer, receipt_code: str
    ) -> tuple[str, bool] | None:
        """A yes opens a linked urgent case with ``receipt_code`` (once); returns its reference
        and whether it was opened by this answer."""

    async def awaiting_answer(self, worker: WorkerRef) -> tuple[str, ...]:
        """The references of this worker's cases that wait for their answer about a fix."""

    async def join_site_panel(self, worker: WorkerRef, reference: str) -> bool:
        """The worker agrees to be asked about the workplace of their case now and then."""

    async def record_site_answer(self, worker: WorkerRef, token: str, answer: Answer) -> bool:
        """A panel worker's answer to a site-validation question; False if not theirs."""


class Learning(Protocol):
    async def record_feedback(self, topic: str, language: str, helpful: bool) -> None:
        """Count one answer to "Was this helpful?" after a lesson: counters only, no worker."""


@dataclass(frozen=True)
class Services:
    """Everything the conversation core may call, bundled so flows take one argument."""

    profiles: WorkerProfiles
    cases: Cases
    casework: Casework
    learning: Learning

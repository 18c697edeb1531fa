"""What staff see: typed views of cases, workplaces and contacts, and the one path that turns a
view into JSON.

Services return these dataclasses; each surface reads their fields (the CLI's tables, the staff
chat's lines) or prints ``to_json(view)``. The JSON keys are the field names in their order, so
``wvb cases list --json`` and ``wvb cases show --json`` keep the keys operators' scripts rely on
(``../shared/CONTRACT.md``): change a field name only together with the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from storage.models import iso_utc

_ONLY_WHEN_SET = "only_when_set"


def only_when_set() -> Any:
    """A field that is left out of the JSON when it is None (not written as null)."""
    return field(default=None, metadata={_ONLY_WHEN_SET: True})


def to_json(view: object) -> Any:
    """A view (or a list or dict of views) as JSON data: objects keyed by field name in field
    order, timestamps as ISO 8601 ending in Z, enums as their values."""
    if is_dataclass(view) and not isinstance(view, type):
        document = {}
        for each in fields(view):
            value = getattr(view, each.name)
            if value is None and each.metadata.get(_ONLY_WHEN_SET):
                continue
            document[each.name] = to_json(value)
        return document
    if isinstance(view, datetime):
        return iso_utc(view)
    if isinstance(view, Enum):
        return view.value
    if isinstance(view, dict):
        return {str(key): to_json(value) for key, value in view.items()}
    if isinstance(view, list | tuple):
        return [to_json(value) for value in view]
    return view


@dataclass(frozen=True)
class CaseSummary:
    """A case as ``wvb cases list`` shows it: what it is about, nothing the worker wrote."""

    reference: str
    status: str
    category: str | None  # the first category (the contract's single ``category``)
    categories: list[str]
    language: str
    urgent: bool
    created_at: datetime
    workplace: str | None  # the listed workplace the worker chose
    # the one they typed instead (decrypted, for staff who may read what workers wrote)
    workplace_typed: str | None
    assigned_to: str | None
    acknowledge_due_at: datetime
    response_due_at: datetime


@dataclass(frozen=True)
class CaseOverview:
    """A case as a messenger may show it: the summary and how much is in the file, none of its
    content (the staff chat's /case; the content is read in `wvb cases show`)."""

    summary: CaseSummary
    texts: int
    files: int


@dataclass(frozen=True)
class CaseEntryView:
    """One piece of the case file, decrypted: ``text`` for text, ``size`` for a file, ``error``
    when the configured keys cannot decrypt it."""

    id: int
    at: datetime
    author: str
    kind: str
    mime_type: str
    text: str | None = only_when_set()
    size: int | None = only_when_set()
    error: str | None = only_when_set()


@dataclass(frozen=True)
class CaseEventView:
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None


@dataclass(frozen=True)
class SiteValidationView:
    """Other workers' answers for the current round: counts, or why they are hidden."""

    asked: int
    answered: int
    answers: dict[str, int] | str


@dataclass(frozen=True)
class CaseDetail(CaseSummary):
    """A case as ``wvb cases show`` shows it: the summary, the decrypted file and history."""

    category_labels: list[str]
    agency: str | None
    occurred: str
    affected: str
    danger_now: bool
    confidentiality: str
    worker_reachable: bool
    site_validation: SiteValidationView
    entries: list[CaseEntryView]
    events: list[CaseEventView]
    # Set when the case's content was deleted (retention, `wvb cases purge`, a withdrawal).
    purged_at: datetime | None = field(default=None, metadata={_ONLY_WHEN_SET: True})


@dataclass(frozen=True)
class WorkplaceView:
    id: int
    name: str
    country: str | None
    timezone: str | None


@dataclass(frozen=True)
class ListedWorkplace(WorkplaceView):
    active: bool


@dataclass(frozen=True)
class ContactView:
    country: str
    language: str
    text: str


@dataclass(frozen=True)
class QueuedMessageView:
    """A message in the outbox as `wvb outbox list` shows it: which case, what kind, where it
    stands. Never its content, nor who receives it."""

    id: int
    reference: str | None  # the case it belongs to, if any
    kind: str  # services.stuck_messages.MessageKind
    channel: str | None  # None: the worker has no address any more
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None  # only while pending, and not while held
    # WhatsApp: waiting for the worker to write (their 24-hour window was closed; a neutral
    # template asked them to); ``last_error`` says so.
    held_for_window: bool = False


@dataclass(frozen=True)
class CaseFilter:
    """What the console's case list is narrowed to (every field optional), and which page."""

    status: str | None = None
    category: str | None = None
    workplace_id: int | None = None
    urgent: bool = False
    overdue: bool = False
    assigned_to: str | None = None
    page: int = 1
    per_page: int = 25

    def describe(self) -> dict[str, object]:
        """The filters for the audit log (codes and flags only)."""
        return {
            key: value
            for key, value in vars(self).items()
            if value not in (None, False) and key not in ("page", "per_page")
        }


@dataclass(frozen=True)
class CasePage:
    total: int
    page: int
    per_page: int
    cases: list[CaseSummary]
    overdue: set[str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

"""The report a worker is putting together, kept between turns in the conversation state.

It is saved as the JSON object the report flow has always written under ``state.data["report"]``
(a key appears once its question is answered), so drafts saved before this class existed load
unchanged, and nothing but plain JSON reaches the state store. Sending the draft turns it into
the :class:`~conversations.ports.ReportDraft` that the case service takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from conversations.ports import ReportDraft
from conversations.state import ConversationState

__all__ = ["STATE_KEY", "ChoiceField", "ReportDraftState"]

STATE_KEY = "report"
"""Where in ``ConversationState.data`` the draft lives."""

ChoiceField = Literal["occurred", "affected", "danger", "confidentiality"]
"""The questions answered by one of a fixed set of codes."""

T = TypeVar("T")


@dataclass
class ReportDraftState:
    """One unfinished report. ``load`` it at the start of a change and ``save`` it before anything
    else in the turn loads it again: the state, not this object, is what lasts. What the worker
    wrote and the receipt code stay out of ``repr``, as in ``ReportDraft``."""

    key: str | None = None
    """Names the draft: its evidence files are stored under it and sending it is idempotent."""
    categories: list[str] = field(default_factory=list)
    workplaces_offered: list[tuple[int, str]] = field(default_factory=list)
    """The (id, name) pairs the workplace question listed."""
    workplace_answered: bool = False
    workplace_id: int | None = None
    workplace_text: str | None = field(default=None, repr=False)
    """A workplace the worker typed and that matched none of ``workplaces_offered``."""
    agency_answered: bool = False
    agency: str | None = field(default=None, repr=False)
    details: list[str] = field(default_factory=list, repr=False)
    files: int = 0
    """How many evidence files the case service stored under ``key``."""
    occurred: str | None = None
    affected: str | None = None
    danger: str | None = None
    confidentiality: str | None = None
    receipt: str | None = field(default=None, repr=False)
    """The receipt code, drawn one turn before sending and kept until the case exists."""
    contacts_shown: bool = False
    warned: bool = False
    """The worker was warned that sharing details that concern only them may identify them."""
    editing: bool = False
    """The worker came from the review to change one answer and goes back to it afterwards."""

    @classmethod
    def load(cls, state: ConversationState) -> ReportDraftState:
        """The draft in ``state``, or an empty one (without a key) if there is none."""
        raw: dict[str, Any] = state.data.get(STATE_KEY) or {}
        return cls(
            key=raw.get("key"),
            categories=list(raw.get("categories", [])),
            workplaces_offered=[(wid, name) for wid, name in raw.get("_workplaces", [])],
            workplace_answered="workplace_id" in raw,
            workplace_id=raw.get("workplace_id"),
            workplace_text=raw.get("workplace_text"),
            agency_answered="agency" in raw,
            agency=raw.get("agency"),
            details=list(raw.get("details", [])),
            files=int(raw.get("files", 0)),
            occurred=raw.get("occurred"),
            affected=raw.get("affected"),
            danger=raw.get("danger"),
            confidentiality=raw.get("confidentiality"),
            receipt=raw.get("receipt"),
            contacts_shown=bool(raw.get("contacts_shown")),
            warned=bool(raw.get("warned")),
            editing=bool(raw.get("editing")),
        )

    def save(self, state: ConversationState) -> None:
        raw: dict[str, Any] = {}
        if self.key is not None:
            raw["key"] = self.key
        raw["categories"] = list(self.categories)
        raw["details"] = list(self.details)
        raw["files"] = self.files
        if self.workplaces_offered:
            raw["_workplaces"] = [[wid, name] for wid, name in self.workplaces_offered]
        if self.workplace_answered:
            raw["workplace_id"] = self.workplace_id
            raw["workplace_text"] = self.workplace_text
        if self.agency_answered:
            raw["agency"] = self.agency
        answers = {
            "occurred": self.occurred,
            "affected": self.affected,
            "danger": self.danger,
            "confidentiality": self.confidentiality,
            "receipt": self.receipt,
        }
        raw.update((name, code) for name, code in answers.items() if code is not None)
        flags = {
            "contacts_shown": self.contacts_shown,
            "warned": self.warned,
            "editing": self.editing,
        }
        raw.update((name, True) for name, flag in flags.items() if flag)
        state.data[STATE_KEY] = raw

    @staticmethod
    def remove(state: ConversationState) -> None:
        state.data.pop(STATE_KEY, None)

    def answer_workplace(self, workplace_id: int | None, text: str | None) -> None:
        self.workplace_answered = True
        self.workplace_id, self.workplace_text = workplace_id, text

    def answer_agency(self, agency: str | None) -> None:
        self.agency_answered = True
        self.agency = agency

    def choose(self, question: ChoiceField, code: str) -> None:
        setattr(self, question, code)

    def has_answer(self, question: ChoiceField) -> bool:
        return getattr(self, question) is not None

    def answer(self, question: ChoiceField) -> str:
        """The code chosen for ``question``; a draft without one cannot be shown or sent."""
        code: str | None = getattr(self, question)
        return _given(code, question)

    def draft_key(self) -> str:
        return _given(self.key, "key")

    def finished(self, language: str) -> ReportDraft:
        """The report to send, in the worker's ``language``; every question must be answered."""
        return ReportDraft(
            key=self.draft_key(),
            language=language,
            categories=tuple(self.categories),
            workplace_id=self.workplace_id,
            workplace_text=self.workplace_text,
            agency=self.agency,
            details=tuple(self.details),
            occurred=self.answer("occurred"),
            affected=self.answer("affected"),
            danger_now=self.answer("danger") == "yes",
            confidentiality=self.answer("confidentiality"),
            receipt_code=_given(self.receipt, "receipt"),
        )


def _given(value: T | None, what: str) -> T:
    if value is None:
        # What reading the missing key of the draft's dict raised before this class: a turn
        # that gets here fails with the generic reply, as it did then.
        raise LookupError(f"the report draft has no {what}")
    return value

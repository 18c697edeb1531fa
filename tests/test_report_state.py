"""The report draft in the conversation state: what an older version saved still loads, and what
is saved loads back the same."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.categories import AFFECTED, CATEGORIES, CONFIDENTIALITY, OCCURRED
from conversations.ports import ReportDraft
from conversations.report_state import ReportDraftState
from conversations.state import ConversationState
from tests.test_conversation_core import Chat

KEY = "76fd1087-c2ea-40f4-9ffd-cf65ec4d02b7"

# Written by the report flow before the draft was a dataclass, when it was a dict in
# ``state.data["report"]``: a report at its review (the worker said it happened only to them,
# that someone is in danger, and to share anyway), then the same report being edited.
SAVED_AT_REVIEW = (
    '{"v": 1, "step": "report.review", "language": "en", "onboarded": true, "history": [], '
    '"data": {"report": {"key": "76fd1087-c2ea-40f4-9ffd-cf65ec4d02b7", '
    '"categories": ["wages", "documents"], "details": ["They keep my passport.", "my payslip"], '
    '"files": 1, "_workplaces": [[1, "Golden Fish Co."], [2, "Sunrise Garments"]], '
    '"workplace_id": 2, "workplace_text": null, "agency": "Best Jobs Agency", '
    '"occurred": "ongoing", "affected": "me", "danger": "yes", "contacts_shown": true, '
    '"confidentiality": "share", "warned": true, "receipt": "CODE-0000-AAAA-BBBB"}}}'
)
SAVED_WHILE_EDITING = SAVED_AT_REVIEW.replace(
    '"step": "report.review"', '"step": "report.danger"'
).replace('"warned": true,', '"warned": true, "editing": true,')
# A report whose workplace question was skipped and whose agency question is not answered yet.
SAVED_AT_AGENCY = (
    '{"v": 1, "step": "report.agency", "language": "en", "onboarded": true, '
    '"history": ["menu", "report.categories", "report.workplace"], '
    '"data": {"report": {"key": "ece35ece-0db6-4dd4-bacf-02bc0289c591", "categories": ["other"], '
    '"details": [], "files": 0, "_workplaces": [[1, "Golden Fish Co."], [2, "Sunrise Garments"]], '
    '"workplace_id": null, "workplace_text": null}}}'
)


def test_a_draft_saved_as_the_old_dict_loads_into_the_dataclass() -> None:
    draft = ReportDraftState.load(ConversationState.from_json(SAVED_WHILE_EDITING))

    assert draft == ReportDraftState(
        key=KEY,
        categories=["wages", "documents"],
        workplaces_offered=[(1, "Golden Fish Co."), (2, "Sunrise Garments")],
        workplace_answered=True,
        workplace_id=2,
        workplace_text=None,
        agency_answered=True,
        agency="Best Jobs Agency",
        details=["They keep my passport.", "my payslip"],
        files=1,
        occurred="ongoing",
        affected="me",
        danger="yes",
        confidentiality="share",
        receipt="CODE-0000-AAAA-BBBB",
        contacts_shown=True,
        warned=True,
        editing=True,
    )


def test_an_old_draft_is_saved_back_in_the_same_shape() -> None:
    for saved in (SAVED_AT_REVIEW, SAVED_WHILE_EDITING, SAVED_AT_AGENCY):
        state = ConversationState.from_json(saved)
        before = copy.deepcopy(state.data["report"])

        ReportDraftState.load(state).save(state)

        assert state.data["report"] == before


def test_a_skipped_question_is_answered_and_an_unasked_one_is_not() -> None:
    state = ConversationState.from_json(SAVED_AT_AGENCY)
    draft = ReportDraftState.load(state)

    assert draft.workplace_answered
    assert (draft.workplace_id, draft.workplace_text) == (None, None)
    assert not draft.agency_answered
    assert not draft.has_answer("occurred")

    draft.answer_agency(None)  # "No, or I don't know"
    draft.save(state)
    assert state.data["report"]["agency"] is None
    assert ReportDraftState.load(state).agency_answered


async def test_an_old_draft_at_its_review_is_sent_as_it_was_collected() -> None:
    chat = Chat()
    chat.state = ConversationState.from_json(SAVED_AT_REVIEW)

    turn = await chat.press("review:send")

    assert "Your report has been received." in turn.replies[0].text
    sent, _receipt = chat.cases.submitted[KEY]
    assert sent == ReportDraft(
        key=KEY,
        language="en",
        categories=("wages", "documents"),
        workplace_id=2,
        workplace_text=None,
        agency="Best Jobs Agency",
        details=("They keep my passport.", "my payslip"),
        occurred="ongoing",
        affected="me",
        danger_now=True,
        confidentiality="share",
        receipt_code="CODE-0000-AAAA-BBBB",
    )
    assert chat.state is not None
    assert "report" not in chat.state.data


def test_no_draft_loads_as_an_empty_one_and_loading_writes_nothing() -> None:
    state = ConversationState()

    assert ReportDraftState.load(state) == ReportDraftState()
    assert "report" not in state.data


def test_a_draft_without_its_key_or_an_answer_cannot_be_sent() -> None:
    unanswered = ReportDraftState(key=KEY, categories=["wages"], receipt="CODE")
    for draft in (ReportDraftState(categories=["wages"]), unanswered):
        with pytest.raises(LookupError):
            draft.finished("en")


TEXT = st.text(max_size=20)
MAYBE_TEXT = st.none() | TEXT


@st.composite
def drafts(draw: st.DrawFn) -> ReportDraftState:
    """Any draft the flow can build: an unanswered question has no value."""
    workplace_answered = draw(st.booleans())
    agency_answered = draw(st.booleans())
    return ReportDraftState(
        key=draw(st.none() | st.uuids().map(str)),
        categories=draw(st.lists(st.sampled_from(sorted(CATEGORIES)), unique=True)),
        workplaces_offered=draw(st.lists(st.tuples(st.integers(1, 10**6), TEXT), max_size=3)),
        workplace_answered=workplace_answered,
        workplace_id=draw(st.none() | st.integers(1, 10**6)) if workplace_answered else None,
        workplace_text=draw(MAYBE_TEXT) if workplace_answered else None,
        agency_answered=agency_answered,
        agency=draw(MAYBE_TEXT) if agency_answered else None,
        details=draw(st.lists(TEXT, max_size=3)),
        files=draw(st.integers(0, 50)),
        occurred=draw(st.none() | st.sampled_from(sorted(OCCURRED))),
        affected=draw(st.none() | st.sampled_from(sorted(AFFECTED))),
        danger=draw(st.none() | st.sampled_from(["yes", "no"])),
        confidentiality=draw(st.none() | st.sampled_from(sorted(CONFIDENTIALITY))),
        receipt=draw(st.none() | st.just("CODE-0000-AAAA-BBBB")),
        contacts_shown=draw(st.booleans()),
        warned=draw(st.booleans()),
        editing=draw(st.booleans()),
    )


@given(drafts())
def test_a_saved_draft_loads_back_the_same_through_json(draft: ReportDraftState) -> None:
    state = ConversationState()
    draft.save(state)

    stored = ConversationState.from_json(state.to_json())

    assert ReportDraftState.load(stored) == draft


def test_what_the_worker_wrote_stays_out_of_the_repr() -> None:
    draft = ReportDraftState.load(ConversationState.from_json(SAVED_AT_REVIEW))

    for secret in ("passport", "payslip", "Best Jobs Agency", "CODE-0000"):
        assert secret not in repr(draft)

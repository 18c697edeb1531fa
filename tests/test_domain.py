"""The domain's words: button payloads round-trip and fit Telegram's 64 bytes, statuses agree with
the schema, references are read back the way people type them, and the ground floor imports
nothing but the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.categories import AFFECTED, CATEGORIES, CONFIDENTIALITY, OCCURRED
from domain import payloads
from domain.answers import VALIDATION_ANSWERS, YES_NO, Answer
from domain.categories import Affected, Category, Confidentiality, Occurred
from domain.errors import CaseNotFound, NotFound, Refusal
from domain.payloads import (
    FollowupButton,
    LessonOpen,
    LessonPage,
    LessonRating,
    LessonReport,
    LessonTopics,
    RetaliationButton,
    SiteButton,
    ValidationButton,
)
from domain.references import ALPHABET, new_receipt_code, new_reference, normalize_reference
from domain.statuses import OPEN, TERMINAL, UNRESOLVED, CaseStatus
from storage.models import CASE_STATUSES

DOMAIN = Path(__file__).resolve().parent.parent / "domain"

references = st.text(
    alphabet="ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz0123456789-",
    min_size=1,
    max_size=payloads.MAX_REFERENCE_LENGTH,
)
tokens = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
    min_size=1,
    max_size=payloads.MAX_TOKEN_LENGTH,
)
topics = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=payloads.MAX_TOPIC_LENGTH
)
pages = st.integers(min_value=1, max_value=payloads.MAX_PAGE)
validation_answers = st.sampled_from(VALIDATION_ANSWERS)
yes_no = st.sampled_from(YES_NO)

#: Every button this module builds, with what reading it back must give.
built = st.one_of(
    st.builds(lambda r, a: (payloads.validation(r, a), ValidationButton(r, a)),
              references, validation_answers),
    st.builds(lambda r: (payloads.followup(r), FollowupButton(r)), references),
    st.builds(lambda r, a: (payloads.retaliation(r, a), RetaliationButton(r, a)),
              references, yes_no),
    st.builds(lambda t, a: (payloads.site(t, a), SiteButton(t, a)), tokens, validation_answers),
    st.just((payloads.LESSON_TOPICS, LessonTopics())),
    st.builds(lambda t: (payloads.lesson(t), LessonOpen(t)), topics),
    st.builds(lambda t, p: (payloads.lesson_page(t, p), LessonPage(t, p)), topics, pages),
    st.builds(lambda t, h: (payloads.lesson_rating(t, h), LessonRating(t, h)),
              topics, st.booleans()),
    st.builds(lambda t: (payloads.lesson_report(t), LessonReport(t)), topics),
)  # fmt: skip


@given(built)
def test_every_button_payload_reads_back_as_built_and_fits_in_64_bytes(
    case: tuple[str, object],
) -> None:
    payload, meaning = case
    assert len(payload.encode()) <= payloads.MAX_BYTES
    assert payloads.parse(payload) == meaning
    about_a_lesson = isinstance(
        meaning, LessonTopics | LessonOpen | LessonPage | LessonRating | LessonReport
    )
    assert payloads.is_lesson(payload) == about_a_lesson
    assert payloads.is_casework(payload) == (not about_a_lesson)


@given(st.text(max_size=80))
def test_anything_else_reads_as_nothing_or_as_a_payload_of_ours(text: str) -> None:
    button = payloads.parse(text)
    if button is not None:
        assert len(text.encode()) <= payloads.MAX_BYTES


def test_the_payloads_in_workers_chats_keep_their_form() -> None:
    """Buttons already sent must keep working: these are the forms messages carry today."""
    assert payloads.validation("K7M3-9Q2X", Answer.UNSURE) == "val:K7M3-9Q2X:unsure"
    assert payloads.followup("K7M3-9Q2X") == "ans:K7M3-9Q2X"
    assert payloads.retaliation("K7M3-9Q2X", Answer.YES) == "ret:K7M3-9Q2X:yes"
    assert payloads.site("tok_en-1", Answer.PARTLY) == "site:tok_en-1:partly"
    assert payloads.LESSON_TOPICS == "learn:topics"
    assert payloads.lesson("pay") == "learn:open:pay"
    assert payloads.lesson_page("pay", 2) == "learn:page:pay:2"
    assert payloads.lesson_rating("pay", helpful=False) == "learn:rate:pay:no"
    assert payloads.lesson_report("pay") == "learn:report:pay"


@pytest.mark.parametrize(
    "payload",
    [
        "val:K7M3-9Q2X:maybe",
        "val:K7M3-9Q2X",
        "val::yes",
        "ans:",
        "ans:K7M3:9Q2X",
        "ret:K7M3-9Q2X:partly",
        "site:has space:yes",
        "learn:page:pay:0",
        "learn:page:pay:two",
        "learn:rate:pay:unsure",
        "learn:open:Pay",
        "learn:open:" + "x" * 41,
        "learn:",
        "menu:report",
        "",
    ],
)
def test_malformed_payloads_read_as_nothing(payload: str) -> None:
    assert payloads.parse(payload) is None


def test_builders_refuse_what_no_button_may_carry() -> None:
    with pytest.raises(ValueError, match="reference"):
        payloads.validation("K7M3:9Q2X", Answer.YES)
    with pytest.raises(ValueError, match="answer"):
        payloads.retaliation("K7M3-9Q2X", Answer.PARTLY)
    with pytest.raises(ValueError, match="topic"):
        payloads.lesson("x" * (payloads.MAX_TOPIC_LENGTH + 1))
    with pytest.raises(ValueError, match="page"):
        payloads.lesson_page("pay", payloads.MAX_PAGE + 1)


def test_case_statuses_are_the_schema_and_every_one_is_open_terminal_or_awaiting() -> None:
    assert tuple(CASE_STATUSES) == tuple(status.value for status in CaseStatus)
    assert OPEN.isdisjoint(TERMINAL)
    assert set(CaseStatus) == OPEN | TERMINAL | {CaseStatus.AWAITING_VALIDATION}
    assert set(CaseStatus) - TERMINAL == UNRESOLVED


def test_every_code_has_a_label() -> None:
    for codes, labels in (
        (Category, CATEGORIES),
        (Occurred, OCCURRED),
        (Affected, AFFECTED),
        (Confidentiality, CONFIDENTIALITY),
    ):
        assert set(codes) == set(labels)


@given(st.text(alphabet=ALPHABET, min_size=8, max_size=8))
def test_a_reference_is_read_back_however_it_is_typed(symbols: str) -> None:
    stored = f"{symbols[:4]}-{symbols[4:]}"
    typed = f" {symbols[:4].lower()} {symbols[4:].replace('0', 'o').replace('1', 'l')} "
    assert normalize_reference(typed) == stored
    assert normalize_reference(stored) == stored


def test_new_references_and_codes_have_their_format() -> None:
    assert normalize_reference(new_reference()) is not None
    assert len(new_receipt_code()) == 19  # four groups of four, three dashes
    assert normalize_reference("K7M3-9Q2") is None
    assert normalize_reference("K7M3-9Q2U") is None  # U is not in the alphabet


def test_a_refusal_names_its_field_and_a_not_found_names_what_is_missing() -> None:
    refusal = Refusal("text", "must not be empty")
    assert (refusal.field, refusal.reason, str(refusal)) == (
        "text",
        "must not be empty",
        "text: must not be empty",
    )
    assert str(Refusal(None, "the case is closed")) == "the case is closed"
    missing = CaseNotFound("k7m3 9q2x")
    assert isinstance(missing, NotFound)
    assert missing.field == "reference"
    assert str(missing) == "no case with reference 'k7m3 9q2x'"


def test_the_domain_imports_nothing_but_the_standard_library() -> None:
    for path in sorted(DOMAIN.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "domain" or top in sys.stdlib_module_names, (path.name, name)

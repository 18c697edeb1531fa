"""Button payloads that mean the same at every step of a conversation, built and read here only.

Messages sent outside a turn (staff follow-ups, validation prompts, check-ins, site questions,
broadcasts) carry buttons a worker may press days later, wherever the conversation is, so the
engine routes these payloads before any step sees them::

    val:REFERENCE:ANSWER     the worker's answer about a fix (yes, partly, no, unsure)
    ans:REFERENCE            answer a staff follow-up
    ret:REFERENCE:yes|no     the retaliation check-in after a closed case
    site:TOKEN:ANSWER        another worker's answer about their workplace (the token names no case)
    learn:topics             the list of lessons
    learn:open:TOPIC         a lesson from its first page
    learn:page:TOPIC:PAGE    a page of a lesson, from 1
    learn:rate:TOPIC:yes|no  "Was this helpful?"
    learn:report:TOPIC       "Report a problem about this"

Buttons already in workers' chats keep these forms, so they never change. Every part has a size
limit that keeps a payload within Telegram's 64 bytes of callback data, whatever the values. The
parser checks only the form: whether a reference, token or topic exists is for the services (a
reference is normalised where the case is looked up, never here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.answers import VALIDATION_ANSWERS, YES_NO, Answer

#: Telegram's limit on callback data.
MAX_BYTES = 64
#: A case reference as stored is 9 characters (``K7M3-9Q2X``); the column holds 16.
MAX_REFERENCE_LENGTH = 16
#: A site question's token (``secrets.token_urlsafe(12)`` is 16 characters); the column holds 24.
MAX_TOKEN_LENGTH = 24
#: A lesson topic id, as the feedback counters' column holds it.
MAX_TOPIC_LENGTH = 40
MAX_PAGE = 999

_REFERENCE = re.compile(rf"[A-Za-z0-9-]{{1,{MAX_REFERENCE_LENGTH}}}")
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_TOKEN_LENGTH}}}")
_TOPIC = re.compile(rf"[a-z0-9_]{{1,{MAX_TOPIC_LENGTH}}}")
_PAGE = re.compile(r"[1-9][0-9]{0,2}")


class Kind(StrEnum):
    """The first part of a payload: which flow it belongs to."""

    VALIDATION = "val"
    FOLLOWUP = "ans"
    RETALIATION = "ret"
    SITE = "site"
    LEARN = "learn"


class _LessonAction(StrEnum):
    TOPICS = "topics"
    OPEN = "open"
    PAGE = "page"
    RATE = "rate"
    REPORT = "report"


_CASEWORK_PREFIXES = tuple(
    f"{kind}:" for kind in (Kind.VALIDATION, Kind.FOLLOWUP, Kind.RETALIATION, Kind.SITE)
)
_LESSON_PREFIX = f"{Kind.LEARN}:"


@dataclass(frozen=True)
class ValidationButton:
    reference: str
    answer: Answer


@dataclass(frozen=True)
class FollowupButton:
    reference: str


@dataclass(frozen=True)
class RetaliationButton:
    reference: str
    answer: Answer  # yes or no


@dataclass(frozen=True)
class SiteButton:
    token: str
    answer: Answer


@dataclass(frozen=True)
class LessonTopics:
    pass


@dataclass(frozen=True)
class LessonOpen:
    topic: str


@dataclass(frozen=True)
class LessonPage:
    topic: str
    page: int  # from 1


@dataclass(frozen=True)
class LessonRating:
    topic: str
    helpful: bool


@dataclass(frozen=True)
class LessonReport:
    topic: str


CaseworkButton = ValidationButton | FollowupButton | RetaliationButton | SiteButton
LessonButton = LessonTopics | LessonOpen | LessonPage | LessonRating | LessonReport
Button = CaseworkButton | LessonButton


# -- building ----------------------------------------------------------------------------------


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"not a valid {what} for a button: {value!r}")
    return value


def _joined(*parts: str) -> str:
    payload = ":".join(parts)
    if len(payload.encode()) > MAX_BYTES:  # the part limits make this impossible; say so loudly
        raise ValueError(f"button payload over {MAX_BYTES} bytes: {payload!r}")
    return payload


def _answer(answer: Answer | str, allowed: tuple[Answer, ...]) -> Answer:
    if answer not in allowed:
        raise ValueError(f"not an answer this button can carry: {answer!r}")
    return Answer(answer)


def _page(page: int) -> str:
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"lesson page out of range: {page}")
    return str(page)


def validation(reference: str, answer: Answer) -> str:
    return _joined(
        Kind.VALIDATION,
        _checked(_REFERENCE, reference, "reference"),
        _answer(answer, VALIDATION_ANSWERS),
    )


def followup(reference: str) -> str:
    return _joined(Kind.FOLLOWUP, _checked(_REFERENCE, reference, "reference"))


def retaliation(reference: str, answer: Answer) -> str:
    return _joined(
        Kind.RETALIATION, _checked(_REFERENCE, reference, "reference"), _answer(answer, YES_NO)
    )


def site(token: str, answer: Answer) -> str:
    return _joined(Kind.SITE, _checked(_TOKEN, token, "token"), _answer(answer, VALIDATION_ANSWERS))


LESSON_TOPICS = _joined(Kind.LEARN, _LessonAction.TOPICS)


def lesson(topic: str) -> str:
    """Opens the lesson at its first page, from any step."""
    return _joined(Kind.LEARN, _LessonAction.OPEN, _checked(_TOPIC, topic, "topic"))


def lesson_page(topic: str, page: int) -> str:
    return _joined(Kind.LEARN, _LessonAction.PAGE, _checked(_TOPIC, topic, "topic"), _page(page))


def lesson_rating(topic: str, helpful: bool) -> str:
    answer = Answer.YES if helpful else Answer.NO
    return _joined(Kind.LEARN, _LessonAction.RATE, _checked(_TOPIC, topic, "topic"), answer)


def lesson_report(topic: str) -> str:
    return _joined(Kind.LEARN, _LessonAction.REPORT, _checked(_TOPIC, topic, "topic"))


# -- reading -----------------------------------------------------------------------------------


def is_casework(payload: str) -> bool:
    """Whether a payload claims to be a casework button (well-formed or not)."""
    return payload.startswith(_CASEWORK_PREFIXES)


def is_lesson(payload: str) -> bool:
    """Whether a payload claims to be a lesson button (well-formed or not)."""
    return payload.startswith(_LESSON_PREFIX)


def _fits(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def parse(payload: str) -> Button | None:
    """What a payload of this module says, or None if it is not one, or not well-formed."""
    kind, _, rest = payload.partition(":")
    parts = rest.split(":")
    match kind, parts:
        case Kind.VALIDATION, [reference, answer] if (
            _fits(_REFERENCE, reference) and answer in VALIDATION_ANSWERS
        ):
            return ValidationButton(reference, Answer(answer))
        case Kind.FOLLOWUP, [reference] if _fits(_REFERENCE, reference):
            return FollowupButton(reference)
        case Kind.RETALIATION, [reference, answer] if (
            _fits(_REFERENCE, reference) and answer in YES_NO
        ):
            return RetaliationButton(reference, Answer(answer))
        case Kind.SITE, [token, answer] if _fits(_TOKEN, token) and answer in VALIDATION_ANSWERS:
            return SiteButton(token, Answer(answer))
        case Kind.LEARN, [_LessonAction.TOPICS]:
            return LessonTopics()
        case Kind.LEARN, [_LessonAction.OPEN, topic] if _fits(_TOPIC, topic):
            return LessonOpen(topic)
        case Kind.LEARN, [_LessonAction.PAGE, topic, page] if _fits(_TOPIC, topic) and _fits(
            _PAGE, page
        ):
            return LessonPage(topic, int(page))
        case Kind.LEARN, [_LessonAction.RATE, topic, answer] if (
            _fits(_TOPIC, topic) and answer in YES_NO
        ):
            return LessonRating(topic, helpful=answer == Answer.YES)
        case Kind.LEARN, [_LessonAction.REPORT, topic] if _fits(_TOPIC, topic):
            return LessonReport(topic)
    return None

"""Rights education lessons: files per language, parsed into pages of plain text with bold parts.

A lesson is ``locales/<lang>/education/<topic>.md`` in a deliberately tiny format, so that
translators cannot break it and no channel ever interprets markup:

- line 1 is ``# Title``; then paragraphs separated by blank lines;
- ``- `` starts a bullet line; ``**bold**`` pairs mark bold within a line;
- nothing else: no links, HTML, other headings, underscores, backticks or ``{placeholders}``.

``check_lesson`` is the strict checker the content test runs on every shipped file; the loader
itself is lenient (it never refuses a lesson for a style problem). Pages hold whole paragraphs, at
most ``PAGE_CHARS`` characters each; page 1 starts with the title. This module is pure: the
conversation core imports it, so it imports no messenger, database or service code.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from locales import LOCALES_DIR, N_, SOURCE_LANGUAGE

log = logging.getLogger(__name__)

#: The most characters one page of a lesson may have (title included on page 1).
PAGE_CHARS = 900
MAX_TITLE_CHARS = 100
BULLET = "• "
FOLDER = "education"

#: Where ``<lang>/education/<topic>.md`` live; tests point it at a temporary folder.
CONTENT_ROOT: Path = LOCALES_DIR

#: Topic id -> its short, translatable name on the topic buttons. Order is the menu order.
TOPICS: dict[str, str] = {
    "pay": N_("Pay and payslips"),
    "hours": N_("Working hours"),
    "fees": N_("Recruitment fees"),
    "documents": N_("Your documents"),
    "safety": N_("Health and safety"),
    "harassment": N_("Harassment"),
    "union": N_("Unions"),
    "discrimination": N_("Discrimination"),
    "forced_labour": N_("Forced labour"),
    "child_labour": N_("Child labour"),
    "complaints": N_("How to complain"),
    "privacy": N_("Your privacy"),
    "contacts": N_("Help and contacts"),
}

#: Topic id -> the report category "Report a problem about this" preselects (None: none).
TOPIC_CATEGORIES: dict[str, str | None] = {
    "pay": "wages",
    "hours": "hours",
    "fees": "fees",
    "documents": "documents",
    "safety": "safety",
    "harassment": "violence",
    "union": "union",
    "discrimination": "discrimination",
    "forced_labour": "forced",
    "child_labour": "child",
    "complaints": None,
    "privacy": None,
    "contacts": None,
}

Span = tuple[int, int]  # (start, length) in Python string indices


@dataclass(frozen=True)
class StyledText:
    """Plain text and the parts of it shown bold. Never markup: nothing in ``text`` is parsed."""

    text: str
    bold: tuple[Span, ...] = ()

    def __add__(self, other: StyledText) -> StyledText:
        shift = len(self.text)
        moved = tuple((start + shift, length) for start, length in other.bold)
        return StyledText(self.text + other.text, self.bold + moved)

    def cut(self, start: int, end: int) -> StyledText:
        """``text[start:end]`` with the bold spans clipped to it."""
        spans = []
        for span_start, length in self.bold:
            low, high = max(span_start, start), min(span_start + length, end)
            if low < high:
                spans.append((low - start, high - low))
        return StyledText(self.text[start:end], tuple(spans))

    def strip(self) -> StyledText:
        start = len(self.text) - len(self.text.lstrip())
        return self.cut(start, max(start, len(self.text.rstrip())))


def join(parts: Iterable[StyledText], separator: str = "\n\n") -> StyledText:
    joined = StyledText("")
    for index, part in enumerate(parts):
        joined = (joined + StyledText(separator) + part) if index else part
    return joined


@dataclass(frozen=True)
class Lesson:
    topic: str
    language: str  # the language of the file read (English when the worker's is missing)
    title: str
    blocks: tuple[str, ...]  # paragraphs, in the source format
    pages: tuple[StyledText, ...]


class LessonError(ValueError):
    """A lesson file that cannot be read as a lesson at all."""


# -- parsing and rendering ---------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_lesson(text: str) -> tuple[str, tuple[str, ...]]:
    """The title and the paragraphs (each one or more lines, in the source format)."""
    lines = [line.rstrip() for line in _lines(text)]
    if not lines[0].startswith("# ") or not lines[0][2:].strip():
        raise LessonError("line 1 must be the title, written '# Title'")
    title = lines[0][2:].strip()
    blocks: list[str] = []
    current: list[str] = []
    for line in [*lines[1:], ""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if not blocks:
        raise LessonError("the lesson has no text after its title")
    return title, tuple(blocks)


def render_line(line: str) -> StyledText:
    """One source line as shown: ``- `` becomes a bullet, ``**`` pairs become bold spans."""
    if line.startswith("- "):
        line = BULLET + line[2:].strip()
    parts = line.split("**")
    if len(parts) % 2 == 0:  # an unpaired ** (the checker reports it): show the line as it is
        return StyledText(line)
    text = ""
    spans: list[Span] = []
    for index, part in enumerate(parts):
        if index % 2 and part:
            spans.append((len(text), len(part)))
        text += part
    return StyledText(text, tuple(spans))


def render_block(block: str) -> StyledText:
    return join((render_line(line) for line in block.split("\n")), "\n")


def render_title(title: str) -> StyledText:
    return StyledText(title, ((0, len(title)),) if title else ())


# A place to end a page inside an overlong paragraph: after a sentence end (Latin, Devanagari and
# Bengali danda, Burmese, Khmer, CJK) followed by a space, or at a line break.
_SENTENCE_END = re.compile(r"[.!?।॥။។。？！](?=\s)|\n")


def _cut_point(text: str, limit: int) -> int:
    """Where to end a piece of ``text`` of at most ``limit`` characters."""
    if len(text) <= limit:
        return len(text)
    ends = [match.end() for match in _SENTENCE_END.finditer(text, 0, limit)]
    if ends and ends[-1] > limit // 2:
        return ends[-1]
    space = text.rfind(" ", 0, limit + 1)
    if space > limit // 2:
        return space
    cut = limit  # no break at all (Thai, Burmese and Khmer need none between words)
    while cut > 1 and unicodedata.category(text[cut])[0] == "M":
        cut -= 1  # never separate a vowel sign or tone mark from its letter
    return cut


def _split(styled: StyledText, first_room: int, limit: int) -> list[StyledText]:
    """An overlong paragraph in pieces: the first fits ``first_room``, the others ``limit``."""
    pieces: list[StyledText] = []
    rest, room = styled, first_room
    while len(rest.text) > room:
        cut = max(1, _cut_point(rest.text, room))
        pieces.append(rest.cut(0, cut).strip())
        rest = rest.cut(cut, len(rest.text)).strip()
        room = limit
    pieces.append(rest)
    return [piece for piece in pieces if piece.text]


def paginate(title: str, blocks: Sequence[str], limit: int = PAGE_CHARS) -> tuple[StyledText, ...]:
    """Pack whole paragraphs into pages of at most ``limit`` characters; page 1 starts with the
    title. A paragraph is split (at a sentence end, else a space) only when it cannot fit a page
    of its own, or when it follows the title and they do not fit together."""
    pages: list[StyledText] = []
    current: list[StyledText] = [render_title(title)] if title else []
    only_title = bool(title)

    def size(parts: list[StyledText]) -> int:
        return sum(len(part.text) for part in parts) + 2 * max(0, len(parts) - 1)

    for block in blocks:
        styled = render_block(block)
        if not styled.text:
            continue
        if size([*current, styled]) <= limit:
            current.append(styled)
            only_title = False
            continue
        room = limit - size(current) - 2 if current else limit
        if (not only_title and len(styled.text) <= limit) or room < limit // 4:
            if current:
                pages.append(join(current))
            current, room = [], limit
            if len(styled.text) <= limit:
                current.append(styled)
                only_title = False
                continue
        pieces = _split(styled, room, limit)
        current.append(pieces[0])
        for piece in pieces[1:]:
            pages.append(join(current))
            current = [piece]
        only_title = False
    if current:
        pages.append(join(current))
    return tuple(pages)


# -- the strict checker ------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")
_WEB_ADDRESS = re.compile(r"://|\bwww\.|\bmailto:", re.IGNORECASE)
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z!][^>]*>")
_HTML_ENTITY = re.compile(r"&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
_RULE = re.compile(r"\s*([-*_=])(\s*\1){2,}\s*")
_PRINTF = re.compile(r"%(\(\w+\))?[sd]")


def _line_problems(line: str) -> list[str]:
    problems = []
    if line[:1].isspace():
        problems.append("starts with a space or tab (no indented or nested lines)")
    stripped = line.strip()
    if stripped.startswith("#"):
        problems.append("a heading: only line 1 may be one")
    if stripped.startswith(("* ", "+ ")):
        problems.append("bullet lines start with '- '")
    if stripped.startswith(">"):
        problems.append("a quote ('>') is not allowed")
    if _RULE.fullmatch(line):
        problems.append("a horizontal rule is not allowed")
    elif stripped == "-" or (stripped.startswith("- ") and not stripped[2:].strip()):
        problems.append("an empty bullet")
    if _LINK.search(line):
        problems.append("a link is not allowed")
    elif _WEB_ADDRESS.search(line):
        problems.append("a web address is not allowed")
    if _HTML_TAG.search(line):
        problems.append("HTML is not allowed")
    if _HTML_ENTITY.search(line):
        problems.append("an HTML entity (&...;) is not allowed")
    if "`" in line:
        problems.append("backticks are not allowed")
    if "_" in line:
        problems.append("underscores are not allowed (they are markup on some messengers)")
    if "{" in line or "}" in line or _PRINTF.search(line):
        problems.append("braces or placeholders are not allowed")
    if "~~" in line or "||" in line:
        problems.append("only **bold** is allowed as markup")
    if line.count("**") % 2:
        problems.append("unpaired ** (bold must open and close on the same line)")
    elif "****" in line:
        problems.append("empty bold (****)")
    elif "*" in line.replace("**", ""):
        problems.append("a single * (only **bold** is allowed)")
    if any(unicodedata.category(char) == "Cc" for char in line):
        problems.append("a tab or control character")
    if "\ufeff" in line:
        problems.append("a byte order mark inside the text")
    return problems


def check_lesson(text: str, limit: int = PAGE_CHARS) -> list[str]:
    """Every way ``text`` breaks the lesson format, one line each; empty when it is fine."""
    if not text.strip():
        return ["the lesson is empty"]
    lines = _lines(text)
    problems = []
    first = lines[0]
    if not first.startswith("# ") or not first[2:].strip():
        problems.append("line 1: must be the title, written '# Title'")
    else:
        title = first[2:].strip()
        if "*" in title:
            problems.append("line 1: no bold in the title (it is shown bold anyway)")
        if len(title) > MAX_TITLE_CHARS:
            problems.append(f"line 1: the title is longer than {MAX_TITLE_CHARS} characters")
        problems += [f"line 1: {p}" for p in _line_problems(title) if "single *" not in p]
    if len(lines) > 1 and lines[1].strip():
        problems.append("line 2: must be blank (a blank line after the title)")
    for number, line in enumerate(lines[1:], start=2):
        problems += [f"line {number}: {problem}" for problem in _line_problems(line)]
    try:
        title, blocks = parse_lesson(text)
    except LessonError as error:
        return [*problems, str(error)]
    rendered = [render_block(block) for block in blocks]
    for number, styled in enumerate(rendered, start=1):
        if len(styled.text) > limit:
            problems.append(
                f"paragraph {number} has {len(styled.text)} characters, more than a page "
                f"({limit}): split it"
            )
    if len(title) + 2 + len(rendered[0].text) > limit >= len(rendered[0].text):
        problems.append("the title and the first paragraph do not fit on one page together")
    return problems


# -- loading -----------------------------------------------------------------------------------


def topics() -> list[str]:
    return list(TOPICS)


def lesson_path(topic: str, language: str, root: Path | None = None) -> Path:
    return (root or CONTENT_ROOT) / language / FOLDER / f"{topic}.md"


@lru_cache(maxsize=256)
def _read(path: Path, modified_ns: int, topic: str, language: str) -> Lesson:
    title, blocks = parse_lesson(path.read_text(encoding="utf-8"))
    return Lesson(topic, language, title, blocks, paginate(title, blocks))


def load_lesson(topic: str, language: str) -> Lesson | None:
    """The lesson in ``language``, else in English; None if neither can be read."""
    if topic not in TOPICS:
        return None
    for code in dict.fromkeys((language, SOURCE_LANGUAGE)):
        path = lesson_path(topic, code)
        try:
            return _read(path, path.stat().st_mtime_ns, topic, code)
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, LessonError) as error:
            log.warning("lesson %s/%s unreadable (%s)", code, topic, type(error).__name__)
    return None


def lesson_preview(topic: str, language: str) -> tuple[str, str]:
    """A lesson's title and its first page (which starts with the title), for broadcasts.

    Raises ``LookupError`` when the lesson exists in neither ``language`` nor English."""
    lesson = load_lesson(topic, language)
    if lesson is None:
        raise LookupError(f"no lesson {topic!r}")
    return lesson.title, lesson.pages[0].text


def check_shipped(language: str, root: Path | None = None) -> list[str]:
    """Every problem of ``language``'s lessons as shipped: missing, malformed, or (for a language
    other than English) with the English title left in. Empty when all is well."""
    problems = []
    for topic in TOPICS:
        path = lesson_path(topic, language, root)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{language}/{topic}: cannot read {path.name} ({type(error).__name__})")
            continue
        found = check_lesson(text)
        problems += [f"{language}/{topic}: {problem}" for problem in found]
        if language != SOURCE_LANGUAGE and not found:
            english = lesson_path(topic, SOURCE_LANGUAGE, root)
            if (
                english.is_file()
                and parse_lesson(text)[0] == parse_lesson(english.read_text(encoding="utf-8"))[0]
            ):
                problems.append(f"{language}/{topic}: the title is still the English one")
    return problems

"""The content check of the rights-education lessons, and the lesson format itself.

For every shipped language and every topic: the lesson file exists, passes the strict format
check, is translated (its title is not the English one), and every page fits a page and a
Telegram message with its bold parts inside the text. Until a language's lessons are translated,
its tests here fail on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from bot.channels.telegram.rendering import MAX_MESSAGE_LENGTH, bold_entities, split_text
from conversations.learn import PageStep
from conversations.messages import utf16_length
from conversations.ports import Services, WorkerRef
from conversations.state import ConversationState
from conversations.turn import TurnContext
from locales import LANGUAGES, LOCALES_DIR, SOURCE_LANGUAGE
from locales.education import (
    BULLET,
    PAGE_CHARS,
    TOPIC_CATEGORIES,
    TOPICS,
    StyledText,
    check_lesson,
    lesson_path,
    paginate,
    parse_lesson,
    render_block,
)
from locales.zawgyi import to_unicode_burmese

CASES = [(language, topic) for language in LANGUAGES for topic in TOPICS]
CASE_IDS = [f"lesson-{language}-{topic}" for language, topic in CASES]


def shipped(language: str, topic: str) -> str:
    path = lesson_path(topic, language, LOCALES_DIR)
    assert path.is_file(), f"{path.relative_to(LOCALES_DIR.parent)} is missing"
    return path.read_text(encoding="utf-8")


def sent_pages(language: str, topic: str, count: int) -> list[StyledText]:
    """Each page as the lesson step sends it: with page number, question and contacts."""
    sent = []
    for index in range(count):
        data = {"learn": {"topic": topic, "page": index, "contacts": "Hotline 1300. " * 40}}
        state = ConversationState("learn.page", language, onboarded=True, data=data)
        ctx = TurnContext(WorkerRef("p" * 64, "test", "1"), state, cast(Services, None))
        reply = PageStep().prompt(ctx)
        sent.append(StyledText(reply.text, reply.bold))
    return sent


def assert_fits_telegram(page: StyledText) -> None:
    assert utf16_length(page.text) <= MAX_MESSAGE_LENGTH
    assert split_text(page.text) == [page.text], "a page is sent as one message"
    units = utf16_length(page.text)
    for start, length in page.bold:
        assert start >= 0
        assert length > 0
        assert start + length <= len(page.text)
        assert page.text[start : start + length].strip(), "bold on nothing but spaces"
    entities = bold_entities(page.text, page.bold) or []
    assert len(entities) == len(page.bold), "every bold part becomes an entity"
    for entity in entities:
        assert entity.offset + entity.length <= units


@pytest.mark.parametrize(("language", "topic"), CASES, ids=CASE_IDS)
def test_lesson_exists_passes_the_check_and_fits_every_page(language: str, topic: str) -> None:
    text = shipped(language, topic)
    assert check_lesson(text) == []
    title, blocks = parse_lesson(text)
    pages = paginate(title, blocks)
    assert pages[0].text.startswith(title + "\n\n")
    assert pages[0].bold[0] == (0, len(title)), "the title is bold"
    for page in pages:
        assert len(page.text) <= PAGE_CHARS
        assert_fits_telegram(page)
    for page, sent in zip(pages, sent_pages(language, topic, len(pages)), strict=True):
        assert sent.text.startswith(page.text)
        assert sent.bold == page.bold
        assert_fits_telegram(sent)
    shown = "\n".join(page.text for page in pages)
    for forbidden in ("{", "}", "**", "<", "](", "`", "_"):
        assert forbidden not in shown, forbidden


@pytest.mark.parametrize(
    ("language", "topic"),
    [case for case in CASES if case[0] != SOURCE_LANGUAGE],
    ids=[case_id for case, case_id in zip(CASES, CASE_IDS, strict=True) if case[0] != "en"],
)
def test_lesson_is_translated(language: str, topic: str) -> None:
    english_title, _ = parse_lesson(shipped(SOURCE_LANGUAGE, topic))
    title, blocks = parse_lesson(shipped(language, topic))
    assert title != english_title, "the title is still the English one"
    english_blocks = set(parse_lesson(shipped(SOURCE_LANGUAGE, topic))[1])
    untranslated = [block for block in blocks if block in english_blocks]
    assert untranslated == [], "paragraphs still in English"
    if language == "my":
        text = shipped(language, topic)
        assert to_unicode_burmese(text) == text, "Burmese lessons are Unicode, never Zawgyi"


def test_every_topic_has_a_label_and_a_category_entry() -> None:
    assert list(TOPICS) == [
        "pay",
        "hours",
        "fees",
        "documents",
        "safety",
        "harassment",
        "union",
        "discrimination",
        "forced_labour",
        "child_labour",
        "complaints",
        "privacy",
        "contacts",
    ]
    assert set(TOPIC_CATEGORIES) == set(TOPICS)
    assert all(len(label) <= 24 for label in TOPICS.values()), "labels are short buttons"


# -- the checker can fail -------------------------------------------------------------------

GOOD = """# Your pay

You must be paid **on time**, every month.

Your payslip shows:
- your hours
- **every** deduction
"""


def test_a_well_formed_lesson_passes() -> None:
    assert check_lesson(GOOD) == []


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (GOOD.replace("**on time**", "**on time"), "unpaired **"),
        (GOOD.replace("every month.", "see [this](https://example.org)."), "a link"),
        (GOOD.replace("every month.", "see https://example.org today."), "web address"),
        (GOOD.replace("every month.", "every <b>month</b>."), "HTML"),
        (GOOD.replace("every month.", "every month &amp; year."), "HTML entity"),
        (GOOD + "\n## More\n\nText.\n", "a heading"),
        (GOOD + "\n" + "A long sentence that goes on. " * 40 + "\n", "more than a page"),
        (GOOD.replace("every month.", "every {month}."), "placeholders"),
        (GOOD.replace("every month.", "every _month_."), "underscores"),
        (GOOD.replace("every month.", "every `month`."), "backticks"),
        (GOOD.replace("every month.", "every *month*."), "single *"),
        (GOOD.replace("- your hours", "* your hours"), "bullet lines start with '- '"),
        (GOOD.replace("- your hours", "  - your hours"), "indented"),
        (GOOD.replace("# Your pay", "Your pay"), "line 1"),
        (GOOD.replace("# Your pay\n", "# Your pay\nText right under the title.\n"), "line 2"),
        ("# Only a title\n", "no text after its title"),
        ("", "empty"),
    ],
    ids=[
        "unpaired-bold",
        "link",
        "url",
        "html",
        "entity",
        "second-heading",
        "overlong-paragraph",
        "placeholder",
        "underscore",
        "backtick",
        "italic",
        "star-bullet",
        "nested",
        "no-title",
        "no-blank-after-title",
        "no-body",
        "empty",
    ],
)
def test_the_checker_finds_broken_markup(broken: str, expected: str) -> None:
    problems = check_lesson(broken)
    assert any(expected in problem for problem in problems), problems


# -- rendering and pages ----------------------------------------------------------------------


def test_bullets_and_bold_render_to_plain_text_with_spans() -> None:
    styled = render_block("Your payslip shows:\n- your hours\n- **every** deduction")
    assert styled.text == f"Your payslip shows:\n{BULLET}your hours\n{BULLET}every deduction"
    [(start, length)] = styled.bold
    assert styled.text[start : start + length] == "every"


def test_pages_hold_whole_paragraphs_and_start_with_the_title() -> None:
    paragraphs = [f"Paragraph {n}. " + " ".join(["word"] * 50) for n in range(12)]
    pages = paginate("A title", paragraphs, limit=PAGE_CHARS)
    assert len(pages) > 1
    assert pages[0].text.startswith("A title\n\n")
    assert pages[0].bold == ((0, len("A title")),)
    assert all(len(page.text) <= PAGE_CHARS for page in pages)
    rejoined = "\n\n".join(page.text for page in pages)
    assert rejoined == "\n\n".join(["A title", *paragraphs]), "no paragraph was split"


def test_an_overlong_paragraph_is_split_at_sentence_ends_keeping_bold() -> None:
    sentence = "Workers have **rights** at work. "
    paragraph = (sentence * 80).strip()  # about 2,300 characters shown
    pages = paginate("Title", [paragraph], limit=PAGE_CHARS)
    assert len(pages) == 3
    assert all(len(page.text) <= PAGE_CHARS for page in pages)
    for page in pages:
        body = page.text.removeprefix("Title\n\n")
        assert body.endswith("work."), "split after a sentence, never inside one"
        spans = [page.text[s : s + n] for s, n in page.bold]
        assert all(span in ("rights", "Title") for span in spans)


def test_text_without_spaces_is_split_without_separating_marks() -> None:
    thai = "ลูกจ้างมีสิทธิได้รับค่าจ้าง" * 80  # no spaces, vowel and tone marks everywhere
    pages = paginate("หัวข้อ", [thai], limit=PAGE_CHARS)
    assert all(len(page.text) <= PAGE_CHARS for page in pages)
    for page in pages[1:]:
        assert page.text[0] not in "ัิีึืุูํ่้๊๋็์", "a page never starts with a combining mark"
    assert "".join(p.text.removeprefix("หัวข้อ\n\n") for p in pages) == thai


def test_lessons_are_read_from_the_content_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from locales import education

    monkeypatch.setattr(education, "CONTENT_ROOT", tmp_path)
    (tmp_path / "en" / "education").mkdir(parents=True)
    (tmp_path / "en" / "education" / "pay.md").write_text(GOOD, encoding="utf-8")
    lesson = education.load_lesson("pay", "th")
    assert lesson is not None
    assert lesson.language == "en", "a lesson missing in Thai is shown in English"
    (tmp_path / "th" / "education").mkdir(parents=True)
    (tmp_path / "th" / "education" / "pay.md").write_text(
        "# ค่าจ้างของคุณ\n\nคุณต้องได้รับค่าจ้าง **ตรงเวลา**\n", encoding="utf-8"
    )
    lesson = education.load_lesson("pay", "th")
    assert lesson is not None
    assert lesson.language == "th"
    assert education.lesson_preview("pay", "th") == ("ค่าจ้างของคุณ", lesson.pages[0].text)
    assert education.load_lesson("hours", "th") is None
    with pytest.raises(LookupError):
        education.lesson_preview("hours", "en")


def test_bold_entities_count_utf16_units() -> None:
    text = "📖 Title 😀 and **x**"
    start = text.index("Title")
    [title] = bold_entities(text, ((start, len("Title")),)) or []
    assert (title.type, title.offset, title.length) == ("bold", 3, 5), "📖 is two UTF-16 units"
    smiley = text.index("😀")
    [both] = bold_entities(text, ((smiley, 5),)) or []
    assert (both.offset, both.length) == (9, 6)
    assert bold_entities(text, ((len(text) - 1, 5), (0, 0))) is None, "bad spans are dropped"


def test_the_operators_check_passes_on_what_ships_and_fails_on_a_broken_copy(
    tmp_path: Path,
) -> None:
    from locales.education import check_shipped

    assert [problem for code in LANGUAGES for problem in check_shipped(code)] == []
    for language in ("en", "th"):
        folder = tmp_path / language / "education"
        folder.mkdir(parents=True)
        for topic in TOPICS:
            source = lesson_path(topic, language, LOCALES_DIR)
            (folder / source.name).write_text(source.read_text(encoding="utf-8"), "utf-8")
    (tmp_path / "th" / "education" / "pay.md").write_text(
        shipped("en", "pay"), encoding="utf-8"
    )  # left in English
    (tmp_path / "th" / "education" / "fees.md").unlink()
    (tmp_path / "th" / "education" / "union.md").write_text("# หัวข้อ\n\n**ไม่ปิด\n", "utf-8")
    problems = check_shipped("th", tmp_path)
    assert any(p.startswith("th/pay: the title is still the English one") for p in problems)
    assert any(p.startswith("th/fees: cannot read") for p in problems)
    assert any(p.startswith("th/union:") for p in problems)
    assert check_shipped("en", tmp_path) == []

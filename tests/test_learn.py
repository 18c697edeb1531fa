"""Learning your rights in the conversation core: topics, pages, feedback, report, contacts.

Lessons come from a temporary content folder, so the flow is tested apart from the wording of
the shipped lessons (which ``test_education_content.py`` checks).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conversations.learn import learn_payload
from conversations.messages import MAX_PAYLOAD_BYTES, Outbound
from locales import education
from locales.education import PAGE_CHARS, TOPICS
from tests.test_conversation_core import Chat, last_text, payloads

LONG_PARAGRAPH = " ".join(["Your employer must pay you for every hour you work."] * 12)


def lesson(title: str, paragraphs: int = 1) -> str:
    body = "\n\n".join(
        f"**Part {n}.** {LONG_PARAGRAPH}" if paragraphs > 1 else "You have rights at work."
        for n in range(1, paragraphs + 1)
    )
    return f"# {title}\n\n{body}\n"


@pytest.fixture(autouse=True)
def lessons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """English lessons for every topic; "pay" runs over three pages."""
    monkeypatch.setattr(education, "CONTENT_ROOT", tmp_path)
    folder = tmp_path / "en" / "education"
    folder.mkdir(parents=True)
    for topic in TOPICS:
        folder.joinpath(f"{topic}.md").write_text(lesson(f"About {topic}"), encoding="utf-8")
    folder.joinpath("pay.md").write_text(lesson("Your pay", paragraphs=3), encoding="utf-8")
    return tmp_path


def bolded(reply: Outbound) -> list[str]:
    return [reply.text[start : start + length] for start, length in reply.bold]


async def test_learn_and_the_menu_button_show_the_thirteen_topics() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.command("learn")
    topics = [p for p in payloads(turn) if p.startswith("learn:")]
    assert topics == [learn_payload(topic) for topic in TOPICS]
    assert len(topics) == 13
    assert payloads(turn)[-1] == "nav:menu"
    assert "Pay and payslips" in [choice.label for choice in turn.replies[-1].choices]
    await chat.command("menu")
    turn = await chat.press("menu:learn")
    assert [p for p in payloads(turn) if p.startswith("learn:")] == topics
    assert chat.state is not None
    assert chat.state.step == "learn.topics"


async def test_a_lesson_pages_forward_and_back_then_back_to_the_topics() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("learn")
    first = await chat.press(learn_payload("pay"))
    page = first.replies[-1]
    assert page.text.startswith("Your pay\n\n")
    assert bolded(page) == ["Your pay", "Part 1."]
    assert "Page 1 of 3" in page.text
    assert payloads(first) == ["learn:page:pay:2", "nav:back", "nav:menu"]
    second = await chat.press("learn:page:pay:2")
    assert "Page 2 of 3" in last_text(second)
    assert bolded(second.replies[-1]) == ["Part 2."]
    assert not last_text(second).startswith("Your pay")
    third = await chat.press("learn:page:pay:3")
    assert "Page 3 of 3" in last_text(third)
    assert "Was this helpful?" in last_text(third)
    assert payloads(third) == [
        "learn:rate:pay:yes",
        "learn:rate:pay:no",
        "learn:report:pay",
        "nav:back",
        "nav:menu",
    ]
    for reply in (first, second, third):
        assert len(reply.replies[-1].text) < PAGE_CHARS + 100
    back = await chat.press("nav:back")
    assert "Page 2 of 3" in last_text(back)
    back = await chat.text("back")  # typed, in the worker's language, does the same
    assert "Page 1 of 3" in last_text(back)
    topics = await chat.press("nav:back")
    assert chat.state is not None
    assert chat.state.step == "learn.topics"
    assert learn_payload("pay") in payloads(topics)
    await chat.press("nav:back")
    assert chat.state.step == "menu"


async def test_a_typed_number_picks_the_topic_and_the_next_page() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("learn")
    turn = await chat.text("2")
    assert last_text(turn).startswith("About hours")
    await chat.command("learn")
    await chat.text("1")
    turn = await chat.text("1")  # Next
    assert "Page 2 of 3" in last_text(turn)


async def test_report_a_problem_about_this_preselects_the_topics_category() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press(learn_payload("harassment"))
    turn = await chat.press("learn:report:harassment")
    assert chat.state is not None
    assert chat.state.step == "report.categories"
    ticked = [c.payload for c in turn.replies[-1].choices if c.label.startswith("✅")]
    assert ticked == ["cat:violence"]
    back = await chat.press("nav:back")  # back to the lesson it came from
    assert "Was this helpful?" in last_text(back)


async def test_a_lessons_report_button_never_drops_an_unfinished_report() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:wages")  # an unfinished report about wages
    await chat.press(learn_payload("harassment"))
    turn = await chat.press("learn:report:harassment")
    assert chat.state is not None
    assert chat.state.step == "report.resume", "asked first, not thrown away"
    assert "resume:continue" in payloads(turn)
    turn = await chat.press("resume:new")
    assert payloads(turn) == ["cancel:no", "cancel:yes"], "deleting the old one asks first"
    turn = await chat.press("cancel:yes")
    ticked = [c.payload for c in turn.replies[-1].choices if c.label.startswith("✅")]
    assert ticked == ["cat:violence"], "the new report starts with the lesson's category"


async def test_report_from_a_topic_without_category_ticks_nothing() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press(learn_payload("complaints"))
    turn = await chat.press("learn:report:complaints")
    assert chat.state is not None
    assert chat.state.step == "report.categories"
    assert not [c for c in turn.replies[-1].choices if c.label.startswith("✅")]


async def test_helpful_answer_is_counted_once_thanked_and_back_to_the_topics() -> None:
    chat = Chat()
    await chat.onboard("es")
    await chat.press(learn_payload("fees"))
    turn = await chat.press("learn:rate:fees:yes")
    assert chat.learning.feedback == [("fees", "en", True)], "the English lesson was shown"
    assert len(turn.replies) == 2
    assert chat.state is not None
    assert chat.state.step == "learn.topics"
    await chat.press("learn:rate:fees:no")  # an old button pressed again
    assert chat.learning.feedback == [("fees", "en", True)]
    await chat.press("learn:rate:union:no")
    assert chat.learning.feedback[-1] == ("union", "en", False)


async def test_the_contacts_lesson_ends_with_the_configured_contacts() -> None:
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press(learn_payload("contacts"))
    assert "Hotline 1300" in last_text(turn)
    assert last_text(turn).index("Hotline 1300") < last_text(turn).index("Was this helpful?")
    chat.cases.contacts = None
    turn = await chat.press(learn_payload("contacts"))
    assert "No emergency contacts are configured for your country yet" in last_text(turn)
    assert "Hotline 1300" not in last_text(turn)


async def test_a_lesson_button_works_from_any_step() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.command("report")
    await chat.press("cat:wages")
    await chat.press("report:done")
    assert chat.state is not None
    assert chat.state.step == "report.workplace"
    turn = await chat.press(learn_payload("safety"))
    assert chat.state.step == "learn.page"
    assert last_text(turn).startswith("About safety")
    await chat.press("nav:back")  # page 1 goes to the topics, not into the report
    assert chat.state.step == "learn.topics"
    resume = await chat.command("report")
    assert payloads(resume)[0] == "resume:continue", "the draft report was kept"


async def test_a_lesson_button_before_onboarding_starts_onboarding() -> None:
    chat = Chat()
    await chat.press(learn_payload("pay"))
    assert chat.state is not None
    assert chat.state.step == "language"


async def test_garbage_on_a_page_reprompts_with_the_bold_title_still_in_place() -> None:
    chat = Chat()
    await chat.onboard("en")
    await chat.press(learn_payload("pay"))
    turn = await chat.text("what?")
    assert chat.state is not None
    assert chat.state.step == "learn.page"
    assert bolded(turn.replies[-1]) == ["Your pay", "Part 1."]
    stale = await chat.press("learn:page:nosuch:2")
    assert "Page 1 of 3" in last_text(stale)


async def test_a_lesson_in_the_workers_language_is_preferred(lessons: Path) -> None:
    folder = lessons / "th" / "education"
    folder.mkdir(parents=True)
    folder.joinpath("hours.md").write_text("# เวลาทำงาน\n\nคุณมีสิทธิ\n", encoding="utf-8")
    chat = Chat()
    await chat.onboard("th")
    assert last_text(await chat.press(learn_payload("hours"))).startswith("เวลาทำงาน")
    assert last_text(await chat.press(learn_payload("fees"))).startswith("About fees")
    await chat.press("learn:rate:hours:yes")
    assert chat.learning.feedback == [("hours", "th", True)]


async def test_a_missing_lesson_is_said_and_the_topics_shown_again(lessons: Path) -> None:
    (lessons / "en" / "education" / "privacy.md").unlink()
    chat = Chat()
    await chat.onboard("en")
    turn = await chat.press(learn_payload("privacy"))
    assert "not available" in turn.replies[0].text
    assert chat.state is not None
    assert chat.state.step == "learn.topics"


def test_every_lesson_payload_fits_a_button() -> None:
    for topic in TOPICS:
        for payload in (
            learn_payload(topic),
            f"learn:page:{topic}:99",
            f"learn:rate:{topic}:yes",
            f"learn:report:{topic}",
        ):
            assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    with pytest.raises(ValueError, match="unknown"):
        learn_payload("nosuch")

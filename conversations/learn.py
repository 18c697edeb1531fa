"""Learning your rights: a list of topics, each lesson page by page, then "Was this helpful?".

Lessons are files (``locales/<lang>/education/<topic>.md``, see ``locales/education.py``); a
lesson missing in the worker's language is shown in English. Every lesson button
(``domain/payloads.py``) names the topic (and page) it is about, so the engine routes them at any
step: a broadcast's "Read the lesson" button (``learn_payload``) opens a lesson wherever the
worker is, and an old button still does what it says.
"""

from __future__ import annotations

from typing import Any

from conversations.messages import Choice, Outbound
from conversations.report import start_report
from conversations.turn import Step, TurnContext, go, register
from domain import payloads
from domain.payloads import LessonOpen, LessonPage, LessonRating, LessonReport, LessonTopics
from locales.education import TOPIC_CATEGORIES, TOPICS, Lesson, load_lesson
from locales.education import lesson_preview as lesson_preview  # for broadcasts

CONTACTS_TOPIC = "contacts"


def learn_payload(topic: str) -> str:
    """The button payload that opens ``topic`` at page 1, from any step."""
    if topic not in TOPICS:
        raise ValueError(f"unknown lesson topic {topic!r}")
    return payloads.lesson(topic)


def is_learn_payload(payload: str) -> bool:
    return payloads.is_lesson(payload)


async def open_topics(ctx: TurnContext) -> None:
    ctx.state.data.pop("learn", None)
    await go(ctx, "learn.topics", remember=False)


async def on_learn_payload(ctx: TurnContext, payload: str) -> bool:
    """Act on a lesson button; False if it is not a well-formed one about a lesson we have."""
    button = payloads.parse(payload)
    if isinstance(button, LessonTopics):
        await open_topics(ctx)
        return True
    if not isinstance(button, LessonOpen | LessonPage | LessonRating | LessonReport):
        return False
    if button.topic not in TOPICS:
        return False
    match button:
        case LessonOpen(topic):
            await show_page(ctx, topic, 0)
        case LessonPage(topic, page):
            await show_page(ctx, topic, page - 1)
        case LessonRating(topic, helpful):
            await record_feedback(ctx, topic, helpful)
        case LessonReport(topic):
            category = TOPIC_CATEGORIES[topic]
            await start_report(ctx, (category,) if category else ())
    return True


async def contacts_workplace(ctx: TurnContext) -> int | None:
    """The workplace whose country's emergency contacts the contacts lesson shows (None: the
    contacts configured for any country): the one the worker chose when subscribing."""
    profile = await ctx.services.profiles.find(ctx.worker.pseudonym)
    return profile.workplace_id if profile is not None else None


async def show_page(ctx: TurnContext, topic: str, index: int) -> None:
    lesson = load_lesson(topic, ctx.t.language)
    if lesson is None:
        ctx.say(ctx._("Sorry, this lesson is not available yet."))
        await open_topics(ctx)
        return
    index = max(0, min(index, len(lesson.pages) - 1))
    data: dict[str, Any] = {"topic": topic, "page": index}
    if topic == CONTACTS_TOPIC and index == len(lesson.pages) - 1:
        workplace = await contacts_workplace(ctx)
        data["contacts"] = await ctx.services.cases.emergency_contacts(ctx.t.language, workplace)
    ctx.state.data["learn"] = data
    await go(ctx, "learn.page")


async def record_feedback(ctx: TurnContext, topic: str, helpful: bool) -> None:
    rated: list[str] = ctx.state.data.setdefault("learn_rated", [])
    if topic not in rated:  # a second press of an old button is not counted again
        lesson = load_lesson(topic, ctx.t.language)
        language = lesson.language if lesson else ctx.t.language
        await ctx.services.learning.record_feedback(topic, language, helpful)
        rated.append(topic)
    ctx.say(ctx._("Thank you. Your answer helps us make the lessons better."))
    await open_topics(ctx)


@register
class TopicsStep(Step):
    name = "learn.topics"

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._("What would you like to learn about? Choose a topic."),
            (
                *(Choice(ctx._(label), payloads.lesson(topic)) for topic, label in TOPICS.items()),
                *ctx.nav_choices(back=False),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        return await on_learn_payload(ctx, payload)


@register
class PageStep(Step):
    name = "learn.page"

    @staticmethod
    def _current(ctx: TurnContext) -> tuple[Lesson | None, int]:
        data = ctx.state.data.get("learn") or {}
        lesson = load_lesson(str(data.get("topic", "")), ctx.t.language)
        if lesson is None:
            return None, 0
        return lesson, max(0, min(int(data.get("page", 0)), len(lesson.pages) - 1))

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        lesson, index = self._current(ctx)
        if lesson is None:  # a state from before the content changed
            return Outbound(
                _("Sorry, this lesson is not available yet."),
                (Choice(_("Choose a topic"), payloads.LESSON_TOPICS), *ctx.nav_choices(back=False)),
            )
        page, count, topic = lesson.pages[index], len(lesson.pages), lesson.topic
        last = index == count - 1
        parts = [page.text]
        if last and topic == CONTACTS_TOPIC:
            parts.append(
                (ctx.state.data.get("learn") or {}).get("contacts")
                or _(
                    "No emergency contacts are configured for your country yet. If you are in "
                    "danger, call your local emergency number."
                )
            )
        if count > 1:
            parts.append(
                _("Page {page} of {pages}").format(
                    page=ctx.t.number(index + 1), pages=ctx.t.number(count)
                )
            )
        if last:
            parts.append(_("Was this helpful?"))
            choices = [
                Choice("👍 " + _("Yes"), payloads.lesson_rating(topic, helpful=True)),
                Choice("👎 " + _("No"), payloads.lesson_rating(topic, helpful=False)),
                Choice("📝 " + _("Report a problem about this"), payloads.lesson_report(topic)),
            ]
        else:
            choices = [Choice(_("Next") + " ▶", payloads.lesson_page(topic, index + 2))]
        return Outbound("\n\n".join(parts), (*choices, *ctx.nav_choices()), bold=page.bold)

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        return await on_learn_payload(ctx, payload)

    async def on_back(self, ctx: TurnContext) -> bool:
        lesson, index = self._current(ctx)
        if lesson is not None and index > 0:
            await show_page(ctx, lesson.topic, index - 1)
        else:  # page 1 (also of a lesson opened from elsewhere) goes back to the topics
            await open_topics(ctx)
        return True

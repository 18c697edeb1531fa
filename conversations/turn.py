"""One turn of a conversation: the context a step works in, and the base class of every step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from conversations.messages import Choice, Inbound, InboundKind, Outbound
from conversations.ports import Services, WorkerRef
from conversations.state import ConversationState
from locales import SOURCE_LANGUAGE, Translator, translator

NAV_BACK = "nav:back"
NAV_CANCEL = "nav:cancel"
NAV_MENU = "nav:menu"


@dataclass
class TurnContext:
    worker: WorkerRef
    state: ConversationState
    services: Services
    default_language: str = SOURCE_LANGUAGE
    draft_days: int = 3  # how long idle drafts live, as told to the worker
    inbound: Inbound | None = None
    replies: list[Outbound] = field(default_factory=list)
    erase_inbound: bool = False
    erase_chat: bool = False
    forget_state: bool = False  # drop the stored state instead of saving it (after /forget)
    deliver_first: bool = False  # deliver the replies, then save (a step safe to run again)

    @property
    def t(self) -> Translator:
        return translator(self.state.language or self.default_language)

    def _(self, message: str) -> str:
        return self.t.gettext(message)

    def say(self, text: str, *choices: Choice, columns: int = 1, protect: bool = False) -> None:
        self.replies.append(Outbound(text, tuple(choices), columns, protect))

    def nav_choices(self, *, back: bool = True, menu: bool = True) -> list[Choice]:
        """The navigation buttons shown under a step's own choices."""
        choices = []
        if back:
            choices.append(Choice("↩ " + self._("Back"), NAV_BACK))
        if menu:
            choices.append(Choice("☰ " + self._("Menu"), NAV_MENU))
        return choices


class Step:
    """A point in a flow that asks the worker something and understands the answer.

    Subclasses give ``prompt`` (the question with its choices) and ``on_choice``. The engine
    matches typed text against the choices' numbers and labels first, so a worker on a channel
    without buttons, or one who prefers typing "2", is understood too (only labels on a
    ``free_text`` step); other text goes to ``on_text``.
    """

    name: ClassVar[str]
    #: The step's answer is words the worker types (what happened, a name, a code): a lone
    #: number typed here is those words, never a choice's number ("3" while describing is not
    #: the third button), and channels that number choices do not number this step's.
    free_text: ClassVar[bool] = False

    def prompt(self, ctx: TurnContext) -> Outbound:
        raise NotImplementedError

    async def enter(self, ctx: TurnContext) -> None:
        """Called when the conversation arrives at this step; by default, ask the question."""
        ctx.replies.append(self.prompt(ctx))

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        """Act on a pressed choice; return False if the payload is not one of this step's."""
        return False

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        """Free text that is not a choice's number or label; False if the step expects none."""
        return False

    async def on_media(self, ctx: TurnContext, inbound: Inbound) -> bool:
        return False

    async def on_back(self, ctx: TurnContext) -> bool:
        """Back (pressed or typed) inside the step, such as to a lesson's previous page; False
        to let the engine go back to the previous step."""
        return False

    def reprompt_hint(self, ctx: TurnContext, inbound: Inbound) -> str:
        """A short line saying why the input was not understood, shown above the question again."""
        if inbound.kind is InboundKind.MEDIA:
            return ctx._("I can't use that here. Please choose one of the options below.")
        if inbound.kind is InboundKind.UNSUPPORTED:
            return ctx._("I can't read edited messages. Please send a new message instead.")
        return ctx._("Sorry, I didn't understand. Please choose one of the options below.")


STEPS: dict[str, Step] = {}


StepClass = TypeVar("StepClass", bound=type[Step])


def register(step_class: StepClass) -> StepClass:
    """Class decorator: make a step reachable by its name."""
    STEPS[step_class.name] = step_class()
    return step_class


async def go(ctx: TurnContext, step_name: str, *, remember: bool = True) -> None:
    """Move the conversation to ``step_name`` and ask its question.

    With ``remember`` the current step is kept for "back"; without it the trail is cleared (the menu
    is a fresh start, and "back" from it has nowhere to go).
    """
    if remember:
        ctx.state.push(step_name)
    else:
        ctx.state.history.clear()
        ctx.state.step = step_name
    await STEPS[step_name].enter(ctx)


#: No step offers more choices than a number of this many digits counts.
_MAX_CHOICE_DIGITS = 6


def typed_number(text: str, count: int) -> int | None:
    """The index of the choice numbered ``text`` among ``count`` (from 1, in any script's
    digits: "๓", "၃", "３"; "②" and "²" are text, not numbers), or None."""
    if not text.isdecimal() or len(text) > _MAX_CHOICE_DIGITS:  # int() fails past 4300 digits
        return None
    index = int(text) - 1
    return index if 0 <= index < count else None


def match_typed_choice(
    choices: tuple[Choice, ...], text: str, *, numbers: bool = True
) -> str | None:
    """Understand "2", "2.", or a label typed out, as pressing that choice (without
    ``numbers``, only a label)."""
    typed = text.strip().rstrip(".)").casefold()
    if not typed:
        return None
    index = typed_number(typed, len(choices)) if numbers else None
    if index is not None:
        return choices[index].payload
    for choice in choices:
        label = choice.label.casefold()
        if typed == label or typed == label.lstrip("↩☰ ").strip():
            return choice.payload
    return None


#: What may stand between numbers typed as a list: spaces and commas, including the Arabic,
#: full-width and ideographic commas and the Myanmar little section "၊".
_LIST_SEPARATORS = re.compile(r"[\s,;،，、၊]+")


def typed_choices(choices: tuple[Choice, ...], text: str) -> list[str] | None:
    """Understand "2, 12" or "2 12" (digits of any script) as the payloads of those choices, for
    a step where several can be chosen; None unless there are two or more numbers and each is a
    choice's. One number alone is an ordinary typed choice (``match_typed_choice``)."""
    parts = [part.rstrip(".)") for part in _LIST_SEPARATORS.split(text.strip()) if part]
    if len(parts) < 2:
        return None
    indexes = [typed_number(part, len(choices)) for part in parts]
    if None in indexes:
        return None
    return list(dict.fromkeys(choices[index].payload for index in indexes if index is not None))

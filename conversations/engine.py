"""The conversation engine: routes one inbound event to the right step and returns the replies.

Global commands and the navigation words (back, cancel, menu) are understood at every step, so a
worker can never get stuck; anything a step does not understand gets a short re-prompt, never
silence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from conversations import (
    casework,
    forget,
    learn,
    menu,
    onboarding,
    report,
    status,
    subscriptions,
)
from conversations.commands import WORKER_COMMANDS
from conversations.messages import Effects, Inbound, InboundKind, Outbound
from conversations.ports import Services, WorkerRef
from conversations.state import ConversationState
from conversations.turn import (
    NAV_BACK,
    NAV_CANCEL,
    NAV_MENU,
    STEPS,
    TurnContext,
    go,
    match_typed_choice,
)
from locales import N_, SOURCE_LANGUAGE, Translator, guess_language, translator

log = logging.getLogger(__name__)

_NAV_WORDS = {NAV_BACK: N_("Back"), NAV_CANCEL: N_("Cancel"), NAV_MENU: N_("Menu")}

# Steps register themselves on import; name them so the registry is complete here.
_FLOW_MODULES = (onboarding, menu, report, status, forget, casework, learn, subscriptions)


@dataclass(frozen=True)
class Turn:
    state: ConversationState
    replies: list[Outbound]
    effects: Effects = field(default_factory=Effects)
    forget_state: bool = False
    #: Deliver the replies before saving the state: the step is safe to run again (sending a
    #: report: the case is found by its draft key), so a crash between the two shows the worker
    #: the same answer again instead of losing it.
    deliver_first: bool = False


class ConversationEngine:
    def __init__(
        self, services: Services, default_language: str = SOURCE_LANGUAGE, draft_days: int = 3
    ) -> None:
        self.services = services
        self.default_language = default_language
        self.draft_days = draft_days

    async def handle(
        self, worker: WorkerRef, inbound: Inbound, state: ConversationState | None
    ) -> Turn:
        fresh = state is None
        if state is None:
            state = await self._restore(worker)
        if state.onboarded:
            await self.services.profiles.mark_reachable(worker)
        if state.step not in STEPS:  # written by an older version with other steps
            state.step = "menu" if state.onboarded else "language"
            state.history.clear()
        guess = guess_language(inbound.language_hint, self.default_language)
        ctx = TurnContext(
            worker,
            state,
            self.services,
            default_language=guess,
            draft_days=self.draft_days,
            inbound=inbound,
        )

        if inbound.kind is InboundKind.COMMAND:
            await self._command(ctx, inbound.command)
        elif inbound.kind is InboundKind.CHOICE and casework.is_casework_payload(inbound.payload):
            await casework.on_casework_payload(ctx, inbound.payload)  # arrives at any step
        elif inbound.kind is InboundKind.CHOICE and learn.is_learn_payload(inbound.payload):
            await self._learn_payload(ctx, inbound)  # lesson buttons work at any step too
        elif fresh and not state.onboarded and inbound.kind is not InboundKind.CHOICE:
            await self._command(ctx, "start")  # a first "hello" is a start
        elif (nav := self._navigation(ctx, inbound)) is not None:
            await self._navigate(ctx, nav)
        else:
            await self._step_input(ctx, inbound)
        onboarding.settle(ctx)
        log.debug("turn done: step=%s replies=%d", state.step, len(ctx.replies))
        effects = Effects(erase_inbound=ctx.erase_inbound, erase_chat=ctx.erase_chat)
        replies = ctx.replies
        if STEPS[state.step].free_text:  # what the worker types next is words, numbers too
            replies = [replace(r, numbered=False) if r.choices else r for r in replies]
        return Turn(state, replies, effects, ctx.forget_state, ctx.deliver_first)

    def failure_reply(self, state: ConversationState | None, language_hint: str | None) -> Outbound:
        """What the worker sees when a turn fails on our side: never silence, never details."""
        return Outbound(
            self._translator(state, language_hint).gettext(
                "Sorry, something went wrong on our side. Please try again in a few minutes."
            )
        )

    def unavailable_reply(
        self, state: ConversationState | None, language_hint: str | None
    ) -> Outbound:
        """What the worker sees when a turn fails because the database or Redis cannot be
        reached: it will work again shortly (the state was left as it was before the turn)."""
        return Outbound(
            self._translator(state, language_hint).gettext(
                "Our service is briefly unavailable. Please try again in a minute."
            )
        )

    def slow_down_reply(
        self, state: ConversationState | None, language_hint: str | None
    ) -> Outbound:
        """The one answer to a worker over the per-minute update quota; what they send next
        within that minute is dropped unread."""
        return Outbound(
            self._translator(state, language_hint).gettext(
                "You are sending messages very fast, so I will not read what you send for up to "
                "a minute. Please wait a minute, then send your last message again."
            )
        )

    def _translator(self, state: ConversationState | None, language_hint: str | None) -> Translator:
        language = (state.language if state else None) or guess_language(
            language_hint, self.default_language
        )
        return translator(language)

    async def _restore(self, worker: WorkerRef) -> ConversationState:
        profile = await self.services.profiles.find(worker.pseudonym)
        if profile is None:
            return ConversationState()
        return ConversationState(step="menu", language=profile.language, onboarded=True)

    async def _command(self, ctx: TurnContext, command: str) -> None:
        state = ctx.state
        if command == "start":
            await report.discard(ctx)
            state.data.clear()
            state.onboarded = False
            onboarding.begin(ctx)
            ctx.say(
                ctx._(
                    "Welcome. Here you can learn your rights at work and report problems "
                    "safely, without giving your name."
                )
            )
            await go(ctx, "language", remember=False)
        elif command == "menu":
            await self._to_menu(ctx)
        elif command == "language":
            await go(ctx, "language")
        elif command == "help":
            await menu.show_help(ctx)
        elif command in onboarding.INTENTS:  # /report, /learn
            if state.onboarded:
                await onboarding.INTENTS[command](ctx)
            else:  # language and privacy notice first; then what was asked for, not the menu
                await self._to_menu(ctx)
                onboarding.begin(ctx, intent=command)
        elif command == "status":  # works before onboarding: a worker on a new phone
            await go(ctx, "status.reference")
        elif command == "forget":
            await go(ctx, "forget.confirm")
        elif command in ("stop", "subscribe"):
            if not state.onboarded:
                await self._to_menu(ctx)  # nothing to subscribe before the privacy notice
            elif command == "stop":
                await subscriptions.unsubscribe(ctx)
            else:
                await subscriptions.subscribe(ctx)
        else:
            commands = " ".join(f"/{name}" for name in WORKER_COMMANDS)
            ctx.say(
                ctx._("I don't know that command. You can use: {commands}").format(
                    commands=commands
                )
            )
            await STEPS[state.step].enter(ctx)

    async def _learn_payload(self, ctx: TurnContext, inbound: Inbound) -> None:
        if not ctx.state.onboarded:
            await self._to_menu(ctx)
        elif not await learn.on_learn_payload(ctx, inbound.payload):
            await self._step_input(ctx, inbound)  # a malformed one: re-prompt the current step

    async def _to_menu(self, ctx: TurnContext) -> None:
        if ctx.state.language is None and onboarding.FIRST_RUN not in ctx.state.data:
            await self._command(ctx, "start")  # someone new: welcome them first
        elif ctx.state.language is None:  # welcomed already; keep what they asked for
            await go(ctx, "language", remember=False)
        elif not ctx.state.onboarded:
            await go(ctx, "privacy", remember=False)
        else:
            await go(ctx, "menu", remember=False)

    def _navigation(self, ctx: TurnContext, inbound: Inbound) -> str | None:
        if inbound.kind is InboundKind.CHOICE and inbound.payload in _NAV_WORDS:
            return inbound.payload
        if inbound.kind is InboundKind.TEXT:
            typed = inbound.text.strip().casefold()
            for payload, word in _NAV_WORDS.items():
                if typed in (word.casefold(), ctx._(word).casefold()):
                    return payload
        return None

    async def _navigate(self, ctx: TurnContext, nav: str) -> None:
        state = ctx.state
        if nav == NAV_BACK and await STEPS[state.step].on_back(ctx):
            return
        if nav == NAV_BACK and (previous := state.pop()) is not None:
            state.step = previous
            await STEPS[previous].enter(ctx)
        elif nav == NAV_CANCEL and report.has_draft(ctx):
            state.data.pop(report.AFTER_DELETE, None)  # Cancel means delete, not start anew
            await go(ctx, report.CancelStep.name)  # a report is deleted only once confirmed
        elif nav == NAV_CANCEL:
            await report.discard(ctx)
            state.data.clear()
            ctx.say(ctx._("Cancelled."))
            await self._to_menu(ctx)
        else:  # menu, or back with nowhere to go back to
            await self._to_menu(ctx)

    async def _step_input(self, ctx: TurnContext, inbound: Inbound) -> None:
        step = STEPS[ctx.state.step]
        if inbound.kind is InboundKind.CHOICE:
            handled = await step.on_choice(ctx, inbound.payload)
        elif inbound.kind is InboundKind.TEXT:
            choices = step.prompt(ctx).choices
            typed = match_typed_choice(choices, inbound.text, numbers=not step.free_text)
            if typed in _NAV_WORDS:
                await self._navigate(ctx, typed)
                return
            handled = typed is not None and await step.on_choice(ctx, typed)
            if not handled:
                handled = await step.on_text(ctx, inbound.text)
        elif inbound.kind is InboundKind.MEDIA:
            handled = await step.on_media(ctx, inbound)
        else:
            handled = False
        if not handled:
            prompt = step.prompt(ctx)
            hint = step.reprompt_hint(ctx, inbound)
            shift = len(hint) + 2
            bold = tuple((start + shift, length) for start, length in prompt.bold)
            ctx.replies.append(
                Outbound(f"{hint}\n\n{prompt.text}", prompt.choices, prompt.columns, bold=bold)
            )

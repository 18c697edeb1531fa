"""First contact: pick a language, read what we store and who sees it, then reach the menu — or
what the worker asked for before onboarding.

The first run (``FIRST_RUN`` in the conversation data) lasts from /start until the worker, having
accepted the privacy notice, is anywhere else than these screens. Within it, Back works the way
the screens were shown: the opt-in question goes back to the notice, the notice to the language
picker, and choosing a language leads on to the notice again even once it was accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from conversations import learn, report
from conversations.messages import Choice, Outbound
from conversations.turn import Step, TurnContext, go, register
from locales import LANGUAGES, guess_language, translator

LANGUAGE_PAYLOAD = "lang:"
PRIVACY_ACCEPT = "privacy:ok"
#: Conversation data of the first run: ``{"intent": COMMAND or None}``. Only a command's name is
#: kept, never anything the worker typed.
FIRST_RUN = "onboarding"
#: What a worker may ask for before onboarding and reach once the privacy notice is accepted:
#: command -> what opens it. (/status needs no keeping: it works at once, on a new phone too.)
INTENTS: dict[str, Callable[[TurnContext], Awaitable[None]]] = {
    "report": report.start_report,
    "learn": learn.open_topics,
}
#: Beside the language this screen speaks: the worker's own, or their messenger's. A symbol, so
#: it reads the same in every script and needs no translation.
SUGGESTED_MARK = " ✓"
#: The screens of the first run; being anywhere else after the notice ends it.
FIRST_RUN_STEPS = frozenset({"language", "privacy", "subscribe.offer", "subscribe.workplace"})


def begin(ctx: TurnContext, intent: str | None = None) -> None:
    """Start the first run (at /start), or keep what a worker who has not onboarded asked for."""
    ctx.state.data[FIRST_RUN] = {"intent": intent if intent in INTENTS else None}


def in_first_run(ctx: TurnContext) -> bool:
    return not ctx.state.onboarded or FIRST_RUN in ctx.state.data


def settle(ctx: TurnContext) -> None:
    """End the first run once an onboarded worker has left its screens (a command, the menu)."""
    if ctx.state.onboarded and ctx.state.step not in FIRST_RUN_STEPS:
        ctx.state.data.pop(FIRST_RUN, None)


async def finish(ctx: TurnContext) -> None:
    """After the opt-in question: what the worker asked for before onboarding, or the menu."""
    first_run = ctx.state.data.pop(FIRST_RUN, None)
    intent = first_run.get("intent") if isinstance(first_run, dict) else None
    if intent in INTENTS:
        await INTENTS[intent](ctx)
    else:
        await go(ctx, "menu", remember=False)


def greeting_line() -> str:
    """ "Welcome" in every shipped language, each from its own catalog: before a language is
    chosen, a worker who cannot read the guessed one still sees that the bot speaks theirs."""
    greetings = dict.fromkeys(translator(code).gettext("Welcome") for code in LANGUAGES)
    return " · ".join(greetings)


@register
class LanguageStep(Step):
    name = "language"

    def prompt(self, ctx: TurnContext) -> Outbound:
        # One order always, so a number learnt once ("2" is ไทย) stays true; the language the
        # worker chose, or their messenger's, is marked instead of moved to the top.
        hint = ctx.inbound.language_hint if ctx.inbound else None
        suggested = ctx.state.language or guess_language(hint, "")
        choices = [
            Choice(name + (SUGGESTED_MARK if code == suggested else ""), LANGUAGE_PAYLOAD + code)
            for code, name in LANGUAGES.items()
        ]
        lines = [
            ctx._("Please choose your language."),
            ctx._("You can change it later with /language."),
        ]
        if in_first_run(ctx):
            lines.insert(0, greeting_line() + "\n")
        else:  # a returning worker may keep their language: Back, last, to where they were
            choices += ctx.nav_choices(menu=False)
        return Outbound("\n".join(lines), tuple(choices), columns=2)

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        code = payload.removeprefix(LANGUAGE_PAYLOAD)
        if not payload.startswith(LANGUAGE_PAYLOAD) or code not in LANGUAGES:
            return False
        ctx.state.language = code
        if in_first_run(ctx):  # the notice, in the chosen language, even if accepted before
            await go(ctx, "privacy")
        else:
            await ctx.services.profiles.save(ctx.worker, code)
            ctx.say(ctx._("Language changed to {language}.").format(language=LANGUAGES[code]))
            await go(ctx, "menu", remember=False)
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        typed = text.strip().casefold()
        for code, name in LANGUAGES.items():
            if typed in (code, name.casefold()):
                return await self.on_choice(ctx, LANGUAGE_PAYLOAD + code)
        return False


@register
class PrivacyStep(Step):
    name = "privacy"

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        days = ctx.draft_days
        text = "\n\n".join(
            [
                _("Your privacy"),
                _(
                    "We do not store your name, phone number or messenger account. "
                    "We know you only by a secret code made from your account."
                ),
                _(
                    "What you tell us is stored encrypted. Only trained staff of the monitoring "
                    "organisation can read reports. We never tell your employer who you are."
                ),
                ctx.t.ngettext(
                    "Unfinished answers are deleted after {days} day.",
                    "Unfinished answers are deleted after {days} days.",
                    days,
                ).format(days=ctx.t.number(days)),
                _("To erase the link between this chat and everything you sent, use /forget."),
                _("Tip: delete this chat if someone else may look at your phone."),
            ]
        )
        choices = (Choice("✔ " + _("I understand, continue"), PRIVACY_ACCEPT), *ctx.nav_choices())
        return Outbound(text, choices)

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload != PRIVACY_ACCEPT:
            return False
        ctx.state.onboarded = True
        ctx.state.data.setdefault(FIRST_RUN, {"intent": None})  # still onboarding: the opt-in
        await ctx.services.profiles.save(ctx.worker, ctx.state.language or ctx.default_language)
        await go(ctx, "subscribe.offer", remember=False)  # opt in, or not, to broadcasts
        return True

    async def on_back(self, ctx: TurnContext) -> bool:
        """Back to the language picker, however the notice was reached (/start, /menu, Back)."""
        await go(ctx, "language", remember=False)
        return True

"""First contact: pick a language, read what we store and who sees it, then reach the menu."""

from __future__ import annotations

from conversations.messages import Choice, Outbound
from conversations.turn import Step, TurnContext, go, register
from locales import LANGUAGES

LANGUAGE_PAYLOAD = "lang:"
PRIVACY_ACCEPT = "privacy:ok"


@register
class LanguageStep(Step):
    name = "language"

    def prompt(self, ctx: TurnContext) -> Outbound:
        current = ctx.state.language or ctx.default_language
        # The likely language first, so the right button is the easiest one to press.
        codes = [current, *(code for code in LANGUAGES if code != current)]
        choices = [Choice(LANGUAGES[code], LANGUAGE_PAYLOAD + code) for code in codes]
        return Outbound(
            ctx._("Please choose your language.")
            + "\n"
            + ctx._("You can change it later with /language."),
            tuple(choices),
            columns=2,
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        code = payload.removeprefix(LANGUAGE_PAYLOAD)
        if not payload.startswith(LANGUAGE_PAYLOAD) or code not in LANGUAGES:
            return False
        ctx.state.language = code
        if ctx.state.onboarded:
            await ctx.services.profiles.save(ctx.worker, code)
            ctx.say(ctx._("Language changed to {language}.").format(language=LANGUAGES[code]))
            await go(ctx, "menu", remember=False)
        else:
            await go(ctx, "privacy")
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
        await ctx.services.profiles.save(ctx.worker, ctx.state.language or ctx.default_language)
        await go(ctx, "subscribe.offer", remember=False)  # opt in, or not, to broadcasts
        return True

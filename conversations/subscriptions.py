"""Whether a worker receives broadcasts: asked once after the privacy notice, changed at any time
with /stop and /subscribe. Nobody is subscribed without saying yes."""

from __future__ import annotations

from conversations import onboarding
from conversations.messages import Choice, Outbound
from conversations.turn import Step, TurnContext, go, register

SUBSCRIBE_YES = "sub:yes"
SUBSCRIBE_NO = "sub:no"
WORKPLACE_PAYLOAD = "sub:wp:"
WORKPLACE_SKIP = "sub:wp-skip"
#: Buttons for at most this many workplaces; more would bury the Skip button on a small screen.
MAX_WORKPLACE_CHOICES = 12


@register
class OfferStep(Step):
    """Right after onboarding: would the worker like occasional messages about their rights?"""

    name = "subscribe.offer"

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        return Outbound(
            _("Would you like short messages about your rights now and then?")
            + "\n"
            + _("At most a few a month. You can stop them at any time with /stop."),
            (
                Choice("✔ " + _("Yes, send me messages"), SUBSCRIBE_YES),
                Choice(_("No, thank you"), SUBSCRIBE_NO),
                *ctx.nav_choices(menu=False),  # last, so "1" and "2" stay Yes and No
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload == SUBSCRIBE_YES:
            await subscribe(ctx)
        elif payload == SUBSCRIBE_NO:
            ctx.say(
                ctx._("All right, no messages. If you change your mind, send /subscribe.")
                + "\n"
                + ctx._("Thank you. You are ready.")
            )
            await onboarding.finish(ctx)
        else:
            return False
        return True

    async def on_back(self, ctx: TurnContext) -> bool:
        """Back to the privacy notice the worker has just accepted, to read it again."""
        await go(ctx, "privacy", remember=False)
        return True


@register
class WorkplaceStep(Step):
    """Optional: which workplace's news the worker wants (it also sets their time zone)."""

    name = "subscribe.workplace"

    def prompt(self, ctx: TurnContext) -> Outbound:
        options = ctx.state.data.get("sub_workplaces", [])
        choices = [Choice(name, f"{WORKPLACE_PAYLOAD}{wid}") for wid, name in options]
        choices.append(Choice("⏭ " + ctx._("Skip"), WORKPLACE_SKIP))
        return Outbound(
            ctx._("Which workplace should the messages be about? You can skip this."),
            tuple(choices),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        options = dict(ctx.state.data.get("sub_workplaces", []))
        if payload == WORKPLACE_SKIP:
            workplace_id = None
        elif payload.startswith(WORKPLACE_PAYLOAD):
            raw = payload.removeprefix(WORKPLACE_PAYLOAD)
            if not raw.isdecimal() or int(raw) not in options:
                return False
            workplace_id = int(raw)
        else:
            return False
        ctx.state.data.pop("sub_workplaces", None)
        if workplace_id is not None:
            await ctx.services.profiles.set_workplace(ctx.worker.pseudonym, workplace_id)
        ctx.say(ctx._("Thank you. You will get messages. To stop them, send /stop."))
        await onboarding.finish(ctx)
        return True


async def subscribe(ctx: TurnContext) -> None:
    """Subscribe (from the offer or /subscribe); ask the workplace when staff listed some."""
    await ctx.services.profiles.set_subscribed(ctx.worker.pseudonym, True)
    workplaces = (await ctx.services.cases.workplaces())[:MAX_WORKPLACE_CHOICES]
    if workplaces:
        ctx.state.data["sub_workplaces"] = [[option.id, option.name] for option in workplaces]
        await go(ctx, "subscribe.workplace", remember=False)
        return
    ctx.say(ctx._("Thank you. You will get messages. To stop them, send /stop."))
    await onboarding.finish(ctx)


async def unsubscribe(ctx: TurnContext) -> None:
    await ctx.services.profiles.set_subscribed(ctx.worker.pseudonym, False)
    ctx.say(
        ctx._("You will not get any more broadcast messages. Everything else still works.")
        + "\n"
        + ctx._("To get them again, send /subscribe.")
    )
    await go(ctx, "menu", remember=False)

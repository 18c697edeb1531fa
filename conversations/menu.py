"""The main menu, help, and the places later features will fill."""

from __future__ import annotations

from conversations.commands import WORKER_COMMANDS
from conversations.learn import open_topics
from conversations.messages import Choice, Outbound
from conversations.report import start_report
from conversations.turn import STEPS, Step, TurnContext, go, register

MENU_LEARN = "menu:learn"
MENU_REPORT = "menu:report"
MENU_STATUS = "menu:status"
MENU_LANGUAGE = "menu:language"
MENU_HELP = "menu:help"


@register
class MenuStep(Step):
    name = "menu"

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        return Outbound(
            _("Main menu. What would you like to do?"),
            (
                Choice("📖 " + _("Learn your rights"), MENU_LEARN),
                Choice("📝 " + _("Report a problem"), MENU_REPORT),
                Choice("🔎 " + _("Check a case"), MENU_STATUS),
                Choice("🌐 " + _("Language"), MENU_LANGUAGE),
                Choice("❓ " + _("Help"), MENU_HELP),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload == MENU_LANGUAGE:
            await go(ctx, "language")
        elif payload == MENU_HELP:
            await show_help(ctx)
        elif payload == MENU_REPORT:
            await start_report(ctx)
        elif payload == MENU_STATUS:
            await go(ctx, "status.reference")
        elif payload == MENU_LEARN:
            await open_topics(ctx)
        else:
            return False
        return True


async def show_help(ctx: TurnContext) -> None:
    _ = ctx._
    lines = [
        _("This service helps workers learn their rights and report problems at work safely."),
        _("You can use these commands at any time:"),
        *(f"/{name} — {_(description)}" for name, description in WORKER_COMMANDS.items()),
        _("In every step you can go Back, Cancel or return to the Menu."),
    ]
    ctx.say("\n".join(lines))
    await reshow(ctx)


async def coming_soon(ctx: TurnContext) -> None:
    ctx.say(ctx._("This part of the service is coming soon."))
    await reshow(ctx)


async def reshow(ctx: TurnContext) -> None:
    """After a side message, show the menu (or the onboarding step still to finish)."""
    if ctx.state.onboarded:
        await go(ctx, "menu", remember=False)
    else:
        await STEPS[ctx.state.step].enter(ctx)

"""/forget: erase the link between this chat and everything the worker sent.

Cases stay, anonymous, reachable with their reference and receipt code. The channel deletes what
it still can of the chat (Telegram: messages of the last 48 hours).
"""

from __future__ import annotations

from conversations import report
from conversations.channel_words import chat_erasure
from conversations.menu import reshow
from conversations.messages import Choice, Outbound
from conversations.turn import Step, TurnContext, register

FORGET_YES = "forget:yes"
FORGET_NO = "forget:no"


@register
class ForgetStep(Step):
    name = "forget.confirm"

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        text = "\n\n".join(
            [
                _(
                    "This erases the link between this chat and your reports, your language "
                    "choice and any report you have not finished."
                ),
                _(
                    "Your reports stay, with no link to you. You can still check them with "
                    "/status and your reference and receipt code."
                ),
                chat_erasure(ctx),
                _("Do you want to continue?"),
            ]
        )
        return Outbound(
            text,
            (
                Choice("🗑 " + _("Yes, erase"), FORGET_YES),
                Choice(_("No, keep everything"), FORGET_NO),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload == FORGET_NO:
            await reshow(ctx)
            return True
        if payload != FORGET_YES:
            return False
        await report.discard(ctx)
        await ctx.services.profiles.forget(ctx.worker.pseudonym)
        ctx.forget_state = True
        ctx.erase_chat = True
        ctx.say(
            ctx._(
                "Done. This chat is no longer linked to you. Send /start to use the service again."
            )
        )
        return True

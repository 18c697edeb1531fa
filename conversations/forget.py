"""/forget: erase the link between this chat and everything the worker sent.

Cases stay, anonymous, reachable with their reference and receipt code. The channel deletes what
it still can of the chat (Telegram: messages of the last 48 hours). Keeping everything is the
first choice. A worker whose case waits for their answer about a fix is told first that staff
will not be able to ask them; if they go ahead, the case records it and staff are told
(``services/casework.py``, ``reporter_forgot``).
"""

from __future__ import annotations

from conversations import report
from conversations.channel_words import chat_erasure
from conversations.menu import reshow
from conversations.messages import Choice, Outbound
from conversations.turn import Step, TurnContext, register

FORGET_YES = "forget:yes"
FORGET_NO = "forget:no"
#: The worker's cases that wait for their answer about a fix, looked up when the step is
#: entered (the prompt is built again for a re-prompt, without the services).
AWAITING_ANSWER = "forget_awaiting"


@register
class ForgetStep(Step):
    name = "forget.confirm"

    async def enter(self, ctx: TurnContext) -> None:
        awaiting = await ctx.services.casework.awaiting_answer(ctx.worker)
        ctx.state.data[AWAITING_ANSWER] = list(awaiting)
        await super().enter(ctx)

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        awaiting = [str(reference) for reference in ctx.state.data.get(AWAITING_ANSWER, ())]
        warning = []
        if awaiting:
            warning.append(
                "⚠ "
                + ctx.t.ngettext(
                    "Staff are waiting for your answer about report {references}: was the "
                    "problem really fixed? If you continue, staff will not be able to ask you "
                    "whether it was fixed. If you can, answer their question first.",
                    "Staff are waiting for your answers about reports {references}: were the "
                    "problems really fixed? If you continue, staff will not be able to ask you "
                    "whether they were fixed. If you can, answer their questions first.",
                    len(awaiting),
                ).format(references=", ".join(awaiting))
            )
        text = "\n\n".join(
            [
                *warning,
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
                Choice(_("No, keep everything"), FORGET_NO),
                Choice("🗑 " + _("Yes, erase"), FORGET_YES),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload in (FORGET_NO, FORGET_YES):
            ctx.state.data.pop(AWAITING_ANSWER, None)
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

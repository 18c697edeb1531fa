"""The worker's side of casework: answering staff follow-ups, and saying whether a fix is real.

Staff messages and validation prompts reach the worker through the outbox at any time, so their
buttons (``domain/payloads.py``: ``ans:REFERENCE``, ``val:REFERENCE:ANSWER`` …) are understood
at every step. The case service only accepts them from the worker who reported the case.
"""

from __future__ import annotations

from conversations.channel_words import unprotected_code_advice
from conversations.messages import Choice, Inbound, Outbound
from conversations.ports import EvidenceOutcome, ValidationAnswer
from conversations.report import profile_workplace, refusal_message, staff_not_alerted
from conversations.turn import Step, TurnContext, go, register
from domain import payloads
from domain.payloads import (
    FollowupButton,
    RetaliationButton,
    SiteButton,
    ValidationButton,
)

PANEL_YES = "panel:yes"
PANEL_NO = "panel:no"
SKIP = "comment:skip"


def is_casework_payload(payload: str) -> bool:
    return payloads.is_casework(payload)


async def not_linked(ctx: TurnContext) -> None:
    """The answer to a button about a case that is not this worker's, or no longer asked."""
    ctx.say(ctx._("This question is closed, or it is about a report not linked to this chat."))
    await go(ctx, "menu", remember=False)


async def on_casework_payload(ctx: TurnContext, payload: str) -> None:
    match payloads.parse(payload):
        case FollowupButton(reference):
            ctx.state.data["followup_ref"] = reference
            await go(ctx, "followup.answer")
        case RetaliationButton() as button:
            await on_retaliation_answer(ctx, button)
        case SiteButton(token, answer):
            if await ctx.services.casework.record_site_answer(ctx.worker, token, answer):
                ctx.say(ctx._("Thank you for your answer."))
                await go(ctx, "menu", remember=False)
            else:
                await not_linked(ctx)
        case ValidationButton() as button:
            await on_validation_answer(ctx, button)
        case _:  # a casework button in a form no message of ours carries
            await not_linked(ctx)


async def on_validation_answer(ctx: TurnContext, button: ValidationButton) -> None:
    reference = button.reference
    outcome = await ctx.services.casework.record_validation(ctx.worker, reference, button.answer)
    _ = ctx._
    if outcome == ValidationAnswer.NOT_APPLICABLE:
        await not_linked(ctx)
        return
    if outcome == ValidationAnswer.CLOSED:
        ctx.say(
            _(
                "Thank you. Your report {reference} is now closed. If the problem comes back, "
                "or anyone treats you badly because you complained, tell us with /report."
            ).format(reference=reference)
        )
    elif outcome == ValidationAnswer.REOPENED:
        ctx.say(
            _(
                "Thank you for telling us. Your report {reference} is open again, "
                "and our staff will work on it."
            ).format(reference=reference)
        )
    else:
        ctx.say(_("Thank you. Our staff will look at it again and decide with you."))
    ctx.state.data["comment_ref"] = reference
    await go(ctx, "validation.comment")


@register
class CommentStep(Step):
    name = "validation.comment"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._("Do you want to add a comment? Type it now, or press Skip."),
            (Choice(ctx._("Skip"), SKIP), *ctx.nav_choices(back=False)),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload != SKIP:
            return False
        ctx.state.data.pop("comment_ref", None)
        await go(ctx, "menu", remember=False)
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        return await save_message(ctx, "comment_ref", text)

    async def on_media(self, ctx: TurnContext, inbound: Inbound) -> bool:
        return await save_file(ctx, "comment_ref", inbound)


@register
class FollowupStep(Step):
    name = "followup.answer"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._(
                "Type your answer to our staff. It will be added to your report {reference}."
            ).format(reference=ctx.state.data.get("followup_ref", "")),
            tuple(ctx.nav_choices(back=False)),
        )

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        return await save_message(ctx, "followup_ref", text)

    async def on_media(self, ctx: TurnContext, inbound: Inbound) -> bool:
        return await save_file(ctx, "followup_ref", inbound)


async def save_file(ctx: TurnContext, key: str, inbound: Inbound) -> bool:
    """A photo, document or voice note as the answer (voice suits workers who cannot write)."""
    if inbound.fetch is None or inbound.media in ("sticker", "animation"):
        return False
    reference = ctx.state.data.get(key, "")
    outcome = await ctx.services.casework.add_worker_file(
        ctx.worker, reference, inbound.media, inbound.fetch, inbound.mime or None
    )
    if outcome is EvidenceOutcome.OVER_QUOTA:
        ctx.say(
            ctx._("This file was not added: you have sent as many files as one account can in "
                  "24 hours. You can still type your answer.")
        )  # fmt: skip
        return True
    if outcome is not EvidenceOutcome.STORED:
        ctx.say(
            refusal_message(ctx, outcome)
            if outcome in (EvidenceOutcome.UNSUPPORTED, EvidenceOutcome.REFUSED)
            else ctx._("I could not receive this file. Please try again.")
        )
        return True
    ctx.state.data.pop(key, None)
    if inbound.text.strip():
        await ctx.services.casework.add_worker_message(ctx.worker, reference, inbound.text.strip())
    ctx.say(ctx._("Thank you. Your message was added to your report."))
    await go(ctx, "menu", remember=False)
    return True


async def save_message(ctx: TurnContext, key: str, text: str) -> bool:
    if not text.strip():
        return False
    reference = ctx.state.data.pop(key, "")
    if not await ctx.services.casework.add_worker_message(ctx.worker, reference, text.strip()):
        await not_linked(ctx)
        return True
    ctx.say(ctx._("Thank you. Your message was added to your report."))
    await go(ctx, "menu", remember=False)
    return True


async def on_retaliation_answer(ctx: TurnContext, button: RetaliationButton) -> None:
    code = ctx.services.cases.new_receipt_code()
    opened = await ctx.services.casework.record_retaliation_answer(
        ctx.worker, button.reference, button.answer, code
    )
    _ = ctx._
    if opened is None:
        ctx.say(_("Thank you. We are glad to hear it. You can always tell us with /report."))
        await go(ctx, "menu", remember=False)
        return
    opened_reference, new = opened
    if not new:  # pressed again: the case exists, and its code was shown the first time
        ctx.say(_("Case reference: {reference}").format(reference=opened_reference))
        await go(ctx, "menu", remember=False)
        return
    alerted = await ctx.services.cases.can_alert_staff()
    ctx.replies.append(
        Outbound(
            "\n".join(
                [
                    _(
                        "Thank you for telling us. We opened a new urgent report about this, "
                        "and our staff have been alerted."
                    )
                    if alerted
                    else _("Thank you for telling us. We opened a new urgent report about this."),
                    "",
                    _("Case reference: {reference}").format(reference=opened_reference),
                    _("Secret receipt code: {code}").format(code=code),
                    "",
                    _(
                        "Write both down and keep them safe. With them you can check your case "
                        "with /status, even from another phone. Do not show the code to anyone: "
                        "we will not show it again."
                    ),
                    *unprotected_code_advice(ctx),
                ]
            ),
            protect_content=True,
        )
    )
    if not alerted:  # no staff chat: the alert would wait, so the worker hears the truth
        ctx.say(await staff_not_alerted(ctx, await profile_workplace(ctx)))
    ctx.state.data["comment_ref"] = opened_reference
    await go(ctx, "validation.comment")


@register
class SitePanelStep(Step):
    """Asked after a report that names a listed workplace."""

    name = "site.optin"

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._(
                "May we sometimes ask you short questions about your workplace? "
                "We will never mention your report."
            ),
            (Choice(ctx._("Yes"), PANEL_YES), Choice(ctx._("No"), PANEL_NO)),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload not in (PANEL_YES, PANEL_NO):
            return False
        reference = ctx.state.data.pop("panel_ref", "")
        if payload == PANEL_YES and await ctx.services.casework.join_site_panel(
            ctx.worker, reference
        ):
            ctx.say(ctx._("Thank you. We may ask you now and then."))
        await go(ctx, "menu", remember=False)
        return True

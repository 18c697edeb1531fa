"""Checking a case with its reference and receipt code, from any chat, and withdrawing it.

A wrong reference and a wrong code get the same answer, and guesses are throttled by the case
service. The message holding the code is deleted from the chat once read. After a correct
reference and code, a case that has not ended can be withdrawn: the conversation keeps a
short-lived proof from the case service, never the code.
"""

from __future__ import annotations

from conversations.channel_words import code_message_erased
from conversations.messages import Choice, Outbound
from conversations.ports import CaseStatusView, StatusOutcome, WithdrawOutcome
from conversations.turn import NAV_MENU, Step, TurnContext, go, register
from domain.statuses import OPEN, CaseStatus
from locales import N_

STATUS_WITHDRAW = "status:withdraw"
WITHDRAW_YES = "withdraw:yes"
WITHDRAW_NO = "withdraw:no"
#: Conversation data between the status check and the worker's confirmation.
WITHDRAW_PROOF = "withdraw_proof"
WITHDRAW_REFERENCE = "withdraw_reference"

#: What each stage means, in words a worker can act on.
STAGES: dict[CaseStatus, tuple[str, str]] = {
    CaseStatus.RECEIVED: (
        N_("Received"),
        N_("Your report has arrived. Staff have not looked at it yet."),
    ),
    CaseStatus.ACKNOWLEDGED: (
        N_("Acknowledged"),
        N_("Staff have read your report and will look into it."),
    ),
    CaseStatus.INVESTIGATING: (
        N_("Being looked into"),
        N_("Staff are finding out more and talking to the people who can fix it."),
    ),
    CaseStatus.AWAITING_VALIDATION: (
        N_("Waiting for your answer"),
        N_("The employer says the problem was fixed. We will ask you if this is true."),
    ),
    CaseStatus.REOPENED: (
        N_("Reopened"),
        N_("Workers said the problem was not really fixed. Staff are working on it again."),
    ),
    CaseStatus.CLOSED: (N_("Closed"), N_("Workers confirmed that the problem was fixed.")),
    CaseStatus.CLOSED_UNVALIDATED: (
        N_("Closed by staff"),
        N_("Staff closed the case without workers confirming the fix."),
    ),
    CaseStatus.WITHDRAWN: (N_("Withdrawn"), N_("The report was withdrawn.")),
}


#: Waiting for the worker's answer, but the chat they reported from was unlinked with /forget:
#: nobody will ask them (the case records it and staff are told, ``services/casework.py``).
UNASKABLE = N_(
    "The employer says the problem was fixed. We cannot ask you if this is true: the chat "
    "you sent the report from was unlinked with /forget. If it was not really fixed, tell us "
    "with /report."
)


def describe(ctx: TurnContext, case: CaseStatusView) -> str:
    _ = ctx._
    stage, meaning = STAGES.get(case.status, (case.status, ""))
    if case.status == CaseStatus.AWAITING_VALIDATION and not case.reporter_linked:
        meaning = UNASKABLE
    lines = [
        _("Case {reference}").format(reference=case.reference),
        _("Stage: {stage}").format(stage=_(stage)),
        _(meaning),
    ]
    if case.status == CaseStatus.RECEIVED:
        lines.append(
            _("Staff should confirm they have it by {date}.").format(
                date=ctx.t.date(case.acknowledge_due.date())
            )
        )
    elif case.status in OPEN:
        lines.append(
            _("We aim to respond by {date}.").format(date=ctx.t.date(case.response_due.date()))
        )
    lines.append("")
    if case.staff_messages:
        lines.append(_("Messages from staff:"))
        lines += [f"{ctx.t.date(m.at.date())}: {m.text}" for m in case.staff_messages]
    else:
        lines.append(_("No messages from staff yet."))
    return "\n".join(lines)


@register
class ReferenceStep(Step):
    name = "status.reference"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._("Type your case reference. It looks like this: K7M3-9Q2X"),
            tuple(ctx.nav_choices()),
        )

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        symbols = "".join(ch for ch in text if ch.isalnum())
        if len(symbols) != 8:
            ctx.say(
                ctx._(
                    "That does not look like a case reference. It has 8 letters and numbers, "
                    "like K7M3-9Q2X."
                )
            )
            await self.enter(ctx)
            return True
        ctx.state.data["status_reference"] = text.strip()[:32]
        await go(ctx, "status.code")
        return True


@register
class CodeStep(Step):
    name = "status.code"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(ctx._("Now type your secret receipt code."), tuple(ctx.nav_choices()))

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        reference = ctx.state.data.pop("status_reference", "")
        ctx.erase_inbound = True  # the code must not stay visible in the chat
        result = await ctx.services.cases.check_status(ctx.worker.pseudonym, reference, text)
        if result.outcome is StatusOutcome.FOUND and result.case is not None:
            ctx.replies.append(Outbound(describe(ctx, result.case), protect_content=True))
            ctx.say(code_message_erased(ctx))
            if result.case.withdraw_token is not None:
                ctx.state.data[WITHDRAW_PROOF] = result.case.withdraw_token
                ctx.state.data[WITHDRAW_REFERENCE] = result.case.reference
                await go(ctx, "status.found", remember=False)
                return True
        elif result.outcome is StatusOutcome.THROTTLED:
            ctx.say(ctx._("Too many tries. For your safety, please wait 15 minutes and try again."))
        else:
            ctx.say(
                ctx._(
                    "We could not find a case with that reference and code. "
                    "Please check both and try again with /status."
                )
            )
        await after_status(ctx)
        return True


async def after_status(ctx: TurnContext) -> None:
    """The menu, or for someone on a new phone who has not onboarded, the language picker."""
    await go(ctx, "menu" if ctx.state.onboarded else "language", remember=False)


@register
class FoundStep(Step):
    """After a case was shown: withdraw it, or go on to the menu."""

    name = "status.found"

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        return Outbound(
            _("If you no longer want staff to look into this report, you can withdraw it."),
            (
                Choice(_("Withdraw this report"), STATUS_WITHDRAW),
                Choice("☰ " + _("Menu"), NAV_MENU),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload != STATUS_WITHDRAW:
            return False
        await go(ctx, "status.withdraw")
        return True


@register
class WithdrawStep(Step):
    """Confirm the withdrawal; keeping the report is the first choice."""

    name = "status.withdraw"

    def prompt(self, ctx: TurnContext) -> Outbound:
        _ = ctx._
        reference = ctx.state.data.get(WITHDRAW_REFERENCE, "")
        text = "\n\n".join(
            [
                _("Withdraw report {reference}?").format(reference=reference),
                _(
                    "This deletes at once everything you wrote and every file you sent for this "
                    "report, and the messages between you and staff. It cannot be undone."
                ),
                _("Staff will be told only that report {reference} was withdrawn.").format(
                    reference=reference
                ),
            ]
        )
        return Outbound(
            text,
            (
                Choice(_("No, keep my report"), WITHDRAW_NO),
                Choice("🗑 " + _("Yes, withdraw and delete"), WITHDRAW_YES),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload not in (WITHDRAW_YES, WITHDRAW_NO):
            return False
        token = ctx.state.data.pop(WITHDRAW_PROOF, None)
        reference = ctx.state.data.pop(WITHDRAW_REFERENCE, "")
        if payload == WITHDRAW_YES:
            outcome = WithdrawOutcome.NOT_POSSIBLE
            if isinstance(token, str):
                outcome = await ctx.services.cases.withdraw(ctx.worker.pseudonym, token)
            ctx.say(withdrawn_text(ctx, reference) if outcome is WithdrawOutcome.WITHDRAWN
                    else ctx._("This report can no longer be withdrawn. You can check it "
                               "again with /status."))  # fmt: skip
        await after_status(ctx)
        return True


def withdrawn_text(ctx: TurnContext, reference: str) -> str:
    """Exactly what was deleted and what was kept (``services/retention.py``)."""
    _ = ctx._
    return "\n\n".join(
        [
            _("Report {reference} is withdrawn.").format(reference=reference),
            _(
                "Deleted now: everything you wrote and every file you sent for this report, and "
                "the messages between you and staff. The report is no longer linked to this chat."
            ),
            _(
                "Kept, so that reports can still be counted: the kind of problem, the workplace "
                "if you chose it from the list, the answers you chose with buttons, the steps the "
                "case went through, and the dates (the day only)."
            ),
            _(
                "This does not delete the messages in this chat; /forget erases what it can "
                "of them."
            ),
        ]
    )

"""Reporting a problem: what, where, what happened, when, how many, danger, sharing, review.

The draft is a :class:`~conversations.report_state.ReportDraftState` kept in the (encrypted)
conversation state; evidence files go straight to the case service, stored under the draft's key.
Nothing becomes a case until the worker confirms, and confirming twice gives the same case.
"""

from __future__ import annotations

import math
import uuid

from conversations.categories import (
    AFFECTED,
    CATEGORIES,
    CONFIDENTIALITY,
    OCCURRED,
    URGENT_CATEGORIES,
    is_urgent,
)
from conversations.channel_words import unprotected_code_advice
from conversations.messages import Choice, Inbound, Outbound
from conversations.ports import CaseReceipt, EvidenceOutcome
from conversations.report_state import ChoiceField, ReportDraftState
from conversations.turn import STEPS, Step, TurnContext, go, register, typed_choices
from locales import N_

ORDER = (
    "report.categories",
    "report.workplace",
    "report.agency",
    "report.details",
    "report.occurred",
    "report.affected",
    "report.danger",
    "report.confidentiality",
    "report.review",
)
DONE = "report:done"
CANCEL_KEEP = "cancel:no"
CANCEL_DELETE = "cancel:yes"
#: Set while "Start a new report" waits for its confirmation: deleting then starts a new one.
AFTER_DELETE = "report_after_delete"
MAX_DETAIL_ITEMS = 50
MAX_LISTED_WORKPLACES = 20
PREVIEW_CHARACTERS = 300


def refusal_message(ctx: TurnContext, outcome: EvidenceOutcome) -> str:
    """Why a file was not kept: not a type the bot cleans, or one it could not clean safely."""
    if outcome is EvidenceOutcome.UNSUPPORTED:
        return ctx._(
            "I can't keep this type of file. Please send a photo, a PDF document or a voice note."
        )
    return ctx._(
        "I could not safely check this file, so I did not keep it. It may be too large, too "
        "complex, damaged or protected by a password. Please send a photo or a screenshot of "
        "it instead."
    )


def has_draft(ctx: TurnContext) -> bool:
    return bool(ReportDraftState.load(ctx.state).categories)


async def start_report(ctx: TurnContext, categories: tuple[str, ...] = ()) -> None:
    """Begin a new report (a lesson may preselect its category), or offer to resume one."""
    if has_draft(ctx):  # never drop an unfinished report silently
        ctx.state.data["report_preselect"] = list(categories)
        await go(ctx, "report.resume")
        return
    wait = await ctx.services.cases.report_wait(ctx.worker.pseudonym)
    if wait:  # refused before the worker writes anything, so no report is ever lost
        await refuse_over_quota(ctx, wait)
        return
    await discard(ctx)
    ReportDraftState(key=str(uuid.uuid4()), categories=list(categories)).save(ctx.state)
    ctx.say(
        ctx._(
            "Let's report a problem. It takes a few minutes. Your name is not needed. "
            "You can go Back or Cancel at any time."
        )
    )
    await go(ctx, "report.categories")


async def discard(ctx: TurnContext) -> None:
    key = ReportDraftState.load(ctx.state).key
    if key:
        await ctx.services.cases.discard_draft(key)
    ReportDraftState.remove(ctx.state)


async def advance(ctx: TurnContext, current: str) -> None:
    """Go to the step after ``current`` — or back to the review when the worker was editing."""
    report = ReportDraftState.load(ctx.state)
    editing = report.editing
    if editing:
        report.editing = False
        report.save(ctx.state)
    if editing and current != "report.confidentiality":
        await go(ctx, "report.review", remember=False)
        return
    await go(ctx, ORDER[ORDER.index(current) + 1])


async def show_emergency_contacts(ctx: TurnContext) -> None:
    report = ReportDraftState.load(ctx.state)
    if report.contacts_shown:
        return
    report.contacts_shown = True
    report.save(ctx.state)
    contacts = await ctx.services.cases.emergency_contacts(ctx.t.language, report.workplace_id)
    lines = [ctx._("If you or someone else is in danger now:")]
    lines.append(
        contacts
        or ctx._(
            "Go to a safe place if you can, and call the local emergency number. "
            "Our staff will see your report first."
        )
    )
    ctx.say("🆘 " + "\n\n".join(lines))


async def profile_workplace(ctx: TurnContext) -> int | None:
    """The workplace the worker chose for news (its country's emergency contacts), if any."""
    profile = await ctx.services.profiles.find(ctx.worker.pseudonym)
    return profile.workplace_id if profile else None


async def danger_contacts(ctx: TurnContext, workplace_id: int | None) -> str:
    """🆘 and the emergency contacts of the workplace's country, or what to do without them."""
    contacts = await ctx.services.cases.emergency_contacts(ctx.t.language, workplace_id)
    return (
        "🆘 "
        + ctx._("If you or someone else is in danger now:")
        + "\n\n"
        + (contacts or ctx._("Go to a safe place if you can, and call the local emergency number."))
    )


async def staff_not_alerted(ctx: TurnContext, workplace_id: int | None) -> str:
    """An urgent report while no alert can reach staff (no staff chat is configured, or it is
    unfit): the truth, and where to turn meanwhile."""
    return (
        ctx._(
            "We cannot alert our staff right now. They will see your report when they next "
            "check for new reports."
        )
        + "\n\n"
        + await danger_contacts(ctx, workplace_id)
    )


async def refuse_over_quota(ctx: TurnContext, wait_seconds: int) -> None:
    """The worker sent as many reports as one account may in a day: say when they can report
    again, and give the emergency contacts, since someone may be in danger now."""
    hours = math.ceil(wait_seconds / 3600)
    ctx.say(
        ctx._(
            "You have already sent as many reports as one account can in 24 hours. "
            "The reports you sent are kept, and staff will read them."
        )
        + "\n\n"
        + ctx.t.ngettext(
            "You can send a new report in about {count} hour.",
            "You can send a new report in about {count} hours.",
            hours,
        ).format(count=ctx.t.number(hours))
        + "\n\n"
        + await danger_contacts(ctx, await profile_workplace(ctx))
    )
    await go(ctx, "menu" if ctx.state.onboarded else "language", remember=False)


def labelled(ctx: TurnContext, options: dict[str, str], prefix: str) -> tuple[Choice, ...]:
    return tuple(Choice(ctx._(label), f"{prefix}:{code}") for code, label in options.items())


def answered(report: ReportDraftState, step: str) -> bool:
    """Whether the question of ``step`` (one of ``ORDER``) has its answer in the draft."""
    if step == "report.categories":
        return bool(report.categories)
    if step == "report.workplace":
        return report.workplace_answered
    if step == "report.agency":
        return report.agency_answered
    if step == "report.details":
        return bool(report.details) or report.files > 0
    return report.has_answer(QUESTIONS[step])


def first_unanswered(report: ReportDraftState) -> str | None:
    return next((step for step in ORDER[:-1] if not answered(report, step)), None)


async def continue_draft(ctx: TurnContext) -> None:
    """Back into an unfinished report at its first unanswered question, with the questions
    before it as the trail Back walks (as if the worker had just answered them); a draft with
    every answer goes to the review."""
    missing = first_unanswered(ReportDraftState.load(ctx.state))
    if missing is None:
        await go(ctx, "report.review", remember=False)
        return
    ctx.state.history = list(ORDER[: ORDER.index(missing)])
    ctx.state.step = missing
    await STEPS[missing].enter(ctx)


@register
class ResumeStep(Step):
    name = "report.resume"

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._("You have a report you did not finish. Do you want to continue it?"),
            (
                Choice("▶ " + ctx._("Continue my report"), "resume:continue"),
                Choice("🗑 " + ctx._("Start a new report"), "resume:new"),
                *ctx.nav_choices(back=False),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload == "resume:continue":
            ctx.state.data.pop("report_preselect", None)
            report = ReportDraftState.load(ctx.state)
            report.editing = False
            report.save(ctx.state)
            await continue_draft(ctx)
        elif payload == "resume:new":
            wait = await ctx.services.cases.report_wait(ctx.worker.pseudonym)
            if wait:  # the unfinished report is kept: it can still be sent
                await refuse_over_quota(ctx, wait)
                return True
            # Starting over deletes the unfinished report: asked once more (report.cancel).
            ctx.state.data[AFTER_DELETE] = True
            await go(ctx, "report.cancel")
        else:
            return False
        return True


@register
class CategoriesStep(Step):
    name = "report.categories"

    def prompt(self, ctx: TurnContext) -> Outbound:
        chosen = set(ReportDraftState.load(ctx.state).categories)
        choices = [
            Choice(("✅ " if code in chosen else "▫️ ") + ctx._(label), f"cat:{code}")
            for code, label in CATEGORIES.items()
        ]
        choices.append(Choice("✔ " + ctx._("Done"), DONE))
        return Outbound(
            ctx._("What is the problem about? Choose all that apply, then press Done."),
            (*choices, *ctx.nav_choices()),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        report = ReportDraftState.load(ctx.state)
        if payload == DONE:
            if not report.categories:
                ctx.say(ctx._("Please choose at least one problem first."))
                await self.enter(ctx)
                return True
            if any(code in URGENT_CATEGORIES for code in report.categories):
                await show_emergency_contacts(ctx)
            await advance(ctx, self.name)
            return True
        code = payload.removeprefix("cat:")
        if not payload.startswith("cat:") or code not in CATEGORIES:
            return False
        if code in report.categories:
            report.categories.remove(code)
        else:
            report.categories.append(code)
        report.save(ctx.state)
        prompt = self.prompt(ctx)
        ctx.replies.append(
            Outbound(prompt.text, prompt.choices, prompt.columns, replace_previous=True)
        )
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        """Several problems typed at once, "2, 12" or "2 12": each is chosen (one already chosen
        stays chosen: a worker typing their whole list again means all of it). A list naming
        anything but problems (Done, Back, a number too high) changes nothing."""
        typed = typed_choices(self.prompt(ctx).choices, text)
        if typed is None or not all(payload.startswith("cat:") for payload in typed):
            return False
        report = ReportDraftState.load(ctx.state)
        codes = [payload.removeprefix("cat:") for payload in typed]
        report.categories += [code for code in codes if code not in report.categories]
        report.save(ctx.state)
        await self.enter(ctx)
        return True


@register
class WorkplaceStep(Step):
    name = "report.workplace"

    def prompt(self, ctx: TurnContext) -> Outbound:
        options = ReportDraftState.load(ctx.state).workplaces_offered
        choices = [Choice("🏭 " + name, f"wp:{wid}") for wid, name in options]
        choices += [
            Choice("✏ " + ctx._("Another place: type its name"), "wp:other"),
            Choice("🤐 " + ctx._("I prefer not to say"), "wp:skip"),
        ]
        return Outbound(
            ctx._("Where did it happen? Choose the workplace, or type its name."),
            (*choices, *ctx.nav_choices()),
        )

    async def enter(self, ctx: TurnContext) -> None:
        workplaces = await ctx.services.cases.workplaces()
        report = ReportDraftState.load(ctx.state)
        report.workplaces_offered = [(w.id, w.name) for w in workplaces[:MAX_LISTED_WORKPLACES]]
        report.save(ctx.state)
        await super().enter(ctx)

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        report = ReportDraftState.load(ctx.state)
        if payload == "wp:other":
            await go(ctx, "report.workplace_text")
            return True
        if payload == "wp:skip":
            report.answer_workplace(None, None)
        elif payload.startswith("wp:") and payload[3:].isdecimal():
            known = {wid for wid, _ in report.workplaces_offered}
            if int(payload[3:]) not in known:
                return False
            report.answer_workplace(int(payload[3:]), None)
        else:
            return False
        report.save(ctx.state)
        await advance(ctx, self.name)
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        return await WorkplaceTextStep.take(ctx, text, after=self.name)


@register
class WorkplaceTextStep(Step):
    name = "report.workplace_text"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._("Type the name of the workplace (and the town, if you can)."),
            tuple(ctx.nav_choices()),
        )

    @staticmethod
    async def take(ctx: TurnContext, text: str, after: str) -> bool:
        name = text.strip()[:300]
        if not name:
            return False
        report = ReportDraftState.load(ctx.state)
        known = {n.casefold(): wid for wid, n in report.workplaces_offered}
        workplace_id = known.get(name.casefold())
        report.answer_workplace(workplace_id, name if workplace_id is None else None)
        report.save(ctx.state)
        await advance(ctx, after)
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        return await self.take(ctx, text, after="report.workplace")


@register
class AgencyStep(Step):
    name = "report.agency"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._(
                "Was a recruitment agency or a broker involved? If yes, type its name. "
                "If not, or you don't know, press No."
            ),
            (Choice(ctx._("No, or I don't know"), "agency:none"), *ctx.nav_choices()),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload != "agency:none":
            return False
        self._answer(ctx, None)
        await advance(ctx, self.name)
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        if not text.strip():
            return False
        typed = text.strip()
        # "press No" typed as a word (the console lists this step's choices without numbers):
        # no agency is called "No".
        no = typed.casefold() in ("no", ctx._("No").casefold())
        self._answer(ctx, None if no else typed[:300])
        await advance(ctx, self.name)
        return True

    @staticmethod
    def _answer(ctx: TurnContext, agency: str | None) -> None:
        report = ReportDraftState.load(ctx.state)
        report.answer_agency(agency)
        report.save(ctx.state)


@register
class DetailsStep(Step):
    name = "report.details"
    free_text = True

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._(
                "Tell us what happened, in your own words. You can send several messages, "
                "and photos, documents or voice notes. You do not need to give your name. "
                "When you have finished, press Done."
            ),
            self._choices(ctx),
        )

    def _choices(self, ctx: TurnContext) -> tuple[Choice, ...]:
        return (Choice("✔ " + ctx._("Done"), DONE), *ctx.nav_choices())

    def _count(self, report: ReportDraftState) -> int:
        return len(report.details) + report.files

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload != DONE:
            return False
        if self._count(ReportDraftState.load(ctx.state)) == 0:
            ctx.say(ctx._("Please tell us at least a little about what happened first."))
            await self.enter(ctx)
            return True
        await advance(ctx, self.name)
        return True

    async def on_text(self, ctx: TurnContext, text: str) -> bool:
        report = ReportDraftState.load(ctx.state)
        if text.strip().casefold() in ("done", ctx._("Done").casefold()):
            return await self.on_choice(ctx, DONE)
        if not text.strip():
            return False
        if self._count(report) >= MAX_DETAIL_ITEMS:
            self._full(ctx)
            return True
        report.details.append(text.strip())
        report.save(ctx.state)
        ctx.say(ctx._("Added. Send more, or press Done."), *self._choices(ctx))
        return True

    async def on_media(self, ctx: TurnContext, inbound: Inbound) -> bool:
        report = ReportDraftState.load(ctx.state)
        if inbound.media in ("sticker", "animation") or inbound.fetch is None:
            return False
        if self._count(report) >= MAX_DETAIL_ITEMS:
            self._full(ctx)
            return True
        outcome = await ctx.services.cases.add_evidence(
            report.draft_key(),
            inbound.media,
            inbound.fetch,
            inbound.mime or None,
            pseudonym=ctx.worker.pseudonym,
        )
        if outcome is EvidenceOutcome.STORED:
            report.files += 1
            if inbound.text.strip():  # a caption is part of the story
                report.details.append(inbound.text.strip())
            report.save(ctx.state)
            message = ctx._("File added. Send more, or press Done.")
        elif outcome is EvidenceOutcome.TOO_LARGE:
            message = ctx._("This file is too big. Please send a smaller one (up to 20 MB).")
        elif outcome is EvidenceOutcome.OVER_QUOTA:
            message = ctx._(
                "This file was not added: you have sent as many files as one account can in "
                "24 hours. Your report goes on: you can still type what happened, then press Done."
            )
        elif outcome in (EvidenceOutcome.UNSUPPORTED, EvidenceOutcome.REFUSED):
            message = refusal_message(ctx, outcome)
        else:
            message = ctx._("I could not receive this file. Please try again.")
        ctx.say(message, *self._choices(ctx))
        return True

    def _full(self, ctx: TurnContext) -> None:
        ctx.say(
            ctx._("This report cannot take more messages. Please press Done."),
            *self._choices(ctx),
        )

    def reprompt_hint(self, ctx: TurnContext, inbound: Inbound) -> str:
        if inbound.media in ("sticker", "animation"):
            return ctx._("Please send text, photos, documents or voice notes.")
        return super().reprompt_hint(ctx, inbound)


class ChoiceQuestion(Step):
    """A question answered by one of a fixed set of choices."""

    options: dict[str, str]
    prefix: str
    question: str
    field_name: ChoiceField

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._(self.question),
            (*labelled(ctx, self.options, self.prefix), *ctx.nav_choices()),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        code = payload.removeprefix(self.prefix + ":")
        if not payload.startswith(self.prefix + ":") or code not in self.options:
            return False
        report = ReportDraftState.load(ctx.state)
        report.choose(self.field_name, code)
        report.save(ctx.state)
        await self.answered(ctx, code)
        return True

    async def answered(self, ctx: TurnContext, code: str) -> None:
        await advance(ctx, self.name)


@register
class OccurredStep(ChoiceQuestion):
    name = "report.occurred"
    options = OCCURRED
    prefix = "when"
    question = N_("When did it happen?")
    field_name = "occurred"


@register
class AffectedStep(ChoiceQuestion):
    name = "report.affected"
    options = AFFECTED
    prefix = "who"
    question = N_("How many workers does this affect?")
    field_name = "affected"


YES_NO = {"yes": N_("Yes"), "no": N_("No")}


@register
class DangerStep(ChoiceQuestion):
    name = "report.danger"
    options = YES_NO
    prefix = "danger"
    question = N_("Is anyone in danger right now?")
    field_name = "danger"

    async def answered(self, ctx: TurnContext, code: str) -> None:
        if code == "yes":
            await show_emergency_contacts(ctx)
        await advance(ctx, self.name)


@register
class ConfidentialityStep(ChoiceQuestion):
    name = "report.confidentiality"
    options = CONFIDENTIALITY
    prefix = "share"
    question = N_(
        "Who may see the details? We never share your name or your account.\n"
        "• Share: we may tell the employer or the buyer what happened, so they can fix it.\n"
        "• Confidential: only our staff use it, to follow the situation."
    )
    field_name = "confidentiality"

    async def answered(self, ctx: TurnContext, code: str) -> None:
        report = ReportDraftState.load(ctx.state)
        if code == "share" and report.affected == "me":
            # WSR: warn before the worker confirms details that could identify them anyway.
            await go(ctx, "report.warning")
            return
        report.editing = False
        report.save(ctx.state)
        await go(ctx, "report.review", remember=False)


@register
class IdentityWarningStep(Step):
    name = "report.warning"

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            "⚠ "
            + ctx._(
                "Careful: you said this happened only to you. If we share the details, "
                "the employer may guess who reported it, even without your name."
            ),
            (
                Choice("🔒 " + ctx._("Keep it confidential"), "warn:confidential"),
                Choice(ctx._("Share anyway"), "warn:share"),
                *ctx.nav_choices(),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload not in ("warn:confidential", "warn:share"):
            return False
        report = ReportDraftState.load(ctx.state)
        report.confidentiality = payload.removeprefix("warn:")
        report.warned = True
        report.editing = False
        report.save(ctx.state)
        await go(ctx, "report.review", remember=False)
        return True


QUESTIONS: dict[str, ChoiceField] = {
    step.name: step.field_name
    for step in (OccurredStep, AffectedStep, DangerStep, ConfidentialityStep)
}
"""Which answer of the draft each choice question's step fills in."""

SECTIONS = {
    "categories": ("report.categories", N_("What the problem is about")),
    "workplace": ("report.workplace", N_("Workplace")),
    "agency": ("report.agency", N_("Agency or broker")),
    "details": ("report.details", N_("What happened")),
    "occurred": ("report.occurred", N_("When")),
    "affected": ("report.affected", N_("Workers affected")),
    "danger": ("report.danger", N_("Danger now")),
    "confidentiality": ("report.confidentiality", N_("Who may see the details")),
}


@register
class ReviewStep(Step):
    name = "report.review"

    def prompt(self, ctx: TurnContext) -> Outbound:
        report = ReportDraftState.load(ctx.state)
        _ = ctx._
        if first_unanswered(report) is not None:  # a draft with a question still open
            return Outbound(
                _("Some questions are not answered yet."),
                (Choice("▶ " + _("Continue my report"), "review:continue"), *ctx.nav_choices()),
            )
        workplace = report.workplace_text or next(
            (n for wid, n in report.workplaces_offered if wid == report.workplace_id), None
        )
        story = " ".join(report.details)
        if len(story) > PREVIEW_CHARACTERS:
            story = story[:PREVIEW_CHARACTERS].rstrip() + "…"
        files = report.files
        lines = [
            _("Please check your report:"),
            "",
            "• " + _("What the problem is about") + ": "
            + "; ".join(_(CATEGORIES[c]) for c in report.categories),
            "• " + _("Workplace") + ": " + (workplace or _("Not given")),
            "• " + _("Agency or broker") + ": " + (report.agency or _("None")),
            "• " + _("What happened") + ": " + (f"“{story}”" if story else "—"),
        ]  # fmt: skip
        if files:
            lines.append(
                "  "
                + ctx.t.ngettext("{count} file", "{count} files", files).format(
                    count=ctx.t.number(files)
                )
            )
        occurred = OCCURRED[report.answer("occurred")]
        affected = AFFECTED[report.answer("affected")]
        danger = YES_NO[report.answer("danger")]
        sharing = CONFIDENTIALITY[report.answer("confidentiality")]
        lines += [
            "• " + _("When") + ": " + _(occurred),
            "• " + _("Workers affected") + ": " + _(affected),
            "• " + _("Danger now") + ": " + _(danger),
            "• " + _("Who may see the details") + ": " + _(sharing),
        ]
        return Outbound(
            "\n".join(lines),
            (
                Choice("✔ " + _("Send the report"), "review:send"),
                Choice("✏ " + _("Change something"), "review:edit"),
                Choice("✖ " + _("Cancel the report"), "nav:cancel"),
            ),
        )

    async def enter(self, ctx: TurnContext) -> None:
        # The receipt code is drawn here, one turn before sending, and kept (encrypted, in the
        # state) until the case exists: a retry after a crash between committing the case and
        # saving the state shows the very code the stored hash was made from.
        report = ReportDraftState.load(ctx.state)
        if not report.receipt:
            report.receipt = ctx.services.cases.new_receipt_code()
            report.save(ctx.state)
        await super().enter(ctx)

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        if payload == "review:continue":
            await continue_draft(ctx)
        elif payload == "review:edit":
            await go(ctx, "report.edit")
        elif payload == "review:send":
            await submit(ctx)
        else:
            return False
        return True


@register
class CancelStep(Step):
    """Asked before a started report is deleted (Cancel, pressed or typed, while there is a
    draft): one wrong tap must not lose a report that took minutes. Keeping it comes first."""

    name = "report.cancel"

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._(
                "Delete this report? What you wrote and the files you sent for it will be "
                "deleted. Nothing is sent to staff."
            ),
            (
                Choice(ctx._("No, keep it"), CANCEL_KEEP),
                Choice("🗑 " + ctx._("Yes, delete it"), CANCEL_DELETE),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        start_new = bool(ctx.state.data.get(AFTER_DELETE))
        if payload in (CANCEL_KEEP, CANCEL_DELETE):
            ctx.state.data.pop(AFTER_DELETE, None)
        if payload == CANCEL_KEEP:  # back where Cancel was pressed, the report as it was
            ctx.state.step = ctx.state.pop() or "menu"
            await STEPS[ctx.state.step].enter(ctx)
        elif payload == CANCEL_DELETE and start_new:  # "Start a new report", confirmed
            preselected = tuple(ctx.state.data.pop("report_preselect", ()))
            await discard(ctx)
            await start_report(ctx, preselected)  # with a lesson's category, if it came from one
        elif payload == CANCEL_DELETE:
            await discard(ctx)
            ctx.state.data.clear()
            ctx.say(ctx._("Your report was deleted."))
            await go(ctx, "menu", remember=False)
        else:
            return False
        return True


@register
class EditStep(Step):
    name = "report.edit"

    def prompt(self, ctx: TurnContext) -> Outbound:
        return Outbound(
            ctx._("What do you want to change?"),
            (
                *(Choice(ctx._(label), f"edit:{key}") for key, (_, label) in SECTIONS.items()),
                *ctx.nav_choices(),
            ),
        )

    async def on_choice(self, ctx: TurnContext, payload: str) -> bool:
        section = SECTIONS.get(payload.removeprefix("edit:"))
        if not payload.startswith("edit:") or section is None:
            return False
        report = ReportDraftState.load(ctx.state)
        report.editing = True
        report.save(ctx.state)
        await go(ctx, section[0])
        return True


def acknowledgement_target(ctx: TurnContext, receipt: CaseReceipt) -> str:
    """When staff aim to confirm they have the report: within hours for an urgent case
    (WVB_URGENT_ACKNOWLEDGE_HOURS), else by a date."""
    hours = receipt.acknowledge_within_hours
    if hours is not None:
        return ctx.t.ngettext(
            "What happens next: this is urgent, so we aim to confirm we have your report "
            "within {count} hour.",
            "What happens next: this is urgent, so we aim to confirm we have your report "
            "within {count} hours.",
            hours,
        ).format(count=ctx.t.number(hours))
    return ctx._("What happens next: we will confirm we have your report by {date}.").format(
        date=ctx.t.date(receipt.acknowledge_due.date())
    )


async def submit(ctx: TurnContext) -> None:
    finished = ReportDraftState.load(ctx.state).finished(ctx.t.language)
    code = finished.receipt_code
    receipt = await ctx.services.cases.submit(ctx.worker, finished)
    _ = ctx._
    text = "\n".join(
        [
            "✅ " + _("Your report has been received."),
            "",
            _("Case reference: {reference}").format(reference=receipt.reference),
            _("Secret receipt code: {code}").format(code=code),
            "",
            _(
                "Write both down and keep them safe. With them you can check your case with "
                "/status, even from another phone. Do not show the code to anyone: "
                "we will not show it again."
            ),
            *unprotected_code_advice(ctx),
            "",
            acknowledgement_target(ctx, receipt),
            _("We aim to respond by {date}.").format(date=ctx.t.date(receipt.response_due.date())),
        ]
    )
    ReportDraftState.remove(ctx.state)
    ctx.replies.append(Outbound(text, protect_content=True))
    # The draft (with its receipt code) is dropped from the saved state only once the receipt
    # went out: killed before that, the worker presses Send again and sees this same receipt.
    ctx.deliver_first = True
    urgent = receipt.urgent or is_urgent(finished.categories, finished.danger_now)
    if urgent and not await ctx.services.cases.can_alert_staff():
        # Nobody can be alerted (no staff chat): an alert promised here would wait forever.
        ctx.say(
            ctx._("Your report is marked urgent.")
            + " "
            + await staff_not_alerted(ctx, finished.workplace_id)
        )
    elif receipt.alert_collapsed:
        ctx.say(
            ctx._(
                "Our staff were already alerted about an urgent report you sent in the last "
                "24 hours. This report is marked urgent too and is on their list of urgent cases."
            )
        )
    elif urgent:
        ctx.say(ctx._("Because someone may be in danger, our staff have been alerted now."))
    if finished.workplace_id is not None:
        ctx.state.data["panel_ref"] = receipt.reference
        await go(ctx, "site.optin", remember=False)
    else:
        await go(ctx, "menu", remember=False)

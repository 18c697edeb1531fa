"""Every message a worker reads outside a turn: sent through the outbox when staff act or a case
clock falls due, not in answer to something the worker just wrote.

They live here, beside the flows that read their buttons back, so the wording a worker sees is
written in one room; their buttons are built by ``domain/payloads.py``, which also reads them
back. Services and the case clock only choose which notice to send and to whom. Each is
``protect_content`` where it names a case.
"""

from __future__ import annotations

from collections.abc import Callable

from conversations.messages import Choice, Outbound
from domain import payloads
from domain.answers import Answer
from locales import Translator, translator


def answer_choices(t: Translator, payload: Callable[[Answer], str]) -> tuple[Choice, ...]:
    """The four answers to "was it really fixed?" ("Yes", "Partly", "No", "Not sure"), each
    with the payload ``payload(answer)``."""
    return (
        Choice("✅ " + t.gettext("Yes, it was fixed"), payload(Answer.YES)),
        Choice("➗ " + t.gettext("Partly"), payload(Answer.PARTLY)),
        Choice("❌ " + t.gettext("No, it was not fixed"), payload(Answer.NO)),
        Choice("❔ " + t.gettext("Not sure"), payload(Answer.UNSURE)),
    )


def validation_choices(t: Translator, reference: str) -> tuple[Choice, ...]:
    return answer_choices(t, lambda answer: payloads.validation(reference, answer))


def acknowledgement(language: str, reference: str) -> Outbound:
    t = translator(language)
    return Outbound(
        t.gettext(
            "Your report {reference} has been read by our staff. "
            "They will look into it and keep you informed here."
        ).format(reference=reference)
    )


def staff_reply(language: str, reference: str, text: str) -> Outbound:
    """An anonymous follow-up from staff, with the button that lets the worker answer it."""
    t = translator(language)
    heading = t.gettext("Message from our staff about your report {reference}:").format(
        reference=reference
    )
    return Outbound(
        heading + "\n\n" + text,
        (Choice(t.gettext("Answer"), payloads.followup(reference)),),
        protect_content=True,
    )


def validation_prompt(language: str, reference: str, summary: str, *, translated: bool) -> Outbound:
    """ "Did this really happen?" about the remediation staff recorded for the worker's case.
    ``translated`` is False when staff wrote no summary in the worker's language."""
    t = translator(language)
    lines = [
        t.gettext("About your report {reference}:").format(reference=reference),
        t.gettext("The employer or buyer says this was done:"),
    ]
    if not translated:
        lines.append(t.gettext("(Our staff wrote this in another language.)"))
    lines += [f"“{summary}”", "", t.gettext("Did this really happen?")]
    return Outbound("\n".join(lines), validation_choices(t, reference), protect_content=True)


def validation_reminder(language: str, reference: str) -> Outbound:
    t = translator(language)
    text = t.gettext(
        "Reminder: we asked whether the problem in your report {reference} was "
        "really fixed. Please answer:"
    ).format(reference=reference)
    return Outbound(text, validation_choices(t, reference), protect_content=True)


def retaliation_checkin(language: str, reference: str) -> Outbound:
    t = translator(language)
    text = t.gettext(
        "Your report {reference} was closed some time ago. Has anyone treated you "
        "badly because you complained?"
    ).format(reference=reference)
    return Outbound(
        text,
        (
            Choice(t.gettext("Yes"), payloads.retaliation(reference, Answer.YES)),
            Choice(t.gettext("No"), payloads.retaliation(reference, Answer.NO)),
        ),
        protect_content=True,
    )


def site_question(language: str, workplace: str, summary: str, token: str) -> Outbound:
    """The remediation question to another worker of the same workplace: it names no case, and
    its buttons carry only a random token."""
    t = translator(language)
    lines = [
        t.gettext("A question about your workplace {workplace}:").format(workplace=workplace),
        t.gettext("The employer or buyer says this was done:"),
        f"“{summary}”",
        "",
        t.gettext("Did this really happen?"),
    ]
    choices = answer_choices(t, lambda answer: payloads.site(token, answer))
    return Outbound("\n".join(lines), choices, protect_content=True)

"""Every message a worker reads outside a turn: sent through the outbox when staff act or a case
clock falls due, not in answer to something the worker just wrote.

They live here, beside the flows that read their buttons back, so the wording a worker sees and
the payloads the engine understands are written in one room; services and the case clock only
choose which notice to send and to whom. Each is ``protect_content`` where it names a case.
"""

from __future__ import annotations

from conversations.casework import (
    ANSWER_PREFIX,
    FOLLOWUP_PREFIX,
    RETALIATION_PREFIX,
    SITE_PREFIX,
)
from conversations.messages import Choice, Outbound
from locales import Translator, translator


def answer_choices(t: Translator, prefix: str) -> tuple[Choice, ...]:
    """The four answers to "was it really fixed?" ("Yes", "Partly", "No", "Not sure")."""
    return (
        Choice("✅ " + t.gettext("Yes, it was fixed"), prefix + "yes"),
        Choice("➗ " + t.gettext("Partly"), prefix + "partly"),
        Choice("❌ " + t.gettext("No, it was not fixed"), prefix + "no"),
        Choice("❔ " + t.gettext("Not sure"), prefix + "unsure"),
    )


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
        (Choice(t.gettext("Answer"), FOLLOWUP_PREFIX + reference),),
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
    return Outbound(
        "\n".join(lines), answer_choices(t, f"{ANSWER_PREFIX}{reference}:"), protect_content=True
    )


def validation_reminder(language: str, reference: str) -> Outbound:
    t = translator(language)
    text = t.gettext(
        "Reminder: we asked whether the problem in your report {reference} was "
        "really fixed. Please answer:"
    ).format(reference=reference)
    return Outbound(text, answer_choices(t, f"{ANSWER_PREFIX}{reference}:"), protect_content=True)


def retaliation_checkin(language: str, reference: str) -> Outbound:
    t = translator(language)
    text = t.gettext(
        "Your report {reference} was closed some time ago. Has anyone treated you "
        "badly because you complained?"
    ).format(reference=reference)
    prefix = f"{RETALIATION_PREFIX}{reference}:"
    return Outbound(
        text,
        (Choice(t.gettext("Yes"), prefix + "yes"), Choice(t.gettext("No"), prefix + "no")),
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
    return Outbound(
        "\n".join(lines), answer_choices(t, f"{SITE_PREFIX}{token}:"), protect_content=True
    )

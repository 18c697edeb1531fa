"""What a report can be about, aligned with common codes of conduct, and the answer choices of
the report questions. Codes are stored; labels are translated when shown."""

from __future__ import annotations

from locales import N_

#: Category code -> label. Codes are short: they travel in 64-byte button data and in reports.
CATEGORIES: dict[str, str] = {
    "wages": N_("Wages and pay"),
    "hours": N_("Working hours, overtime and rest"),
    "fees": N_("Recruitment fees and debt"),
    "documents": N_("Documents taken (passport, work permit)"),
    "forced": N_("Threats, cannot leave, forced work"),
    "safety": N_("Health and safety"),
    "violence": N_("Harassment and violence (also sexual)"),
    "discrimination": N_("Discrimination"),
    "child": N_("Child labour"),
    "union": N_("Joining a union or speaking up"),
    "housing": N_("Housing, food and water"),
    "retaliation": N_("Punished for complaining"),
    "other": N_("Something else"),
}

#: Picking any of these makes a case urgent: staff are alerted at once.
URGENT_CATEGORIES = frozenset({"forced", "violence", "child"})

OCCURRED: dict[str, str] = {
    "ongoing": N_("It is still happening"),
    "week": N_("In the last 7 days"),
    "month": N_("In the last month"),
    "earlier": N_("More than a month ago"),
}

AFFECTED: dict[str, str] = {
    "me": N_("Only me"),
    "few": N_("A few workers"),
    "many": N_("Many workers"),
}

CONFIDENTIALITY: dict[str, str] = {
    "share": N_("Share, without my name"),
    "confidential": N_("Keep it confidential"),
}


def is_urgent(categories: tuple[str, ...] | list[str], danger_now: bool) -> bool:
    return danger_now or any(code in URGENT_CATEGORIES for code in categories)

"""The labels workers and staff read for the codes of ``domain/categories.py``: what a report can
be about, and the answer choices of the report questions. Codes are stored; labels are
translated when shown, so they live here, beside gettext."""

from __future__ import annotations

from domain.categories import (
    URGENT_CATEGORIES,
    Affected,
    Category,
    Confidentiality,
    Occurred,
    is_urgent,
)
from locales import N_

# The report flow reads the urgent rule from here, beside the labels it shows.
__all__ = [
    "AFFECTED",
    "CATEGORIES",
    "CONFIDENTIALITY",
    "OCCURRED",
    "URGENT_CATEGORIES",
    "is_urgent",
]

#: Category code -> label, in the order the report offers them.
CATEGORIES: dict[str, str] = {
    Category.WAGES: N_("Wages and pay"),
    Category.HOURS: N_("Working hours, overtime and rest"),
    Category.FEES: N_("Recruitment fees and debt"),
    Category.DOCUMENTS: N_("Documents taken (passport, work permit)"),
    Category.FORCED: N_("Threats, cannot leave, forced work"),
    Category.SAFETY: N_("Health and safety"),
    Category.VIOLENCE: N_("Harassment and violence (also sexual)"),
    Category.DISCRIMINATION: N_("Discrimination"),
    Category.CHILD: N_("Child labour"),
    Category.UNION: N_("Joining a union or speaking up"),
    Category.HOUSING: N_("Housing, food and water"),
    Category.RETALIATION: N_("Punished for complaining"),
    Category.OTHER: N_("Something else"),
}

OCCURRED: dict[str, str] = {
    Occurred.ONGOING: N_("It is still happening"),
    Occurred.WEEK: N_("In the last 7 days"),
    Occurred.MONTH: N_("In the last month"),
    Occurred.EARLIER: N_("More than a month ago"),
}

AFFECTED: dict[str, str] = {
    Affected.ME: N_("Only me"),
    Affected.FEW: N_("A few workers"),
    Affected.MANY: N_("Many workers"),
}

CONFIDENTIALITY: dict[str, str] = {
    Confidentiality.SHARE: N_("Share, without my name"),
    Confidentiality.CONFIDENTIAL: N_("Keep it confidential"),
}

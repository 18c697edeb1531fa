"""What a report can be about, aligned with common codes of conduct, and the codes of the other
report questions. The codes are stored and travel in 64-byte button data; their translatable
labels are in ``conversations/categories.py``."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Category(StrEnum):
    WAGES = "wages"
    HOURS = "hours"
    FEES = "fees"
    DOCUMENTS = "documents"
    FORCED = "forced"
    SAFETY = "safety"
    VIOLENCE = "violence"
    DISCRIMINATION = "discrimination"
    CHILD = "child"
    UNION = "union"
    HOUSING = "housing"
    RETALIATION = "retaliation"
    OTHER = "other"


_CATEGORY_CODES: frozenset[str] = frozenset(Category)

#: Picking any of these makes a case urgent: staff are alerted at once.
URGENT_CATEGORIES: frozenset[Category] = frozenset(
    {Category.FORCED, Category.VIOLENCE, Category.CHILD}
)


def is_urgent(categories: Iterable[str], danger_now: bool) -> bool:
    return danger_now or any(code in URGENT_CATEGORIES for code in categories)


def known_categories(codes: Iterable[str]) -> list[Category]:
    """The codes that name a category, in their order (a stale draft may hold an old code)."""
    return [Category(code) for code in codes if code in _CATEGORY_CODES]


class Occurred(StrEnum):
    """When it happened."""

    ONGOING = "ongoing"
    WEEK = "week"
    MONTH = "month"
    EARLIER = "earlier"


class Affected(StrEnum):
    """Who it happened to."""

    ME = "me"
    FEW = "few"
    MANY = "many"


class Confidentiality(StrEnum):
    """What staff may do with the report."""

    SHARE = "share"
    CONFIDENTIAL = "confidential"

"""Who stands where in a case: who wrote an entry or gets a message, who answered a
validation question, and how the bot itself is named in a case's history. Values are stored."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """The two sides of a case: the author of a case entry, the recipient of an outbox message."""

    WORKER = "worker"
    STAFF = "staff"


class Respondent(StrEnum):
    """Who answered a validation question."""

    REPORTER = "reporter"  # the worker who reported the case
    SITE = "site"  # another worker of the same workplace, asked without the case


#: The actor of a case event the worker caused (staff actors are ``staff:NAME`` or ``cli:USER``).
WORKER_ACTOR = "worker"
#: The actor of a case event the bot caused by itself (a clock, a relay).
SYSTEM_ACTOR = "system"


class StaffRole(StrEnum):
    """What a staff member may do (``services/staff_accounts.py`` says which role may what)."""

    ADMIN = "admin"
    CASE_HANDLER = "case_handler"
    EDUCATOR = "educator"
    VIEWER = "viewer"

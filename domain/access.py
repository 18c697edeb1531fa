"""Staff roles and what each may do, and who is acting: the domain's rule, enforced by
``services/access.py`` (``require``) on every staff action and view, whatever the surface.

- ``Actor.staff(name, role, assigned_only)``: a staff member with a role (``PERMISSIONS``).
  A case handler marked ``assigned_only`` sees and changes only the cases assigned to them.
- ``Actor.operator(label)``, or a plain string: the server's operator at the command line with
  no staff account, or the bot's own jobs. The operator holds the keys, so a role would be no
  boundary for them; they may do everything (as before roles existed).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import Refusal
from domain.parties import StaffRole

#: Permission -> the roles that have it.
#: ``cases.view``: case lists and summaries (status, category, workplace, dates; no words of the
#: worker). ``cases.read``: what the worker wrote, files, the history's texts. ``cases.change``:
#: every casework action. ``broadcasts``: create, preview, cancel, follow broadcasts.
#: ``lessons``: lesson content and its feedback. ``reports.view``: the suppressed reports.
#: ``staff.manage``: staff accounts, workplaces, contacts, templates, purge, outbox retries.
PERMISSIONS: dict[str, frozenset[StaffRole]] = {
    "cases.view": frozenset({StaffRole.ADMIN, StaffRole.CASE_HANDLER}),
    "cases.read": frozenset({StaffRole.ADMIN, StaffRole.CASE_HANDLER}),
    "cases.change": frozenset({StaffRole.ADMIN, StaffRole.CASE_HANDLER}),
    "broadcasts": frozenset({StaffRole.ADMIN, StaffRole.EDUCATOR}),
    "lessons": frozenset({StaffRole.ADMIN, StaffRole.EDUCATOR}),
    "reports.view": frozenset(StaffRole),
    "staff.manage": frozenset({StaffRole.ADMIN}),
}

#: What a refusal says, per permission: plain words a staff member understands on any surface.
REFUSED = {
    "cases.view": "cannot see cases; an admin or a case handler can",
    "cases.read": "cannot read what workers wrote; an admin or a case handler can",
    "cases.change": "cannot change cases; an admin or a case handler can",
    "broadcasts": "cannot send or follow broadcasts; an admin or an educator can",
    "lessons": "cannot manage lessons; an admin or an educator can",
    "reports.view": "cannot see reports",
    "staff.manage": "cannot manage staff accounts or settings; an admin can",
}


class Forbidden(Refusal):
    """The actor's role does not allow this. Surfaces show it like any refusal (the console
    answers 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason)


@dataclass(frozen=True)
class Actor:
    """Who acts. ``audit_name`` is how the audit log names them (``staff:NAME``, ``cli:ACCOUNT``,
    ``web:NAME``, ``system``); ``role`` is None for the operator."""

    audit_name: str
    role: StaffRole | None = None
    staff_name: str | None = None
    assigned_only: bool = False

    @classmethod
    def staff(
        cls, name: str, role: str, *, surface: str = "staff", assigned_only: bool = False
    ) -> Actor:
        return cls(f"{surface}:{name}", StaffRole(role), name, assigned_only)

    @classmethod
    def operator(cls, audit_name: str) -> Actor:
        return cls(audit_name)

    @classmethod
    def of(cls, actor: Actor | str) -> Actor:
        """A plain string is the operator (the CLI without a staff account, the bot's jobs)."""
        return actor if isinstance(actor, Actor) else cls.operator(actor)

    @property
    def is_operator(self) -> bool:
        return self.role is None

    def may(self, permission: str) -> bool:
        roles = PERMISSIONS[permission]  # KeyError: a permission nobody defined
        return self.role is None or self.role in roles

    def sees_case(self, assigned_to: str | None) -> bool:
        """Whether a case assigned to ``assigned_to`` is within this actor's cases."""
        return not self.assigned_only or (
            self.staff_name is not None and assigned_to == self.staff_name
        )

    def __str__(self) -> str:
        return self.audit_name


ActorLike = Actor | str

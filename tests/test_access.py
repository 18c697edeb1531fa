"""Roles are enforced in the service layer (issue 13, point 3): whatever surface calls, a staff
member whose role lacks the permission is refused by the service itself, and the refusal is in
the audit log. A case handler marked ``assigned_only`` works only on the cases assigned to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.app import App, open_app
from domain.access import PERMISSIONS, Actor, Forbidden
from domain.parties import StaffRole
from services.broadcasts import topic_texts
from services.casework import Remediation
from storage.models import AuditEntry, Case
from tests.case_factory import insert_case
from tests.conftest import Backend

REFERENCE = "K7M3-9Q2X"
OTHER = "H4RT-6WQP"

Action = Callable[[App, Actor], Awaitable[Any]]


async def _broadcast(app: App, actor: Actor) -> Any:
    segment = await app.broadcasts.parse_segment("all")
    return await app.broadcasts.create(actor, topic_texts("pay"), segment, topic="pay")


async def _preview(app: App, actor: Actor) -> Any:
    segment = await app.broadcasts.parse_segment("all")
    return await app.broadcasts.preview(actor, topic_texts("pay"), segment)


#: Every staff action and view of the services, with the permission it needs.
ACTIONS: dict[str, tuple[str, Action]] = {
    "cases.list": ("cases.view", lambda app, a: app.staff.list_cases(a)),
    "case.summary": ("cases.view", lambda app, a: app.staff.case_overview(a, REFERENCE)),
    "case.view": ("cases.read", lambda app, a: app.staff.show_case(a, REFERENCE)),
    "case.export": ("cases.read", lambda app, a: app.staff.export_files(a, REFERENCE)),
    "case.note": ("cases.change", lambda app, a: app.casework.add_note(a, REFERENCE, "called")),
    "case.assign": ("cases.change", lambda app, a: app.casework.assign(a, REFERENCE, "")),
    "case.reply": ("cases.change", lambda app, a: app.casework.reply(a, REFERENCE, "Hello")),
    "case.acknowledge": ("cases.change", lambda app, a: app.casework.acknowledge(a, REFERENCE)),
    "case.remediate": (
        "cases.change",
        lambda app, a: app.casework.remediate(a, REFERENCE, Remediation("Fixed", {})),
    ),
    "case.close": (
        "cases.change",
        lambda app, a: app.casework.close(a, REFERENCE, unvalidated=True, reason="left"),
    ),
    "case.purge": ("staff.manage", lambda app, a: app.retention.purge(a, OTHER)),
    "broadcast.create": ("broadcasts", lambda app, a: _broadcast(app, a)),
    "broadcast.preview": ("broadcasts", lambda app, a: _preview(app, a)),
    "broadcast.list": ("broadcasts", lambda app, a: app.broadcasts.list(a)),
    "staff.add": ("staff.manage", lambda app, a: app.staff_accounts.add(a, "Nu", "viewer", None)),
    "workplace.add": (
        "staff.manage",
        lambda app, a: app.staff.add_workplace(a, "Golden Thread", "TH"),
    ),
    "outbox.list": ("staff.manage", lambda app, a: app.stuck_messages().list_messages(a)),
}


async def _refusals(app: App) -> list[tuple[str, str]]:
    async with app.database.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.details).where(AuditEntry.action == "staff.refused")
        )
        return [(actor, details["command"]) for actor, details in rows]


@pytest.mark.parametrize("role", list(StaffRole))
async def test_every_staff_action_is_refused_by_the_service_to_a_role_without_it(
    backend: Backend, role: StaffRole
) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        for reference in (REFERENCE, OTHER):
            await insert_case(app.database, reference.lower() * 7, reference, app.keyring)
        actor = Actor.staff("Ana", role, surface="web")
        refused: list[str] = []
        for action, (permission, call) in ACTIONS.items():
            allowed = role in PERMISSIONS[permission]
            try:
                await call(app, actor)
            except Forbidden:
                assert not allowed, f"{role} was refused {action}"
                refused.append(action)
            else:
                assert allowed, f"{role} was allowed {action}"
        assert sorted(await _refusals(app)) == sorted(("web:Ana", a) for a in refused)


async def test_an_assigned_only_handler_works_only_on_their_cases(backend: Backend) -> None:
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        for reference in (REFERENCE, OTHER):
            await insert_case(app.database, reference.lower() * 7, reference, app.keyring)
        await app.staff_accounts.add("cli:operator", "Mai", "case_handler", None)
        async with app.database.transaction() as session:
            await session.execute(
                update(Case).where(Case.reference == REFERENCE).values(assigned_to="Mai")
            )
        mai = Actor.staff("Mai", "case_handler", surface="web", assigned_only=True)
        listed = await app.staff.list_cases(mai)
        assert [case.reference for case in listed] == [REFERENCE]
        assert (await app.staff.show_case(mai, REFERENCE)).reference == REFERENCE
        await app.casework.add_note(mai, REFERENCE, "called the worker's line manager")
        with pytest.raises(Forbidden):
            await app.staff.show_case(mai, OTHER)
        with pytest.raises(Forbidden):
            await app.casework.add_note(mai, OTHER, "a note")
        assert await _refusals(app) == [("web:Mai", "case.view"), ("web:Mai", "case.note")]
        everyone = Actor.staff("Mai", "case_handler", surface="web")
        assert len(await app.staff.list_cases(everyone)) == 2

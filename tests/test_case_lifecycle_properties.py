"""Random sequences of staff and worker actions, through the real services and a real database,
with the lifecycle's invariants checked after every step (Hypothesis stateful testing).

Invariants: a case is always in a known status; it is ``closed`` only if the worker said yes in
the current remediation round; a terminal case never changes again; and no raw UPDATE can close
a case the worker has not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from hypothesis import settings, strategies
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select, text

from conversations.ports import WorkerRef
from services import lifecycle
from services.casework import CaseworkService, Remediation
from services.outbox import Outbox
from services.staff import StaffError
from storage.crypto import Keyring
from storage.database import Database
from storage.models import CASE_STATUSES, Case, Validation
from tests.case_factory import insert_case

KEYRING = Keyring((b"k" * 32,))
WORKER = WorkerRef("w" * 64, "telegram", "1")
REFERENCE = "AAAA-0001"


class CaseLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        self.database = Database(f"sqlite+aiosqlite:///{Path(self.folder.name) / 'c.sqlite3'}")
        self.service = CaseworkService(self.database, KEYRING, Outbox(KEYRING))
        self.run(self._setup())
        self.history: list[str] = ["received"]

    def run(self, coroutine: object) -> object:
        return self.loop.run_until_complete(coroutine)  # type: ignore[arg-type]

    async def _setup(self) -> None:
        await self.database.upgrade()
        await insert_case(self.database, WORKER.pseudonym, REFERENCE)

    async def _status(self) -> tuple[str, int, list[str]]:
        async with self.database.sessions() as session:
            case = await session.scalar(select(Case))
            assert case is not None
            answers = (
                await session.execute(
                    select(Validation.answer)
                    .where(Validation.round == case.validation_round)
                    .order_by(Validation.id)
                )
            ).scalars()
            return case.status, case.validation_round, list(answers)

    def attempt(self, action: object) -> None:
        before, _, _ = self.run(self._status())  # type: ignore[misc]
        with contextlib.suppress(StaffError):  # refused: nothing may have moved (checked below)
            self.run(action)
        after, _, _ = self.run(self._status())  # type: ignore[misc]
        if before in lifecycle.TERMINAL:
            assert after == before, f"terminal {before} changed to {after}"
        self.history.append(after)

    @rule(status=strategies.sampled_from(sorted(lifecycle.STAFF_SETTABLE | {"closed"})))
    def staff_sets_status(self, status: str) -> None:
        self.attempt(self.service.set_status("staff", REFERENCE, status))

    @rule()
    def staff_acknowledges(self) -> None:
        self.attempt(self.service.acknowledge("staff", REFERENCE))

    @rule()
    def staff_records_remediation(self) -> None:
        self.attempt(self.service.remediate("staff", REFERENCE, Remediation("fixed", {})))

    @rule(answer=strategies.sampled_from(lifecycle.ANSWERS))
    def worker_answers(self, answer: str) -> None:
        before, _, _ = self.run(self._status())  # type: ignore[misc]
        self.attempt(self.service.record_validation(WORKER, REFERENCE, answer))
        after, _, _ = self.run(self._status())  # type: ignore[misc]
        if before == "awaiting_validation":
            expected = {"yes": "closed", "partly": "reopened", "no": "reopened"}
            assert after == expected.get(answer, before)

    @rule(unvalidated=strategies.booleans(), reason=strategies.sampled_from([None, "", "gone"]))
    def staff_closes(self, unvalidated: bool, reason: str | None) -> None:
        before, _, _ = self.run(self._status())  # type: ignore[misc]
        self.attempt(self.service.close("staff", REFERENCE, unvalidated=unvalidated, reason=reason))
        after, _, _ = self.run(self._status())  # type: ignore[misc]
        if after == "closed_unvalidated" and before != after:
            assert unvalidated
            assert reason

    @rule()
    def someone_bypasses_the_services(self) -> None:
        async def raw_close() -> None:
            async with self.database.transaction() as session:
                await session.execute(text("UPDATE cases SET status = 'closed'"))

        _, _, answers = self.run(self._status())  # type: ignore[misc]
        refusal = ""
        try:
            self.run(raw_close())
        except Exception as error:  # the database trigger refuses
            refusal = str(error)
        if "yes" in answers:
            assert refusal == ""
            self.history.append("closed")
        else:
            assert "worker confirms" in refusal, "the database closed a case nobody confirmed"

    @invariant()
    def closed_only_with_the_workers_yes(self) -> None:
        status, _, answers = self.run(self._status())  # type: ignore[misc]
        assert status in CASE_STATUSES
        if status == "closed":
            assert "yes" in answers

    def teardown(self) -> None:
        self.run(self.database.dispose())
        self.loop.close()
        self.folder.cleanup()


CaseLifecycle.TestCase.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)
test_case_lifecycle = CaseLifecycle.TestCase

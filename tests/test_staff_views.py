"""Staff views are dataclasses; `--json` prints them with exactly the keys operators' scripts read
(``CONTRACT.md``): an entry has ``text`` or ``size`` or ``error``, never a null in their place."""

from __future__ import annotations

import json

from sqlalchemy import select

from services.cases import entry_purpose
from services.casework import CaseworkService
from services.outbox import Outbox
from services.staff import StaffService
from services.views import to_json
from storage.crypto import Keyring
from storage.database import Database
from storage.models import Case, CaseEntry
from tests.case_factory import insert_case
from tests.conftest import Backend

KEYRING = Keyring((b"k" * 32,))
OTHER_KEYRING = Keyring((b"x" * 32,))  # an entry sealed with a key the service does not have
SUMMARY_KEYS = [
    "reference", "status", "category", "categories", "language", "urgent", "created_at",
    "workplace", "workplace_typed", "assigned_to", "acknowledge_due_at", "response_due_at",
]  # fmt: skip
DETAIL_KEYS = [
    *SUMMARY_KEYS, "category_labels", "agency", "occurred", "affected",
    "danger_now", "confidentiality", "worker_reachable", "site_validation", "entries", "events",
]  # fmt: skip


async def test_case_views_print_the_same_keys_as_json(backend: Backend) -> None:
    database = Database(backend.database_url)
    try:
        await database.upgrade()
        await insert_case(database, "p" * 64, "K7M3-9Q2X")
        await CaseworkService(database, KEYRING, Outbox(KEYRING)).reply(
            "cli:test", "K7M3-9Q2X", "Which month?"
        )
        async with database.transaction() as session:
            case = await session.scalar(select(Case))
            assert case is not None
            photo = entry_purpose(case.reference, case.id, "worker", "photo")
            session.add(CaseEntry(case_id=case.id, author="worker", kind="photo",
                                  mime_type="image/jpeg",
                                  ciphertext=KEYRING.encrypt(b"jpeg", photo)))  # fmt: skip
            text = entry_purpose(case.reference, case.id, "worker", "text")
            session.add(CaseEntry(case_id=case.id, author="worker", kind="text",
                                  ciphertext=OTHER_KEYRING.encrypt(b"?", text)))  # fmt: skip
        staff = StaffService(database, KEYRING)
        listed = json.loads(json.dumps(to_json(await staff.list_cases("cli:test"))))
        shown = json.loads(json.dumps(to_json(await staff.show_case("cli:test", "k7m3 9q2x"))))
    finally:
        await database.dispose()
    assert [list(case) for case in listed] == [SUMMARY_KEYS]
    assert listed[0]["created_at"].endswith("Z")
    assert list(shown) == DETAIL_KEYS
    assert [(entry["kind"], sorted(entry)) for entry in shown["entries"]] == [
        ("text", ["at", "author", "id", "kind", "mime_type", "text"]),
        ("photo", ["at", "author", "id", "kind", "mime_type", "size"]),
        ("text", ["at", "author", "error", "id", "kind", "mime_type"]),
    ]
    assert shown["entries"][0]["text"] == "Which month?"
    assert shown["site_validation"] == {
        "asked": 0, "answered": 0, "answers": "hidden: fewer than 5 answers",
    }  # fmt: skip
    assert [sorted(event) for event in shown["events"]] == [
        ["action", "actor", "at", "from_status", "note", "to_status"]
    ]

"""`wvb outbox list` and `wvb outbox retry`: staff see which messages wait or failed, never what
they say or to whom, and put failed ones back in the queue (audited). Real subprocesses on
SQLite and PostgreSQL, with messages queued by real staff actions and handled by the real relay."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.app import App, open_app
from bot.channels.outbox_relay import OutboxRelay
from conversations.messages import Outbound
from storage.models import AuditEntry, OutboxMessage
from tests.bot_driver import run_wvb
from tests.case_factory import insert_case
from tests.conftest import Backend

REFERENCE = "K7M3-9Q2X"
PSEUDONYM = "worker-pseudonym-of-the-reporter"
REPLY = "Your payslip for October shows 9000 baht"
LATER_REPLY = "We met the manager on Tuesday"
STAFF_CHAT = "-100555"


class StaffChatSender:
    """The Telegram channel's sender as far as staff alerts go: records what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Outbound]] = []

    async def send(self, address: str, message: Outbound) -> list[str]:
        self.sent.append((address, message))
        return [str(len(self.sent))]


def relay(app: App, sender: StaffChatSender, staff_address: str | None) -> OutboxRelay:
    return OutboxRelay(app.database, app.keyring, {"telegram": sender}, staff_address=staff_address)


async def stuck_messages(backend: Backend) -> tuple[Any, dict[str, str]]:
    """A case whose reply could not reach the worker (no address: unreachable), the staff alert
    about it that failed (no staff chat configured), and a later reply still waiting."""
    settings = backend.settings()
    async with open_app(settings, upgrade_schema=True) as app:
        await insert_case(app.database, PSEUDONYM, REFERENCE, app.keyring)
        await app.casework.reply("cli:test", REFERENCE, REPLY)
        assert await relay(app, StaffChatSender(), staff_address=None).run_once() == 2
        await app.casework.reply("cli:test", REFERENCE, LATER_REPLY)
    return settings, backend.environment(settings)


def never_reveals_content_or_recipient(output: str) -> None:
    for secret in (REPLY, LATER_REPLY, "payslip", "could not reach", PSEUDONYM, "worker_id"):
        assert secret not in output


async def test_outbox_list_shows_what_waits_or_failed_without_content(backend: Backend) -> None:
    _, env = await stuck_messages(backend)

    listed = await run_wvb(env, "outbox", "list", "--json")

    assert listed.returncode == 0, listed.stderr
    messages = json.loads(listed.stdout)
    assert [(m["status"], m["kind"]) for m in messages] == [
        ("unreachable", "worker_message"),
        ("failed", "staff_alert"),
        ("pending", "worker_message"),
    ]
    for message in messages:
        assert set(message) == {
            "id", "reference", "kind", "channel", "status", "attempts", "last_error",
            "created_at", "next_attempt_at", "held_for_window",
        }  # fmt: skip
        assert message["held_for_window"] is False
        assert message["reference"] == REFERENCE
        assert message["created_at"].endswith("Z")
    unreachable, failed, pending = messages
    assert failed["attempts"] == 1
    assert "WVB_STAFF_CHAT_ID" in failed["last_error"]
    assert unreachable["last_error"] == "no address for the worker"
    assert pending["attempts"] == 0
    assert pending["next_attempt_at"] is not None
    assert failed["next_attempt_at"] is None, "a failed message is not attempted again by itself"
    never_reveals_content_or_recipient(listed.stdout)

    only_failed = await run_wvb(env, "outbox", "list", "--status", "failed", "--json")
    assert [m["id"] for m in json.loads(only_failed.stdout)] == [failed["id"]]

    table = await run_wvb(env, "outbox", "list")
    assert table.returncode == 0, table.stderr
    assert REFERENCE in table.stdout
    assert "WVB_STAFF_CHAT_ID" in table.stdout
    assert {"pending", "failed", "unreachable"} <= set(table.stdout.split())
    never_reveals_content_or_recipient(table.stdout)

    checklist = json.loads((await run_wvb(env, "doctor", "--json")).stdout)
    [outbox] = [check for check in checklist["checks"] if check["name"] == "outbox"]
    assert outbox["status"] == "WARN", "the go-live checklist points at failed messages"
    assert "wvb outbox list --status failed" in outbox["fix"]

    wrong = await run_wvb(env, "outbox", "list", "--status", "stuck")
    assert wrong.returncode != 0
    assert wrong.stderr.startswith("error: --status")
    assert "pending" in wrong.stderr


async def test_outbox_retry_puts_failed_messages_back_in_the_queue_audited(
    backend: Backend,
) -> None:
    settings, env = await stuck_messages(backend)
    listed = json.loads((await run_wvb(env, "outbox", "list", "--json")).stdout)
    failed = next(m for m in listed if m["status"] == "failed")
    pending = next(m for m in listed if m["status"] == "pending")

    not_failed = await run_wvb(env, "outbox", "retry", str(pending["id"]))
    assert not_failed.returncode == 1
    assert "pending" in not_failed.stderr
    unknown = await run_wvb(env, "outbox", "retry", "987654")
    assert unknown.returncode == 1
    assert "987654" in unknown.stderr

    retried = await run_wvb(env, "outbox", "retry", "--json")

    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout) == {"retried": [failed["id"]]}
    after = json.loads((await run_wvb(env, "outbox", "list", "--json")).stdout)
    again = next(m for m in after if m["id"] == failed["id"])
    assert (again["status"], again["attempts"]) == ("pending", 0)
    async with open_app(settings) as app:
        async with app.database.sessions() as session:
            audit = (
                (
                    await session.execute(
                        select(AuditEntry).where(AuditEntry.action == "outbox.retry")
                    )
                )
                .scalars()
                .all()
            )
        assert len(audit) == 1
        assert audit[0].actor.startswith("cli:")
        assert audit[0].details["ids"] == [failed["id"]]
        # Once a staff chat is configured, the relay sends the message that had failed.
        sender = StaffChatSender()
        await relay(app, sender, staff_address=STAFF_CHAT).run_once()
        async with app.database.sessions() as session:
            row = await session.get(OutboxMessage, failed["id"])
        assert row is not None
        assert row.status == "sent"
        assert {address for address, _ in sender.sent} == {STAFF_CHAT}

    nothing_left = await run_wvb(env, "outbox", "retry")
    assert nothing_left.returncode == 0
    assert "no failed message" in nothing_left.stdout

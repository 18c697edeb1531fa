"""Rotating WVB_SECRET_KEY: with the old key in WVB_PREVIOUS_SECRET_KEYS, a worker (and a staff
member) known under it is recognised when they next write and moved to the new key, keeping
their profile, their address and the link to the cases they reported."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import open_app
from bot.channels.outbox_relay import OutboxRelay
from bot.errors import KeysDoNotMatchError
from bot.settings import Settings
from conversations.messages import Effects, Inbound
from conversations.ports import ReportDraft
from storage.models import Worker
from tests.conftest import Backend, fresh_keys
from tests.test_no_decryption_oracle import RecordingSender

TELEGRAM_ID = 4_242_001
CHAT = 4_242_001
STAFF_ID = 4_242_999


async def ignore(replies: object, effects: Effects) -> None:
    return None


def draft() -> ReportDraft:
    return ReportDraft(
        key="5b1e0c1e-0000-4000-8000-000000000001", language="th", categories=("wages",),
        workplace_id=None, workplace_text=None, agency=None, details=("unpaid for May",),
        occurred="week", affected="me", danger_now=False, confidentiality="confidential",
        receipt_code="ABCD-EFGH-JKMN-PQRS",
    )  # fmt: skip


def rotated(backend: Backend, first: Settings) -> Settings:
    """``first`` after WVB_SECRET_KEY was replaced, the old key listed as previous."""
    assert first.secret_key is not None
    return backend.settings(
        secret_key=fresh_keys()["secret_key"],
        previous_secret_keys=first.secret_key.get_secret_value(),
        encryption_keys=first.encryption_keys,
    )


async def test_a_worker_under_the_previous_secret_key_is_moved_on_next_contact(
    backend: Backend,
) -> None:
    first = backend.settings()
    async with open_app(first, upgrade_schema=True) as app:
        worker = app.gateway.worker("telegram", TELEGRAM_ID, CHAT)
        await app.profiles.save(worker, "th")
        receipt = await app.cases.submit(worker, draft())
        await app.staff_accounts.add("cli:test", "Mali", "case_handler", STAFF_ID)
        old_pseudonym = worker.pseudonym
    async with open_app(rotated(backend, first)) as app:
        worker = app.gateway.worker("telegram", TELEGRAM_ID, CHAT)
        assert worker.pseudonym != old_pseudonym
        await app.gateway.handle(worker, Inbound.command_of("menu"), ignore)
        profile = await app.profiles.find(worker.pseudonym)
        assert profile is not None
        assert profile.language == "th"
        assert await app.profiles.find(old_pseudonym) is None
        # Still the reporter of their case, and still reachable at their chat.
        assert await app.casework.add_worker_message(worker, receipt.reference, "and June")
        await app.casework.reply("cli:test", receipt.reference, "We are on it")
        sender = RecordingSender()
        await OutboxRelay(app.database, app.keyring, {"telegram": sender}).run_once()
        assert [address for address, _ in sender.sent] == [str(CHAT)]
        assert await app.staff_accounts.by_messenger_id("telegram", STAFF_ID) is not None
        async with app.database.sessions() as session:
            pseudonyms = list(await session.scalars(select(Worker.pseudonym)))
        assert pseudonyms == [worker.pseudonym]


async def test_a_new_secret_key_without_the_previous_one_is_refused(backend: Backend) -> None:
    """Without WVB_PREVIOUS_SECRET_KEYS every worker would become a stranger: the application
    refuses to open (services/key_canary.py), and the worker is still known under the old key."""
    first = backend.settings()
    async with open_app(first, upgrade_schema=True) as app:
        await app.profiles.save(app.gateway.worker("telegram", TELEGRAM_ID, CHAT), "th")
    rotated = backend.settings(
        secret_key=fresh_keys()["secret_key"], encryption_keys=first.encryption_keys
    )
    with pytest.raises(KeysDoNotMatchError, match="WVB_PREVIOUS_SECRET_KEYS"):
        async with open_app(rotated):
            pass
    async with open_app(first) as app:
        worker = app.gateway.worker("telegram", TELEGRAM_ID, CHAT)
        profile = await app.profiles.find(worker.pseudonym)
        assert profile is not None
        assert profile.language == "th"

"""Who a broadcast reaches, on real databases: segments, tags, fallback, scheduling, cancelling,
and the audit trail of every staff action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from services.broadcasts import BroadcastError, BroadcastPolicy, BroadcastService
from storage.database import Database
from storage.models import BroadcastDelivery, Worker, WorkerAddress, Workplace, utc_now
from tests.case_factory import TEST_KEYRING, insert_case
from tests.conftest import Backend

NO_QUIET = BroadcastPolicy(quiet_window=None, default_language="en")


@pytest.fixture
async def database(backend: Backend) -> Database:
    database = Database(backend.settings().database_url)
    await database.upgrade()
    yield database  # type: ignore[misc]
    await database.dispose()


async def add_worker(
    database: Database, pseudonym: str, language: str, *, subscribed: bool = True,
    workplace: int | None = None, blocked: bool = False,
) -> int:  # fmt: skip
    async with database.transaction() as session:
        worker = Worker(
            pseudonym=pseudonym,
            language=language,
            subscribed=subscribed,
            workplace_id=workplace,
            blocked_at=utc_now() if blocked else None,
        )
        session.add(worker)
        await session.flush()
        session.add(WorkerAddress(worker_id=worker.id, channel="telegram",
                                  address_ciphertext=b"not used here"))  # fmt: skip
        return worker.id


async def test_segments_tags_and_fallback_pick_exactly_the_right_workers(
    database: Database,
) -> None:
    async with database.transaction() as session:
        factory = Workplace(name="Golden Fish Co.", country="TH", timezone="Asia/Bangkok")
        session.add(factory)
        await session.flush()
        golden = factory.id
    thai = await add_worker(database, "a" * 64, "th", workplace=golden)
    await add_worker(database, "b" * 64, "th")
    await add_worker(database, "c" * 64, "my", workplace=golden)
    await add_worker(database, "d" * 64, "es", subscribed=False)
    await add_worker(database, "e" * 64, "km", blocked=True)
    await insert_case(database, "a" * 64, "TAGA-0001")
    service = BroadcastService(database, NO_QUIET, TEST_KEYRING)

    await service.tag_reporter("cli:test", "taga-0001", "Night-Shift")
    assert await service.tags() == {"night-shift": 1}
    texts = {"th": "ข่าว", "en": "News"}
    everyone = await service.parse_segment("all")
    preview = await service.preview("cli:test", texts, everyone, "skip")
    assert (preview["languages"], preview["skipped_no_text"]) == ({"th": 2}, 1)
    preview = await service.preview("cli:test", texts, everyone, "default")
    assert preview["languages"] == {"en": 1, "th": 2}, "Burmese gets the default language"

    by_workplace = await service.parse_segment("workplace=Golden Fish Co.")
    assert (await service.preview("cli:test", texts, by_workplace, "default"))["languages"] == {
        "en": 1, "th": 1,
    }  # fmt: skip
    tagged = await service.parse_segment("tag=night-shift,language=th")
    created = await service.create("cli:test", texts, tagged)
    assert created["total"] == 1
    async with database.sessions() as session:
        [(worker_id, timezone)] = (
            await session.execute(select(BroadcastDelivery.worker_id, BroadcastDelivery.timezone))
        ).all()
    assert (worker_id, timezone) == (thai, "Asia/Bangkok"), "the workplace's time zone"

    await service.tag_reporter("cli:test", "TAGA-0001", "night-shift", remove=True)
    assert await service.tags() == {}
    with pytest.raises(BroadcastError, match="no case"):
        await service.tag_reporter("cli:test", "NOPE-0000", "x")
    with pytest.raises(BroadcastError, match="tag is"):
        await service.tag_reporter("cli:test", "TAGA-0001", "no spaces please")
    async with database.sessions() as session:
        actions = [row[0] for row in await session.execute(text("SELECT action FROM audit_log"))]
    assert actions.count("subscriber.tag") == 1
    assert actions.count("subscriber.untag") == 1
    assert "broadcast.create" in actions


async def test_a_scheduled_broadcast_starts_once_when_due_and_can_be_cancelled(
    database: Database,
) -> None:
    await add_worker(database, "f" * 64, "en")
    service = BroadcastService(database, NO_QUIET)
    later = utc_now() + timedelta(hours=1)
    created = await service.create("cli:test", {"en": "Later"}, await service.parse_segment(""),
                                   at=later)  # fmt: skip
    status = await service.status("cli:test", created["id"])
    assert (status["state"], status["total"], status["note"][:9]) == ("scheduled", 0, "starts at")
    assert await service.start_due() == 0
    async with database.transaction() as session:
        await session.execute(text("UPDATE broadcasts SET scheduled_at = :at"),
                              {"at": utc_now() - timedelta(seconds=1)})  # fmt: skip
    other = BroadcastService(database, NO_QUIET)
    assert sorted([await service.start_due(), await other.start_due()]) == [0, 1]
    status = await service.status("cli:test", created["id"])
    assert (status["state"], status["total"], status["pending"]) == ("sending", 1, 1)
    cancelled = await service.cancel("cli:test", created["id"])
    assert (cancelled["state"], cancelled["failed"], cancelled["pending"]) == ("cancelled", 1, 0)
    with pytest.raises(BroadcastError, match="already cancelled"):
        await service.cancel("cli:test", created["id"])


async def test_forgotten_workers_are_never_recipients_and_lose_their_rows_link(
    database: Database,
) -> None:
    await add_worker(database, "g" * 64, "en")
    service = BroadcastService(database, NO_QUIET)
    created = await service.create("cli:test", {"en": "Hello"}, await service.parse_segment(""))
    async with database.transaction() as session:
        await session.execute(update(Worker).values(subscribed=True))
        await session.execute(text("DELETE FROM workers"))  # what /forget does
    async with database.sessions() as session:
        rows = (await session.execute(select(BroadcastDelivery.worker_id))).scalars().all()
    assert rows == [None]
    again = await service.preview("cli:test", {"en": "Hello"}, await service.parse_segment(""))
    assert again["total"] == 0
    assert created["total"] == 1

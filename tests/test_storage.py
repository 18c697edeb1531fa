"""Storage on real servers: migrations, profiles, encrypted addresses and conversation state."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bot.app import build_app, build_state_store
from bot.settings import resolve_keys
from conversations.ports import WorkerRef
from conversations.state import ConversationState
from services.workers import WorkerProfileService, address_purpose
from storage.conversation_state import (
    ConversationBusyError,
    MemoryConversationStore,
    RedisConversationStore,
)
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database, current_revision, head_revision
from storage.redis_keys import RedisKeyNames
from tests.conftest import REDIS_URL, Backend


async def test_schema_upgrade_is_safe_to_run_twice(backend: Backend) -> None:
    database = Database(backend.database_url)
    try:
        await database.upgrade()
        await database.upgrade()
        assert await current_revision(database.engine) == head_revision()
        assert await database.is_up_to_date()
    finally:
        await database.dispose()


async def test_profile_is_stored_under_pseudonym_with_address_encrypted(backend: Backend) -> None:
    settings = backend.settings()
    app = await build_app(settings, upgrade_schema=True)
    try:
        pseudonym = app.pseudonymizer.pseudonym("telegram", 777000111)
        profiles = WorkerProfileService(app.database, app.keyring, app.outbox)
        worker = WorkerRef(pseudonym, "telegram", "777000111")
        assert await profiles.find(pseudonym) is None
        await profiles.save(worker, "my")
        await profiles.save(worker, "th")  # an update, not a second row
        profile = await profiles.find(pseudonym)
        assert profile is not None
        assert profile.language == "th"
        async with app.database.sessions() as session:
            rows = (await session.execute(text("SELECT pseudonym FROM workers"))).all()
            assert [row[0] for row in rows] == [pseudonym]
            ciphertexts = (
                await session.execute(text("SELECT address_ciphertext FROM worker_addresses"))
            ).all()
        assert len(ciphertexts) == 1
        blob = bytes(ciphertexts[0][0])
        assert b"777000111" not in blob
        async with app.database.sessions() as session:
            worker_id = (await session.execute(text("SELECT id FROM workers"))).scalar_one()
        purpose = address_purpose(pseudonym, "telegram", worker_id)
        assert app.keyring.decrypt(blob, purpose) == b"777000111"
    finally:
        await app.close()


async def test_database_rejects_a_second_worker_with_the_same_pseudonym(backend: Backend) -> None:
    from storage.models import Worker

    database = Database(backend.database_url)
    await database.upgrade()
    try:
        async with database.transaction() as session:
            session.add(Worker(pseudonym="a" * 64, language="en"))
        with pytest.raises(IntegrityError):
            async with database.transaction() as session:
                session.add(Worker(pseudonym="a" * 64, language="th"))
        async with database.sessions() as session:
            assert len((await session.execute(select(Worker))).scalars().all()) == 1
    finally:
        await database.dispose()


async def test_state_round_trips_encrypted_and_keyed_by_pseudonym(backend: Backend) -> None:
    settings = backend.settings()
    keyring = Keyring(resolve_keys(settings).encryption_keys)
    store = build_state_store(settings, keyring)
    try:
        state = ConversationState(step="privacy", language="my", data={"draft": "secret words"})
        await store.save("p1", state)
        assert await store.load("p1") == state
        assert await store.load("p2") is None
        await store.delete("p1")
        assert await store.load("p1") is None
    finally:
        await store.close()


async def test_memory_state_expires_when_idle() -> None:
    store = MemoryConversationStore(Keyring((b"k" * 32,)), ttl_seconds=0)
    await store.save("p", ConversationState(step="menu"))
    assert await store.load("p") is None


async def test_redis_state_has_ttl_and_shows_neither_identity_nor_text(
    redis_prefix: str,
) -> None:
    pseudonym = Pseudonymizer(b"s" * 32).pseudonym("telegram", 123456789)
    client = Redis.from_url(REDIS_URL)
    names = RedisKeyNames(b"s" * 32, redis_prefix)
    store = RedisConversationStore(Redis.from_url(REDIS_URL), Keyring((b"k" * 32,)), 3600, names)
    try:
        await store.save(pseudonym, ConversationState(data={"draft": "my boss took my passport"}))
        names_now = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        assert names_now == [names.key("conv", pseudonym).encode()]
        assert pseudonym[:8].encode() not in names_now[0]
        names = names_now
        assert 0 < await client.ttl(names[0]) <= 3600
        raw = await client.get(names[0])
        assert b"passport" not in raw
        assert b"123456789" not in raw
    finally:
        await store.close()
        await client.aclose()


async def test_lock_serialises_two_updates_of_one_conversation(backend: Backend) -> None:
    """Two stores (two processes, when Redis is used) never hold one conversation at once."""
    settings = backend.settings()
    keyring = Keyring((b"k" * 32,))
    first = build_state_store(settings, keyring)
    second = build_state_store(settings, keyring) if backend.redis_url else first
    inside: list[str] = []
    overlaps: list[bool] = []

    async def update(store: object, name: str) -> None:
        async with store.lock("same-worker"):  # type: ignore[attr-defined]
            inside.append(name)
            overlaps.append(len(inside) > 1)
            await asyncio.sleep(0.05)
            inside.remove(name)

    try:
        await asyncio.gather(
            *(update(store, str(i)) for i, store in enumerate([first, second] * 5))
        )
        assert overlaps == [False] * 10
    finally:
        await first.close()
        if second is not first:
            await second.close()


async def test_lock_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import storage.conversation_state as module

    monkeypatch.setattr(module, "LOCK_WAIT_SECONDS", 0.05)
    store = MemoryConversationStore(Keyring((b"k" * 32,)), 60)
    async with store.lock("w"):
        with pytest.raises(ConversationBusyError):
            async with store.lock("w"):
                pass


async def test_keys_named_by_pseudonym_before_an_upgrade_move_to_their_tokens(
    redis_prefix: str,
) -> None:
    from storage.conversation_state import state_purpose

    pseudonym = Pseudonymizer(b"s" * 32).pseudonym("telegram", 123456789)
    keyring = Keyring((b"k" * 32,))
    names = RedisKeyNames(b"s" * 32, redis_prefix)
    client = Redis.from_url(REDIS_URL)
    store = RedisConversationStore(Redis.from_url(REDIS_URL), keyring, 3600, names)
    draft = ConversationState(step="report.details", data={"draft": "unpaid overtime"})
    old = f"{redis_prefix}:%s:{pseudonym}"
    try:  # what the version before wrote
        sealed = keyring.encrypt(draft.to_json().encode(), state_purpose(pseudonym))
        await client.set(old % "conv", sealed, ex=600)
        await client.zadd(old % "history", {"41": 1.0, "42": 2.0})
        await client.set(old % "attempts:status", 3, ex=600)
        await client.set(old % "lock", b"token", ex=20)

        assert await store.adopt_legacy_keys() == 4
        keys = [key.decode() async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        assert [key for key in keys if pseudonym[:8] in key] == []
        assert await store.load(pseudonym) == draft
        assert 0 < await client.ttl(names.key("conv", pseudonym)) <= 600
        assert sorted(await client.zrange(names.key("history", pseudonym), 0, -1)) == [b"41", b"42"]
        assert await store.adopt_legacy_keys() == 0, "once done, nothing more to do"
    finally:
        await store.close()
        await client.aclose()


async def test_migrations_make_exactly_the_schema_the_models_describe(backend: Backend) -> None:
    """Every column, index and table of ``storage/models.py`` is made by a migration (and none
    is left over), on both databases: a model changed without its migration fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    database = Database(backend.settings().database_url)
    try:
        await database.upgrade()

        def differences(connection: object) -> list[object]:
            context = MigrationContext.configure(
                connection,  # type: ignore[arg-type]
                opts={"compare_type": False, "compare_server_default": False},
            )
            return list(compare_metadata(context, Base.metadata))

        async with database.engine.connect() as connection:
            found = await connection.run_sync(differences)
    finally:
        await database.dispose()
    # Migration 0011 left ``cases.reporter_id`` in place, always NULL, for a later release to drop
    # (its docstring): the one difference that is known and meant.
    # On SQLite, 0009 adds ``workers.workplace_id`` with ALTER TABLE ... REFERENCES, which
    # cannot name the foreign key, so the reflected key has no name: the same key, unnamed.
    known = ["reporter_id"] + (["workplace_id"] if backend.name == "sqlite-memory" else [])
    unexpected = [change for change in found if not any(column in repr(change) for column in known)]
    assert unexpected == [], unexpected

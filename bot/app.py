"""The composition root: builds every part of the bot from one ``Settings`` object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from bot.errors import SchemaOutdatedError, ServiceUnavailableError
from bot.gateway import ConversationGateway
from bot.settings import SecretKeys, Settings, resolve_keys
from conversations.engine import ConversationEngine
from conversations.ports import Services
from services.broadcasts import BroadcastPolicy
from services.cases import CasePolicy, CaseService
from services.casework import CaseworkService, ClockPolicy
from services.education import LearningService
from services.outbox import Outbox
from services.staff_accounts import StaffAccounts
from services.workers import WorkerProfileService
from storage.conversation_state import (
    ConversationStore,
    MemoryConversationStore,
    RedisConversationStore,
)
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database
from storage.rate_limits import AttemptCounter, MemoryAttemptCounter, RedisAttemptCounter
from storage.recent_ids import (
    ChatHistory,
    MemoryChatHistory,
    MemoryUpdateLog,
    RedisChatHistory,
    RedisUpdateLog,
    UpdateLog,
)
from storage.send_rate import MemorySendRate, RedisSendRate, SendRate


@dataclass
class App:
    settings: Settings
    keys: SecretKeys
    keyring: Keyring
    pseudonymizer: Pseudonymizer
    database: Database
    state_store: ConversationStore
    gateway: ConversationGateway
    cases: CaseService
    outbox_wake: asyncio.Event
    outbox: Outbox
    casework: CaseworkService
    staff_accounts: StaffAccounts
    chat_history: ChatHistory
    redis: Redis | None

    def update_log(self, bot_id: str) -> UpdateLog:
        if self.redis is not None:
            return RedisUpdateLog(self.redis, self.settings.redis_prefix, bot_id)
        return MemoryUpdateLog()

    async def close(self) -> None:
        await self.state_store.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.dispose()


@asynccontextmanager
async def database_errors_named() -> AsyncIterator[None]:
    """Turn a driver's connection failure into one line naming WVB_DATABASE_URL."""
    try:
        yield
    except (OSError, DBAPIError) as error:
        raise ServiceUnavailableError(
            f"WVB_DATABASE_URL: cannot use the database ({type(error).__name__})"
        ) from None


def connect_redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    return Redis.from_url(settings.redis_url, health_check_interval=30)


def build_state_store(
    settings: Settings, keyring: Keyring, redis: Redis | None = None
) -> ConversationStore:
    """The state store; it closes the Redis client only if it made that client itself."""
    ttl = settings.draft_ttl_hours * 3600
    client = redis or connect_redis(settings)
    if client is None:
        return MemoryConversationStore(keyring, ttl)
    return RedisConversationStore(
        client, keyring, ttl, settings.redis_prefix, owns_client=redis is None
    )


def broadcast_policy(settings: Settings) -> BroadcastPolicy:
    return BroadcastPolicy(
        quiet_window=settings.quiet_window,
        default_timezone=settings.timezone,
        language_timezones=settings.timezones_by_language,
        default_language=settings.default_language,
    )


def build_send_rate(settings: Settings, redis: Redis | None) -> SendRate:
    """The broadcast rate: shared through Redis by every process, or in memory (one process)."""
    if redis is not None:
        return RedisSendRate(
            redis, settings.redis_prefix, settings.broadcast_rate, settings.broadcast_chat_interval
        )
    return MemorySendRate(settings.broadcast_rate, settings.broadcast_chat_interval)


async def build_app(settings: Settings, *, upgrade_schema: bool | None = None) -> App:
    """Build the bot. The embedded default migrates its own SQLite file; a shared database is
    migrated only by `wvb db upgrade`, so two processes never race to migrate it."""
    keys = resolve_keys(settings)
    keyring = Keyring(keys.encryption_keys)
    pseudonymizer = Pseudonymizer(keys.secret_key)
    database = Database(settings.database_url)
    try:
        async with database_errors_named():
            if settings.is_embedded_default if upgrade_schema is None else upgrade_schema:
                await database.upgrade()
            elif not await database.is_up_to_date():
                raise SchemaOutdatedError(
                    "WVB_DATABASE_URL: the database schema is not up to date; run `wvb db upgrade`"
                )
    except BaseException:
        await database.dispose()
        raise
    redis = connect_redis(settings)
    if redis is not None:
        try:
            await redis.ping()
        except (RedisError, OSError) as error:
            await redis.aclose()
            await database.dispose()
            raise ServiceUnavailableError(
                f"WVB_REDIS_URL: cannot reach Redis ({type(error).__name__})"
            ) from None
    outbox_wake = asyncio.Event()
    attempts: AttemptCounter = (
        RedisAttemptCounter(redis, settings.redis_prefix) if redis else MemoryAttemptCounter()
    )
    outbox = Outbox(keyring, wake=outbox_wake.set)
    cases = CaseService(
        database,
        keyring,
        outbox,
        attempts,
        CasePolicy(
            acknowledge_days=settings.acknowledge_days, response_days=settings.response_days
        ),
    )
    casework = CaseworkService(
        database,
        keyring,
        outbox,
        ClockPolicy(
            reminder_days=settings.reminder_days,
            overdue_days=settings.validation_overdue_days,
            retaliation_checkin_days=settings.retaliation_checkin_days,
        ),
    )
    services = Services(
        profiles=WorkerProfileService(database, keyring),
        cases=cases,
        casework=casework,
        learning=LearningService(database),
    )
    engine = ConversationEngine(
        services,
        default_language=settings.default_language,
        draft_days=max(1, settings.draft_ttl_hours // 24),
    )
    store = build_state_store(settings, keyring, redis)
    gateway = ConversationGateway(engine, store, pseudonymizer)
    history: ChatHistory = (
        RedisChatHistory(redis, settings.redis_prefix) if redis else MemoryChatHistory()
    )
    return App(
        settings,
        keys,
        keyring,
        pseudonymizer,
        database,
        store,
        gateway,
        cases,
        outbox_wake,
        outbox,
        casework,
        StaffAccounts(database, pseudonymizer),
        history,
        redis,
    )

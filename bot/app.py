"""The composition root: builds every part of the bot from one ``Settings`` object.

Every entry point opens the same application object — `wvb run`, `wvb chat`, every `wvb`
subcommand, the staff chat, and any later surface::

    async with open_app(settings) as app:            # services only (CLI commands)
        await app.casework.remediate(...)
    async with open_app(settings, channels=True) as app:   # plus the configured messengers
        await app.serve(stop)

Nothing else builds a service, a relay, a clock or a channel, so a setting (say
``WVB_VALIDATION_REMINDER_DAYS``) means the same thing on every surface.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from bot.channels.broadcast_relay import BroadcastRelay, lesson_button
from bot.channels.gateway import ConversationGateway
from bot.channels.outbox_relay import OutboxRelay
from bot.channels.sending import Sender
from bot.channels.staff_chat import StaffChat
from bot.channels.whatsapp.identity import recipients
from bot.errors import (
    DatabaseNotFoundError,
    KeysDoNotMatchError,
    SchemaOutdatedError,
    ServiceUnavailableError,
)
from bot.settings import (
    SecretKeys,
    Settings,
    SettingsError,
    key_file_in_use,
    key_file_keys,
    resolve_keys,
)
from conversations.engine import ConversationEngine
from conversations.messages import ChannelCapabilities
from conversations.ports import Services, WorkerRef
from media.sandbox import CleaningSandbox, SandboxLimits
from scheduler.case_clock import CaseClock
from scheduler.jobs import ProcessScheduler, build_scheduler
from services.broadcasts import BroadcastPolicy, BroadcastService
from services.cases import CasePolicy, CaseService
from services.casework import CaseworkService, ClockPolicy
from services.delivery_receipts import DeliveryReceipts
from services.education import LearningService
from services.key_canary import KeyEvidence, KeyVerdict, check_and_record, read_evidence
from services.key_rotation import KeyRotation
from services.outbox import Outbox, StaffDestination
from services.quotas import QuotaPolicy, WorkerQuotas
from services.reports import ReportService
from services.retention import RetentionPolicy, RetentionService
from services.staff import StaffService
from services.staff_accounts import StaffAccounts
from services.staff_login import LoginPolicy, StaffLogin
from services.stuck_messages import StuckMessages
from services.whatsapp_templates import WhatsAppTemplates
from services.window_hold import WindowHold
from services.workers import WorkerProfileService
from storage.conversation_state import (
    ConversationStore,
    MemoryConversationStore,
    RedisConversationStore,
)
from storage.crypto import Keyring, Pseudonymizer
from storage.database import Database, sqlite_path
from storage.rate_limits import (
    AttemptCounter,
    Blinder,
    MemoryAttemptCounter,
    RedisAttemptCounter,
)
from storage.recent_ids import (
    ChatHistory,
    MemoryChatHistory,
    MemoryUpdateLog,
    RedisChatHistory,
    RedisUpdateLog,
    UpdateLog,
)
from storage.redis_keys import RedisKeyNames
from storage.seen_messages import MemorySeenMessages, RedisSeenMessages, SeenMessages
from storage.send_rate import MemorySendRate, RedisSendRate, SendRate
from storage.whatsapp_window import MemoryWhatsAppWindow, RedisWhatsAppWindow, WhatsAppWindow

log = logging.getLogger(__name__)

#: The channel where staff alerts go (the staff chat is a Telegram chat).
STAFF_CHANNEL = "telegram"


class Channel(Protocol):
    """What the composition root needs of a channel: start it, run it, send on it."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> ChannelCapabilities:
        """What the channel can do for the worker's safety (delete messages, protect content):
        it hands them to the core with every turn, and the words the worker reads follow."""

    @property
    def rate(self) -> SendRate:
        """The shared rate of this channel's bot token (see ``bot/channels/pacing.py``)."""

    def sender(self) -> Sender:
        """Messages to one person outside a turn (outbox): conversation lane, 429s waited out."""

    def broadcast_sender(self) -> Sender:
        """Broadcast messages: the broadcast relay paces them itself."""

    async def start(self) -> None:
        """Connect and check; raises ``ChannelStartError`` naming the setting to fix."""

    async def run(self, stop: asyncio.Event) -> None:
        """Receive updates until ``stop`` is set."""

    async def close(self) -> None: ...


@runtime_checkable
class StaffChatCheck(Protocol):
    """A channel that can say whether a chat is fit for staff alerts (Telegram's getChat)."""

    async def staff_chat_problem(self, chat_id: int) -> str | None: ...


@dataclass
class App:
    settings: Settings
    keys: SecretKeys
    keyring: Keyring
    pseudonymizer: Pseudonymizer
    database: Database
    sandbox: CleaningSandbox
    redis: Redis | None
    state_store: ConversationStore
    chat_history: ChatHistory
    outbox_wake: asyncio.Event
    outbox: Outbox
    staff_destination: StaffDestination
    profiles: WorkerProfileService
    cases: CaseService
    casework: CaseworkService
    learning: LearningService
    staff: StaffService
    staff_accounts: StaffAccounts
    # The web console's logins and sessions (services/staff_login.py).
    staff_login: StaffLogin
    reports: ReportService
    broadcasts: BroadcastService
    case_clock: CaseClock
    retention: RetentionService
    engine: ConversationEngine
    gateway: ConversationGateway
    whatsapp_templates: WhatsAppTemplates
    # WhatsApp's 24-hour window per worker, and the messages held while it is closed.
    whatsapp_window: WhatsAppWindow
    window_hold: WindowHold
    channels: list[Channel] = field(default_factory=list)
    _rates: dict[str, SendRate] = field(default_factory=dict)

    # -- parts built on demand ---------------------------------------------------------------

    def update_log(self, bot_id: str) -> UpdateLog:
        if self.redis is not None:
            return RedisUpdateLog(self.redis, self.settings.redis_prefix, bot_id)
        return MemoryUpdateLog()

    def send_rate(self, name: str, rate: float | None = None) -> SendRate:
        """The one rate of a bot token or business number (``name`` never holds a secret),
        shared by its conversation replies, outbox messages and broadcasts, in this and every
        process; ``rate`` messages a second (default WVB_BROADCAST_RATE)."""
        if name not in self._rates:
            settings = self.settings
            per_second = rate if rate is not None else settings.broadcast_rate
            if self.redis is not None:
                self._rates[name] = RedisSendRate(
                    self.redis,
                    settings.redis_prefix,
                    per_second,
                    settings.broadcast_chat_interval,
                    name=name,
                )
            else:
                self._rates[name] = MemorySendRate(per_second, settings.broadcast_chat_interval)
        return self._rates[name]

    def seen_messages(self) -> SeenMessages:
        """Which webhook messages were handled already (shared by processes through Redis)."""
        if self.redis is not None:
            return RedisSeenMessages(self.redis, self.settings.redis_prefix)
        return MemorySeenMessages()

    def staff_chat(self) -> StaffChat:
        return StaffChat(
            self.staff_accounts, self.staff, self.casework, self.broadcasts,
            console_url=self.settings.console_base_url,
        )  # fmt: skip

    def stuck_messages(self) -> StuckMessages:
        """Outbox messages that wait or failed (`wvb outbox list`, `wvb outbox retry`)."""
        return StuckMessages(self.database)

    async def worker_wrote(self, worker: WorkerRef, at: float) -> int:
        """A worker's message on a channel with a window (WhatsApp) arrived, sent at ``at``:
        it opens their window, and what was held for them goes now; returns how many held
        messages it released. A failure here costs the worker nothing but a later delivery:
        their turn goes on (an unknown window is closed)."""
        try:
            if await self.whatsapp_window.wrote(worker.address, at):
                released = await self.window_hold.release(
                    worker.pseudonym, worker.channel, worker.previous_pseudonyms
                )
                if released:
                    log.info("%d held message(s) released: the worker wrote", released)
                return released
        except Exception as error:  # the type only: never the address
            log.warning("a worker's window was not recorded (%s)", type(error).__name__)
        return 0

    def add_channel(self, channel: Channel) -> None:
        self.channels.append(channel)

    async def staff_address(self) -> str | None:
        """WVB_STAFF_CHAT_ID, once its channel confirmed it is a private chat or a private
        group; None (with a warning naming the setting) when it is not, so no alert goes to a
        channel or a public group."""
        chat_id = self.settings.staff_chat_id
        if chat_id is None:
            return None
        for channel in self.channels:
            if channel.name == STAFF_CHANNEL and isinstance(channel, StaffChatCheck):
                problem = await channel.staff_chat_problem(chat_id)
                if problem is not None:
                    # Workers reporting danger are then told staff cannot be alerted at once.
                    self.staff_destination.refuse(f"WVB_STAFF_CHAT_ID: {problem}")
                    log.warning(
                        "WVB_STAFF_CHAT_ID: %s; staff alerts are not sent there, so urgent "
                        "alerts have nowhere to go",
                        problem,
                    )
                    return None
        return str(chat_id)

    def outbox_relay(self, staff_address: str | None = None) -> OutboxRelay:
        return OutboxRelay(
            self.database,
            self.keyring,
            {channel.name: channel.sender() for channel in self.channels},
            staff_address=staff_address,
            staff_channel=STAFF_CHANNEL,
            wake=self.outbox_wake,
            history=self.chat_history,
            window=self.whatsapp_window,
        )

    def broadcast_relay(self, channel: Channel) -> BroadcastRelay:
        return BroadcastRelay(
            self.database,
            self.keyring,
            channel.broadcast_sender(),
            channel.rate,
            policy=self.broadcasts.policy,
            lesson_button=lesson_button,
            chat_interval=self.settings.broadcast_chat_interval,
            history=self.chat_history,
            window=self.whatsapp_window,
        )

    def scheduler(self) -> ProcessScheduler:
        return build_scheduler(
            self.database,
            draft_ttl=timedelta(hours=self.settings.draft_ttl_hours),
            clock=self.case_clock,
            retention=self.retention,
        )

    # -- running ------------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, *, relays_only: bool = False) -> None:
        """Start every channel, the scheduler and the relays; run until ``stop`` is set, then
        shut down in order. ``relays_only``: send broadcasts only (extra sending capacity)."""
        if not relays_only:
            if isinstance(self.state_store, RedisConversationStore):
                adopted = await self.state_store.adopt_legacy_keys()
                if adopted:
                    log.info("%d Redis keys named by pseudonym renamed or dropped", adopted)
            for channel in self.channels:
                await channel.start()
        relay_stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(self.broadcast_relay(channel).run(relay_stop),
                                name=f"broadcast-relay-{channel.name}")
            for channel in self.channels
        ]  # fmt: skip
        scheduler = None if relays_only else self.scheduler()
        receiving: list[asyncio.Task[None]] = []
        try:
            if scheduler is not None:
                scheduler.start()
                relay = self.outbox_relay(await self.staff_address())
                tasks.append(asyncio.create_task(relay.run(relay_stop), name="outbox-relay"))
                receiving = [
                    asyncio.create_task(channel.run(stop), name=f"channel-{channel.name}")
                    for channel in self.channels
                ]
            log.info("bot running; stop with SIGINT or SIGTERM")
            waiting: set[asyncio.Task[Any]] = {asyncio.create_task(stop.wait()), *receiving}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task in receiving and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            log.info("shutting down")
        finally:
            # Everything is stopped and awaited even when a channel failed (its error is
            # raised above, once); nothing outlives the app's close.
            stop.set()
            await asyncio.gather(*receiving, return_exceptions=True)
            relay_stop.set()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, BaseException):  # relays catch their own: a bug
                    log.error("a relay ended with %s", type(outcome).__name__)
            if scheduler is not None:
                await scheduler.stop()
        log.info("stopped cleanly")

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        await self.sandbox.close()
        await self.state_store.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.dispose()


@asynccontextmanager
async def database_errors_named(location: str = "the database") -> AsyncIterator[None]:
    """Turn a driver's connection failure into one line naming WVB_DATABASE_URL and the
    database (``Database.location``: a path, or host and name; never the password)."""
    try:
        yield
    except (OSError, DBAPIError) as error:
        raise ServiceUnavailableError(
            f"WVB_DATABASE_URL: cannot use {location} ({type(error).__name__})"
        ) from None


#: Says something the operator must know to one line on stderr, whatever the command.
Notify = Callable[[str], None]


def tell_operator(line: str) -> None:
    print(f"note: {line}", file=sys.stderr, flush=True)


def connect_redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    return Redis.from_url(settings.redis_url, health_check_interval=30)


def redis_key_names(settings: Settings, keys: SecretKeys | None = None) -> RedisKeyNames:
    """How Redis keys name a worker: a token keyed by WVB_SECRET_KEY, never the pseudonym."""
    return RedisKeyNames((keys or resolve_keys(settings)).secret_key, settings.redis_prefix)


def build_state_store(
    settings: Settings, keyring: Keyring, redis: Redis | None = None
) -> ConversationStore:
    """The state store; it closes the Redis client only if it made that client itself."""
    ttl = settings.draft_ttl_hours * 3600
    client = redis or connect_redis(settings)
    if client is None:
        return MemoryConversationStore(keyring, ttl)
    return RedisConversationStore(
        client, keyring, ttl, redis_key_names(settings), owns_client=redis is None
    )


def staff_destination_problem(settings: Settings) -> str | None:
    """Why staff alerts have nowhere to go with these settings, naming what to set; None when a
    staff chat is configured on a configured channel (whether it is fit is asked at start)."""
    if settings.staff_chat_id is None:
        return "WVB_STAFF_CHAT_ID is not set"
    if settings.telegram_token is None:
        return "WVB_STAFF_CHAT_ID is a Telegram chat, but WVB_TELEGRAM_TOKEN is not set"
    return None


def broadcast_policy(settings: Settings) -> BroadcastPolicy:
    return BroadcastPolicy(
        quiet_window=settings.quiet_window,
        default_timezone=settings.timezone,
        language_timezones=settings.timezones_by_language,
        default_language=settings.default_language,
    )


def quota_policy(settings: Settings) -> QuotaPolicy:
    return QuotaPolicy(
        reports_per_day=settings.quota_reports_per_day,
        urgent_alerts_per_day=settings.quota_urgent_alerts_per_day,
        evidence_bytes_per_day=settings.quota_evidence_mb_per_day * 1024 * 1024,
        updates_per_minute=settings.quota_updates_per_minute,
    )


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(idle=timedelta(minutes=settings.console_idle_minutes))


def clock_policy(settings: Settings) -> ClockPolicy:
    return ClockPolicy(
        reminder_days=settings.reminder_days,
        overdue_days=settings.validation_overdue_days,
        retaliation_checkin_days=settings.retaliation_checkin_days,
    )


def sandbox_limits(settings: Settings) -> SandboxLimits:
    return SandboxLimits(
        workers=settings.sandbox_workers,
        memory_mb=settings.sandbox_memory_mb,
        cpu_seconds=settings.sandbox_cpu_seconds,
        timeout_seconds=settings.sandbox_timeout_seconds,
    )


def _no_database(settings: Settings, path: Path) -> str:
    if settings.is_embedded_default:
        return (
            f"WVB_DATABASE_URL: not set, and there is no database at {path} (the default, in the "
            "working directory): run this in the folder that holds the bot's data or set "
            "WVB_DATABASE_URL; `wvb db upgrade` makes a new database here"
        )
    return (
        f"WVB_DATABASE_URL: no database at {path}: check the path, or make a new database there "
        "with `wvb db upgrade`"
    )


async def _open_database(
    settings: Settings, upgrade_schema: bool | None, create_database: bool, notify: Notify
) -> Database:
    """Open the database, migrating the embedded default's own file. A SQLite file that does
    not exist is made only when asked (``create_database`` on the embedded default, or
    ``upgrade_schema=True``), and said with its path: a command run in the wrong folder must
    not quietly start over with an empty database."""
    migrate = settings.is_embedded_default if upgrade_schema is None else upgrade_schema
    path = sqlite_path(settings.database_url)
    may_create = migrate and bool(upgrade_schema or create_database)
    if path is not None and not path.exists() and not may_create:
        raise DatabaseNotFoundError(_no_database(settings, path))
    database = Database(settings.database_url)
    try:
        async with database_errors_named(database.location):
            if migrate:
                await database.upgrade()
            elif problem := await database.schema_problem():
                raise SchemaOutdatedError(f"WVB_DATABASE_URL: {problem}")
    except BaseException:
        await database.dispose()
        raise
    if database.created:
        notify(f"created a new database at {path}")
    return database


def _wrong_keys(
    settings: Settings, location: str, verdict: KeyVerdict, evidence: KeyEvidence
) -> str:
    """One line: which key is wrong, and what to do (restore it, or change it on purpose)."""
    if verdict.secret_key_wrong and verdict.encryption_keys_wrong:
        line = (
            f"WVB_SECRET_KEY and WVB_ENCRYPTION_KEYS: not the keys {location} was set up with, "
            "so its cases could not be read and returning workers would not be recognised; "
            "nothing was changed: restore the previous keys"
        )
    elif verdict.secret_key_wrong:
        line = (
            f"WVB_SECRET_KEY: not the pseudonym key {location} was set up with, so returning "
            "workers would not be recognised; nothing was changed: restore the previous key, or "
            "to change it on purpose put the old one in WVB_PREVIOUS_SECRET_KEYS"
        )
    else:
        line = (
            f"WVB_ENCRYPTION_KEYS: none of these keys can read {location}; nothing was changed: "
            "restore the previous keys, or to change them on purpose list the new key first "
            "and the old ones after it, then run `wvb keys rotate`"
        )
    stored = key_file_keys(settings)
    if (
        stored is not None
        and evidence.verdict(
            Pseudonymizer(stored.secret_key), Keyring(stored.encryption_keys)
        ).keys_match
    ):
        line += (
            f" (the key file {settings.key_file.resolve()} holds them: remove WVB_SECRET_KEY and "
            "WVB_ENCRYPTION_KEYS from .env and the environment, and it is used)"
        )
    return line


async def _keys_for(database: Database, settings: Settings, notify: Notify) -> SecretKeys:
    """The keys, once they are known to be the data's: the embedded default's key file is
    generated only beside a database that holds nothing yet, and named when it is."""
    generating = (path := key_file_in_use(settings)) is not None and not path.exists()
    keys = None if generating else resolve_keys(settings)
    async with database_errors_named(database.location):
        if keys is None:
            if (await read_evidence(database)).holds_data:
                raise KeysDoNotMatchError(
                    f"WVB_SECRET_KEY, WVB_ENCRYPTION_KEYS: not set, and the key file "
                    f"{settings.key_file.resolve()} that {database.location} was set up with is "
                    "missing; nothing was changed: restore it from your copy (new keys could "
                    "not read this data)"
                )
            keys = resolve_keys(settings)
            notify(
                f"generated new keys in {keys.generated_key_file}; keep a copy somewhere safe: "
                "without them the data cannot be read"
            )
        pseudonymizer = Pseudonymizer(keys.secret_key, keys.previous_secret_keys)
        verdict, evidence = await check_and_record(
            database, pseudonymizer, Keyring(keys.encryption_keys)
        )
    if not verdict.keys_match:
        raise KeysDoNotMatchError(_wrong_keys(settings, database.location, verdict, evidence))
    return keys


async def _open_redis(settings: Settings) -> Redis | None:
    redis = connect_redis(settings)
    if redis is not None:
        try:
            await redis.ping()
        except (RedisError, OSError) as error:
            await redis.aclose()
            raise ServiceUnavailableError(
                f"WVB_REDIS_URL: cannot reach Redis ({type(error).__name__})"
            ) from None
    return redis


async def build_app(
    settings: Settings,
    *,
    upgrade_schema: bool | None = None,
    create_database: bool = False,
    notify: Notify = tell_operator,
) -> App:
    """Build the bot's services. The embedded default migrates its own SQLite file; a shared
    database is migrated only by `wvb db upgrade`, so two processes never race to migrate it.
    Keys that are not the data's are refused before anything is written (the key canary)."""
    if key_file_in_use(settings) is None:
        resolve_keys(settings)  # a missing or malformed key is said before any connection
    database = await _open_database(settings, upgrade_schema, create_database, notify)
    try:
        keys = await _keys_for(database, settings, notify)
        redis = await _open_redis(settings)
    except BaseException:
        await database.dispose()
        raise
    keyring = Keyring(keys.encryption_keys)
    pseudonymizer = Pseudonymizer(keys.secret_key, keys.previous_secret_keys)
    outbox_wake = asyncio.Event()
    names = redis_key_names(settings, keys)
    attempts: AttemptCounter = (
        RedisAttemptCounter(redis, names) if redis else MemoryAttemptCounter()
    )
    outbox = Outbox(keyring, wake=outbox_wake.set, staff_channel=STAFF_CHANNEL)
    case_policy = CasePolicy(
        acknowledge_days=settings.acknowledge_days,
        response_days=settings.response_days,
        urgent_acknowledge_hours=settings.urgent_acknowledge_hours,
    )
    staff_destination = StaffDestination(staff_destination_problem(settings))
    retention = RetentionService(database, outbox, RetentionPolicy(settings.retention_days))
    quotas = WorkerQuotas(attempts, Blinder(keys.secret_key), quota_policy(settings))
    sandbox = CleaningSandbox(sandbox_limits(settings))  # starts no process until a file comes
    cases = CaseService(
        database, keyring, outbox, attempts, case_policy, quotas,
        sandbox=sandbox, staff_destination=staff_destination,
    )  # fmt: skip
    casework = CaseworkService(
        database, keyring, outbox, clock_policy(settings), quotas,
        sandbox=sandbox, case_policy=case_policy,
    )  # fmt: skip
    profiles = WorkerProfileService(database, keyring, outbox)
    learning = LearningService(database)
    engine = ConversationEngine(
        Services(profiles=profiles, cases=cases, casework=casework, learning=learning),
        default_language=settings.default_language,
        draft_days=max(1, settings.draft_ttl_hours // 24),
    )
    store = build_state_store(settings, keyring, redis)
    try:
        # Migration 0011 leaves a data upgrade that needs the keys: the first process does it.
        redis_store = store if isinstance(store, RedisConversationStore) else None
        async with database_errors_named(database.location):
            await KeyRotation(database, keyring, redis_store).upgrade_if_pending()
    except BaseException:
        await store.close()
        if redis is not None:
            await redis.aclose()
        await database.dispose()
        raise
    history: ChatHistory = RedisChatHistory(redis, names) if redis else MemoryChatHistory()
    margin = settings.whatsapp_window_margin_minutes
    return App(
        settings=settings,
        keys=keys,
        keyring=keyring,
        pseudonymizer=pseudonymizer,
        database=database,
        sandbox=sandbox,
        redis=redis,
        state_store=store,
        chat_history=history,
        outbox_wake=outbox_wake,
        outbox=outbox,
        staff_destination=staff_destination,
        profiles=profiles,
        cases=cases,
        casework=casework,
        learning=learning,
        staff=StaffService(database, keyring),
        staff_accounts=StaffAccounts(database, pseudonymizer, keyring),
        staff_login=StaffLogin(
            database, keyring, attempts, Blinder(keys.secret_key), login_policy(settings)
        ),
        reports=ReportService(database),
        broadcasts=BroadcastService(database, broadcast_policy(settings), keyring),
        case_clock=CaseClock(database, outbox),
        retention=retention,
        engine=engine,
        gateway=ConversationGateway(
            engine, store, pseudonymizer, quotas, adopt=profiles.adopt_previous
        ),
        whatsapp_templates=WhatsAppTemplates(database, settings.default_language),
        whatsapp_window=(
            RedisWhatsAppWindow(redis, names, margin, ids=whatsapp_ids)
            if redis
            else MemoryWhatsAppWindow(names, margin, ids=whatsapp_ids)
        ),
        window_hold=WindowHold(database, wake=outbox_wake.set),
    )


def whatsapp_ids(address: str) -> Sequence[str]:
    """The ids of one WhatsApp worker a stored address holds (the window is per person)."""
    return recipients(address) or (address,)


def telegram_channel(app: App) -> Channel:
    """The Telegram channel on the runtime ``WVB_TELEGRAM_RUNTIME`` names."""
    settings = app.settings
    if settings.telegram_token is None:
        raise SettingsError("WVB_TELEGRAM_TOKEN: not set")
    token = settings.telegram_token.get_secret_value()
    bot_id = token.split(":")[0]  # the public half: it names the bot, never the secret
    rate = app.send_rate(f"telegram:{bot_id}")
    history, updates = app.chat_history, app.update_log(bot_id)
    webhook = None
    if settings.webhook_url:
        from bot.channels.telegram.shared import WebhookSettings

        host, port = settings.webhook_host_port
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        webhook = WebhookSettings(
            settings.webhook_url, WebhookSettings.secret_or_random(secret), host, port
        )
    staff_chat = app.staff_chat()
    if settings.telegram_runtime == "ptb":  # only the chosen library is imported
        from bot.channels.telegram_ptb.runtime import PtbTelegramChannel

        return PtbTelegramChannel(
            token, settings.telegram_api_base, app.gateway, rate,
            history=history, updates=updates, staff_chat=staff_chat, webhook=webhook,
            concurrent_updates=settings.telegram_concurrent_updates,
        )  # fmt: skip
    from bot.channels.telegram.runtime import TelegramChannel

    return TelegramChannel(
        token, settings.telegram_api_base, app.gateway, rate,
        history=history, updates=updates, staff_chat=staff_chat, webhook=webhook,
        concurrent_updates=settings.telegram_concurrent_updates,
    )  # fmt: skip


def whatsapp_channel(app: App) -> Channel:
    """The WhatsApp channel on the Cloud API (``WVB_WHATSAPP_*``)."""
    settings = app.settings
    problem = settings.whatsapp_problem()
    if problem is not None or settings.whatsapp_token is None:
        raise SettingsError(problem or "WVB_WHATSAPP_TOKEN: not set")
    assert settings.whatsapp_phone_number_id is not None
    assert settings.whatsapp_app_secret is not None
    assert settings.whatsapp_verify_token is not None
    from bot.channels.whatsapp.receipts import StatusRecorder, failure_of
    from bot.channels.whatsapp.runtime import WhatsAppChannel
    from bot.channels.whatsapp.sender import Template

    async def neutral_template(language: str) -> Template | None:
        found = await app.whatsapp_templates.template_for(language)
        return None if found is None else Template(found.name, found.language)

    number = settings.whatsapp_phone_number_id  # public: it names the number, not a person
    names = redis_key_names(settings, app.keys)
    receipts = DeliveryReceipts(app.database, app.outbox, failure_of)
    return WhatsAppChannel(
        token=settings.whatsapp_token.get_secret_value(),
        phone_number_id=number,
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        verify_token=settings.whatsapp_verify_token.get_secret_value(),
        api_base=settings.whatsapp_api_base,
        listen=settings.whatsapp_host_port,
        gateway=app.gateway,
        rate=app.send_rate(f"whatsapp:{number}", settings.whatsapp_rate),
        names=names,
        seen=app.seen_messages(),
        window=app.whatsapp_window.is_open,
        templates=neutral_template,
        on_worker_wrote=app.worker_wrote,
        on_statuses=StatusRecorder(receipts, names),
        default_language=settings.default_language,
        concurrent_updates=settings.telegram_concurrent_updates,
    )


#: Builds a channel of the app; `open_app(channels=...)` adds the ones asked for.
ChannelFactory = Callable[[App], Channel]


def configured_channels(settings: Settings) -> list[ChannelFactory]:
    """The messengers the settings turn on."""
    factories: list[ChannelFactory] = []
    if settings.telegram_token is not None:
        factories.append(telegram_channel)
    if settings.whatsapp_enabled:
        factories.append(whatsapp_channel)
    return factories


@asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    channels: bool | list[ChannelFactory] = False,
    upgrade_schema: bool | None = None,
    create_database: bool = False,
    notify: Notify = tell_operator,
) -> AsyncIterator[App]:
    """The application, closed on exit. ``channels=True`` adds every configured messenger;
    a list adds those channels (``wvb chat`` adds the console). ``create_database``: on the
    embedded default, make the SQLite file if there is none (``wvb chat``); every other command
    refuses, naming where it looked (README, "Where the data is")."""
    app = await build_app(
        settings, upgrade_schema=upgrade_schema, create_database=create_database, notify=notify
    )
    try:
        factories = configured_channels(settings) if channels is True else channels or []
        for factory in factories:
            app.add_channel(factory(app))
        yield app
    finally:
        await app.close()

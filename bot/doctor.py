"""`wvb doctor`: the go-live checklist an operator runs before inviting workers.

It checks the settings and what they point at — keys, the database and its schema, Redis, the
Telegram channel and the staff chat through the configured Bot API, the webhook, the WhatsApp
number through the configured Cloud API base, its webhook address and its neutral templates —
then what staff configured (``services/doctor.py``). Each check is one line, OK / WARN / FAIL
with its fix.

The doctor only looks. It is the one command that does not open the application
(``bot/app.py``): opening it would create the embedded default's database and key file and
migrate the schema. So it reads the database through a read-only engine
(``storage/inspection.py``), resolves keys only from a file that exists, pings Redis, calls
getMe and getChat, and asks Graph for the WhatsApp number (``GET /{phone-number-id}``): nothing
is created, written or sent, whatever it finds.
"""

from __future__ import annotations

import ipaddress

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.telegram.probe import PROBE_TIMEOUT_SECONDS, BotApiProbe, probe_bot_api
from bot.channels.whatsapp.api import GraphClient, WaError, phone_number_problem
from bot.channels.whatsapp.webhook import WEBHOOK_PATH
from bot.errors import ChannelStartError
from bot.settings import (
    SecretKeys,
    Settings,
    SettingsError,
    check_private,
    key_file_in_use,
    resolve_keys,
)
from locales import LANGUAGES
from locales import staff_gettext as _
from services.doctor import (
    Check,
    Checklist,
    Status,
    StoredConfiguration,
    quiet_hours_check,
    read_configuration,
    stored_configuration_checks,
    whatsapp_templates_check,
)
from services.key_canary import evidence_in
from storage.crypto import Keyring, Pseudonymizer
from storage.database import sqlite_path
from storage.inspection import ReadOnlyDatabase

#: Telegram's own Bot API, which sends webhooks only to https:// addresses.
PUBLIC_BOT_API = str(Settings.model_fields["telegram_api_base"].default)


def settings_check(error: SettingsError) -> Check:
    """Settings that cannot be read: the one line says which variable, and how to fix it."""
    return Check("settings", Status.FAIL, str(error))


def keys_check(settings: Settings) -> Check:
    if settings.secret_key is not None and settings.encryption_keys is not None:
        return Check("keys", Status.OK, _("WVB_SECRET_KEY and WVB_ENCRYPTION_KEYS are set"))
    if settings.secret_key is not None or settings.encryption_keys is not None:
        missing = "WVB_ENCRYPTION_KEYS" if settings.secret_key else "WVB_SECRET_KEY"
        return Check(
            "keys",
            Status.FAIL,
            _("{name} is not set").format(name=missing),
            _("set it to the key your data was written with"),
        )
    path = settings.key_file
    if not settings.is_embedded_default or not path.exists():
        # Any other command would generate a key file here (the embedded default only); the
        # doctor creates nothing, and keys an operator keeps in .env are the go-live way.
        return Check(
            "keys", Status.FAIL, _("WVB_SECRET_KEY and WVB_ENCRYPTION_KEYS are not set"),
            _("run `wvb keys generate >> .env`, then `chmod 600 .env`"),
        )  # fmt: skip
    try:
        check_private(path)
    except SettingsError:
        return Check(
            "keys",
            Status.FAIL,
            _("{path}: other users of this machine can read or change it").format(path=path),
            _("run `chmod 600 {path}`").format(path=path),
        )
    try:
        resolve_keys(settings)  # the file exists: nothing is generated
    except SettingsError as error:
        return Check(
            "keys", Status.FAIL, str(error),
            _("restore {path} from your copy").format(path=path),
        )  # fmt: skip
    return Check(
        "keys",
        Status.OK,
        _("in {path}, readable only by you; keep a copy elsewhere").format(path=path),
    )


def _configured_keys(settings: Settings) -> SecretKeys | None:
    """The keys the bot would use, without generating a key file; None when there are none
    (the ``keys`` line already says so)."""
    path = key_file_in_use(settings)
    if path is not None and not path.exists():
        return None
    try:
        return resolve_keys(settings)
    except SettingsError:
        return None


async def keys_match_check(settings: Settings, database: ReadOnlyDatabase) -> Check | None:
    """Whether the keys read the data, judged by the key canary as `wvb run` judges it
    (``services/key_canary.py``); `wvb run` would refuse keys that fail here."""
    keys = _configured_keys(settings)
    if keys is None:
        return None
    async with database.sessions() as session:
        evidence = await evidence_in(session)
    verdict = evidence.verdict(
        Pseudonymizer(keys.secret_key, keys.previous_secret_keys), Keyring(keys.encryption_keys)
    )
    wrong = [
        name
        for name, is_wrong in (
            ("WVB_SECRET_KEY", verdict.secret_key_wrong),
            ("WVB_ENCRYPTION_KEYS", verdict.encryption_keys_wrong),
        )
        if is_wrong
    ]
    if wrong:
        return Check(
            "keys_match",
            Status.FAIL,
            _("{names}: not the keys this data was made with").format(names=", ".join(wrong)),
            _("restore the previous keys; `wvb run` says which and how"),
        )
    if not evidence.holds_data:
        return Check("keys_match", Status.OK, _("no data yet: these keys will be the data's"))
    return Check("keys_match", Status.OK, _("these keys read the data"))


def _driver_error(error: BaseException) -> str:
    """The name of the driver's own error under SQLAlchemy's wrappers (InvalidCatalogNameError
    says more than DBAPIError); never its message, which may quote the URL."""
    while error.__cause__ is not None:
        error = error.__cause__
    return type(error).__name__


def _database_name(url: str) -> str:
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return make_url(url).render_as_string(hide_password=True)


async def database_checks(settings: Settings) -> tuple[list[Check], StoredConfiguration | None]:
    """The database and its schema, then what staff configured in it. A database that does
    not exist yet holds nothing, so the checks after it list all that is missing; one that
    cannot be read (or has another schema) is not read further."""
    url = settings.database_url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return [
            Check(
                "database", Status.FAIL, _("no database at {path}").format(path=path),
                _("run `wvb db upgrade`"),
            )
        ], StoredConfiguration()  # fmt: skip
    name = _database_name(url)

    def unusable(error: Exception) -> Check:
        return Check(
            "database",
            Status.FAIL,
            _("cannot use the database {name} ({error})").format(
                name=name, error=_driver_error(error)
            ),
            _("check WVB_DATABASE_URL, and that the database server runs"),
        )

    database = ReadOnlyDatabase(url)
    try:
        try:
            schema = await database.schema()
        except (OSError, SQLAlchemyError) as error:
            return [unusable(error)], None
        checks = [Check("database", Status.OK, _("reachable: {name}").format(name=name))]
        if schema.current is None:
            checks.append(
                Check("schema", Status.FAIL, _("no schema yet"), _("run `wvb db upgrade`"))
            )
            return checks, StoredConfiguration()
        if not schema.known:
            checks.append(
                Check(
                    "schema",
                    Status.FAIL,
                    _("schema {current} is newer than this version of the bot").format(
                        current=schema.current
                    ),
                    _("run the newer version of the bot"),
                )
            )
            return checks, None
        if not schema.up_to_date:
            checks.append(
                Check(
                    "schema",
                    Status.FAIL,
                    _("schema {current}; this version needs {head}").format(
                        current=schema.current, head=schema.head
                    ),
                    _("run `wvb db upgrade`"),
                )
            )
            return checks, None
        checks.append(Check("schema", Status.OK, _("current ({head})").format(head=schema.head)))
        try:
            if (keys_match := await keys_match_check(settings, database)) is not None:
                checks.append(keys_match)
            return checks, await read_configuration(database.sessions)
        except (OSError, SQLAlchemyError) as error:
            return [*checks, unusable(error)], None
    finally:
        await database.dispose()


async def redis_check(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check(
            "redis",
            Status.WARN,
            _("WVB_REDIS_URL is not set: conversations in progress are kept in memory, lost "
              "on restart and not shared by two bot processes"),
            _("set WVB_REDIS_URL before going live"),
        )  # fmt: skip
    client = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        return Check(
            "redis",
            Status.FAIL,
            _("WVB_REDIS_URL: cannot reach Redis ({error})").format(error=type(error).__name__),
            _("check WVB_REDIS_URL, and that Redis runs"),
        )
    finally:
        await client.aclose()
    return Check("redis", Status.OK, _("reachable"))


def _no_messenger() -> Check:
    return Check(
        "channel",
        Status.FAIL,
        _("no messenger is configured: workers cannot reach the bot"),
        _("set WVB_TELEGRAM_TOKEN (from @BotFather), or WVB_WHATSAPP_TOKEN "
          "(README, Connecting WhatsApp)"),
    )  # fmt: skip


def _staff_chat_unset(*, telegram: bool = True) -> Check:
    return Check(
        "staff_chat",
        Status.FAIL,
        _("WVB_STAFF_CHAT_ID is not set: urgent alerts reach nobody"),
        _("set WVB_STAFF_CHAT_ID to your private staff group's id")
        if telegram
        else _("set WVB_TELEGRAM_TOKEN and WVB_STAFF_CHAT_ID: urgent alerts go to a private "
               "Telegram group"),
    )  # fmt: skip


async def messenger_checks(settings: Settings) -> list[Check]:
    """A channel workers can reach (Telegram; WhatsApp once it is a channel here), and the staff
    chat urgent alerts go to, each asked through the configured Bot API."""
    token = settings.telegram_token
    chat_id = settings.staff_chat_id
    if token is None:
        # WhatsApp alone is a channel (its own lines follow); staff alerts still need Telegram.
        channels = [] if settings.whatsapp_enabled else [_no_messenger()]
        if chat_id is None:
            return [*channels, _staff_chat_unset(telegram=False)]
        return [
            *channels,
            Check(
                "staff_chat",
                Status.FAIL,
                _("the staff chat is a Telegram chat, and Telegram is not configured"),
                _("set WVB_TELEGRAM_TOKEN (from @BotFather)"),
            ),
        ]
    base = settings.telegram_api_base or PUBLIC_BOT_API  # an empty setting means the default
    try:
        probe: BotApiProbe = await probe_bot_api(token.get_secret_value(), base, chat_id)
    except ChannelStartError as error:
        rejected = str(error).startswith("WVB_TELEGRAM_TOKEN")
        channel = Check(
            "channel",
            Status.FAIL,
            str(error),
            _("copy the token again from @BotFather")
            if rejected
            else _("check WVB_TELEGRAM_API_BASE, and the network"),
        )
        if chat_id is None:
            return [channel, _staff_chat_unset()]
        return [
            channel,
            Check(
                "staff_chat",
                Status.FAIL,
                _("not checked: Telegram did not answer"),
                _("fix the channel first"),
            ),
        ]
    channel = Check(
        "channel",
        Status.OK,
        _("Telegram bot @{username} answers at {base}").format(username=probe.username, base=base),
    )
    if chat_id is None:
        return [channel, _staff_chat_unset()]
    if probe.staff_chat_problem is not None:
        return [
            channel,
            Check(
                "staff_chat",
                Status.FAIL,
                _("WVB_STAFF_CHAT_ID: {problem}; no alert is sent there").format(
                    problem=probe.staff_chat_problem
                ),
                _("use a private group without a @username"),
            ),
        ]
    return [channel, Check("staff_chat", Status.OK, _("private: urgent alerts go there"))]


def webhook_check(settings: Settings) -> Check:
    url = settings.webhook_url
    if not url:
        return Check("webhook", Status.OK, _("not used: Telegram long polling"))
    public_api = (settings.telegram_api_base or PUBLIC_BOT_API) == PUBLIC_BOT_API
    if url.startswith("http://") and public_api:
        return Check(
            "webhook",
            Status.FAIL,
            _("Telegram sends updates only to https:// addresses"),
            _("use an https:// WVB_WEBHOOK_URL"),
        )
    if settings.webhook_secret is None:
        # Safe for one process (the bot registers the webhook with a random secret at every
        # start); two or more behind one address would each refuse the others' updates.
        return Check(
            "webhook",
            Status.WARN,
            _("WVB_WEBHOOK_SECRET is not set: each start picks a random one, so bot processes "
              "behind one webhook refuse each other's updates"),
            _("set WVB_WEBHOOK_SECRET"),
        )  # fmt: skip
    if settings.telegram_token is None:
        return Check(
            "webhook",
            Status.WARN,
            _("WVB_WEBHOOK_URL is set, but no Telegram token: it is not used"),
            _("set WVB_TELEGRAM_TOKEN, or unset WVB_WEBHOOK_URL"),
        )
    return Check("webhook", Status.OK, _("{url}, with a secret").format(url=url))


#: Hosts a listener binds to when it should take connections from anywhere.
_EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (compared, not bound)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve beyond this machine


async def whatsapp_checks(settings: Settings, stored: StoredConfiguration | None) -> list[Check]:
    """The WhatsApp channel, when WVB_WHATSAPP_TOKEN turns it on: its settings and the number
    asked through the configured Cloud API base, where its webhook listens, and the neutral
    templates (``stored``: None when the database could not be read)."""
    if not settings.whatsapp_enabled:
        if settings.whatsapp_phone_number_id or settings.whatsapp_app_secret:
            return [_whatsapp_without_token()]
        return []
    checks = [await _whatsapp_number_check(settings), _whatsapp_listen_check(settings)]
    if stored is not None:
        checks.append(whatsapp_templates_check(stored, list(LANGUAGES), settings.default_language))
    return checks


def _whatsapp_without_token() -> Check:
    return Check(
        "whatsapp",
        Status.WARN,
        _("WVB_WHATSAPP_TOKEN is not set, but other WVB_WHATSAPP_ settings are: WhatsApp is off"),
        _("set WVB_WHATSAPP_TOKEN (a system user's token), or remove the others"),
    )


async def _whatsapp_number_check(settings: Settings) -> Check:
    guide = _("see README, Connecting WhatsApp")
    if (problem := settings.whatsapp_problem()) is not None:
        return Check("whatsapp", Status.FAIL, problem, guide)
    assert settings.whatsapp_token is not None
    assert settings.whatsapp_phone_number_id is not None
    async with GraphClient(
        api_base=settings.whatsapp_api_base,
        token=settings.whatsapp_token.get_secret_value(),
        phone_number_id=settings.whatsapp_phone_number_id,
        timeout=PROBE_TIMEOUT_SECONDS,
        connect_timeout=PROBE_TIMEOUT_SECONDS,
    ) as graph:
        try:
            number = await graph.business_number()
        except WaError as error:
            problem = phone_number_problem(error, graph.api_base)
            setting = problem.split(":", 1)[0]
            fixes = {
                "WVB_WHATSAPP_TOKEN": _(
                    "generate a new system user token (README, Connecting WhatsApp)"
                ),
                "WVB_WHATSAPP_PHONE_NUMBER_ID": _(
                    "copy the Phone number ID from the app's WhatsApp, API Setup page"
                ),
            }
            return Check(
                "whatsapp",
                Status.FAIL,
                problem,
                fixes.get(setting, _("check WVB_WHATSAPP_API_BASE, and the network")),
            )
    name = number.verified_name or _("no display name")
    return Check(
        "whatsapp",
        Status.OK,
        _("number {number} ({name}) answers at {base}; workers see this name in every "
          "notification").format(
            number=number.display_phone_number, name=name, base=graph.api_base
        ),
    )  # fmt: skip


def _whatsapp_listen_check(settings: Settings) -> Check:
    """Meta posts only to https:// addresses with a valid certificate, and the bot's listener
    speaks plain HTTP: it belongs on a loopback address behind a TLS reverse proxy. Listening
    beyond this machine is a WARN, not a FAIL: the proxy may run on another host or in another
    container, which the doctor cannot see."""
    listen = settings.whatsapp_listen
    host, port = settings.whatsapp_host_port
    if settings.webhook_url:
        telegram_host, telegram_port = settings.webhook_host_port
        if port == telegram_port and (
            host == telegram_host or {host, telegram_host} & _EVERY_INTERFACE
        ):
            return Check(
                "wa_webhook",
                Status.FAIL,
                _("WVB_WHATSAPP_LISTEN={listen} is the address of the Telegram webhook "
                  "(WVB_WEBHOOK_LISTEN): one of them cannot start").format(listen=listen),
                _("set WVB_WHATSAPP_LISTEN=127.0.0.1:8082"),
            )  # fmt: skip
    if not _loopback(host):
        return Check(
            "wa_webhook",
            Status.WARN,
            _("WVB_WHATSAPP_LISTEN={listen} takes plain-HTTP connections from beyond this "
              "machine").format(listen=listen),
            _("listen on 127.0.0.1 behind an HTTPS reverse proxy, or let only the proxy reach "
              "port {port}").format(port=port),
        )  # fmt: skip
    return Check(
        "wa_webhook",
        Status.OK,
        _("{listen}, for an HTTPS reverse proxy at https://YOUR-HOST{path}").format(
            listen=listen, path=WEBHOOK_PATH
        ),
    )


async def examine(settings: Settings) -> Checklist:
    """Every check, in the order an operator fixes them."""
    database, stored = await database_checks(settings)
    checks = [
        keys_check(settings),
        *database,
        await redis_check(settings),
        *await messenger_checks(settings),
        webhook_check(settings),
        *await whatsapp_checks(settings, stored),
    ]
    if stored is not None:
        checks += stored_configuration_checks(
            stored,
            default_timezone=settings.timezone,
            language_timezones=settings.timezones_by_language,
        )
    checks.append(quiet_hours_check(settings.quiet_hours, settings.quiet_window))
    return Checklist.of(checks)

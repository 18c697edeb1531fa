"""Settings from the environment (prefix ``WVB_``) and ``.env``, named exactly as in CONTRACT.md.

Nothing else in the code base reads environment variables: the composition root builds every part
from one ``Settings`` object. A bad value raises ``SettingsError`` with one line that names the
variable, which the CLI prints and turns into exit code 2.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///wvb.sqlite3"
DEFAULT_KEY_FILE = ".wvb-keys"
_QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_KEY_BYTES = 32


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WVB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = "wvb"
    telegram_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    # Which library runs the Telegram channel; both implement the same channel protocol.
    telegram_runtime: Literal["aiogram", "ptb"] = "aiogram"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1:8080"
    # WhatsApp Business Cloud API (docs/design/whatsapp.md, README "Connecting WhatsApp"): on
    # when the token is set; the other three secrets and the phone number id are then required.
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base: str = "https://graph.facebook.com"
    whatsapp_listen: str = "127.0.0.1:8082"
    # Messages a second for the one business phone number (Meta's default throughput is 80).
    whatsapp_rate: float = Field(default=80.0, gt=0, le=1000)
    # Free-form messages stop this many minutes before Meta's 24-hour window closes, so a message
    # in flight never arrives after it (the neutral template goes instead).
    whatsapp_window_margin_minutes: int = Field(default=30, ge=0, le=600)
    # The staff web console (`wvb console`): where it listens, its public base URL behind a
    # reverse proxy (enrolment links name it; default http://LISTEN), and how long a session
    # may sit idle before it ends.
    console_listen: str = "127.0.0.1:8081"
    console_url: str | None = None
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    staff_chat_id: int | None = None
    quiet_hours: str = "21:00-07:00"
    secret_key: SecretStr | None = None
    # Pseudonym keys replaced by WVB_SECRET_KEY: a worker or staff member known under one of
    # them is recognised when they next write, and moved to the current key (docs/SECURITY.md).
    previous_secret_keys: Annotated[SecretStr | None, NoDecode] = None
    encryption_keys: Annotated[SecretStr | None, NoDecode] = None
    key_file: Path = Path(DEFAULT_KEY_FILE)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    default_language: str = "en"
    # Case clocks: staff acknowledge within this many days, and respond within this many.
    acknowledge_days: int = Field(default=7, ge=1, le=365)
    response_days: int = Field(default=90, ge=1, le=3650)
    # Urgent cases (danger, forced labour, violence, children) are acknowledged within this
    # many hours instead: shown to the worker, and flagged to staff at once when missed.
    urgent_acknowledge_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Worker validation: reminders after these days without an answer, then flagged overdue to
    # staff (never closed automatically); a retaliation check-in this many days after closing.
    validation_reminder_days: str = "2,5"
    validation_overdue_days: int = Field(default=10, ge=1, le=365)
    retaliation_checkin_days: int = Field(default=30, ge=1, le=3650)
    # The content of a case that ended (closed, closed unvalidated, withdrawn) is deleted this
    # many days later; only what the counts need stays (services/retention.py).
    retention_days: int = Field(default=90, ge=1, le=36500)
    # Idle conversation drafts expire after this long; durable profile data lives in the database.
    draft_ttl_hours: int = Field(default=72, ge=1, le=24 * 90)
    # Broadcasts: the global send rate shared by every process (Telegram allows about 30 messages
    # a second, up to 1,000 with paid broadcasts), and the least gap between two to one chat.
    broadcast_rate: float = Field(default=25.0, gt=0, le=1000)
    broadcast_chat_interval: float = Field(default=1.0, ge=0, le=60)
    # Quiet hours are local time: the worker's workplace time zone, else their language's, else
    # this one.
    timezone: str = "UTC"
    language_timezones: str = ""
    # Quotas per worker (services/quotas.py, docs/SECURITY.md): reports and urgent staff alerts
    # in 24 hours, megabytes of evidence files in 24 hours, updates a minute.
    quota_reports_per_day: int = Field(default=5, ge=1, le=1000)
    quota_urgent_alerts_per_day: int = Field(default=1, ge=1, le=1000)
    quota_evidence_mb_per_day: int = Field(default=100, ge=1, le=100_000)
    quota_updates_per_minute: int = Field(default=120, ge=10, le=100_000)
    # Updates handled at once by one Telegram process (aiogram: a semaphore; PTB: its own bound).
    telegram_concurrent_updates: int = Field(default=256, ge=1, le=10_000)
    # Evidence files are parsed in child processes (media/sandbox.py): how many at once, and
    # each one's address space, CPU time and wall-clock time before it is killed.
    sandbox_workers: int = Field(default=2, ge=1, le=64)
    sandbox_memory_mb: int = Field(default=1536, ge=256, le=65536)
    sandbox_cpu_seconds: int = Field(default=20, ge=1, le=3600)
    sandbox_timeout_seconds: float = Field(default=40.0, gt=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _database_url_is_async(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if not re.fullmatch(r"\d{1,20}:[A-Za-z0-9_-]{20,}", value.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (digits:letters)")
        return value

    @field_validator("whatsapp_token", "whatsapp_app_secret", "whatsapp_verify_token")
    @classmethod
    def _whatsapp_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value().strip() == "":
            return None
        if any(character.isspace() for character in value.get_secret_value()):
            raise ValueError("must not contain spaces or line breaks")
        return value

    @field_validator("whatsapp_phone_number_id")
    @classmethod
    def _phone_number_id(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not re.fullmatch(r"\d{1,30}", value):
            raise ValueError("must be the digits of the phone number ID in Meta's app dashboard")
        return value

    @field_validator("telegram_api_base", "webhook_url", "whatsapp_api_base", "console_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("secret_key", "encryption_keys", "previous_secret_keys")
    @classmethod
    def _keys_decode(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for part in value.get_secret_value().split(","):
            _decode_key(part)
        return value

    @field_validator("webhook_listen", "whatsapp_listen", "console_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, for example 0.0.0.0:8080")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        value = value.strip()
        if value and not _QUIET_HOURS.match(value):
            raise ValueError("must look like 21:00-07:00, or be empty to disable")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value.strip())

    @field_validator("language_timezones")
    @classmethod
    def _language_timezones(cls, value: str) -> str:
        from locales import LANGUAGES

        for part in filter(None, (part.strip() for part in value.split(","))):
            language, sep, zone = part.partition("=")
            if not sep or language.strip() not in LANGUAGES:
                raise ValueError(
                    f"must be LANG=ZONE pairs separated by commas (LANG one of "
                    f"{', '.join(LANGUAGES)}), such as my=Asia/Bangkok"
                )
            _check_timezone(zone.strip())
        return value

    @property
    def timezones_by_language(self) -> dict[str, str]:
        pairs = (part.partition("=") for part in self.language_timezones.split(",") if part)
        return {language.strip(): zone.strip() for language, _, zone in pairs}

    @property
    def quiet_window(self) -> tuple[int, int] | None:
        """Quiet hours as minutes after midnight (start, end), or None when disabled."""
        if not self.quiet_hours:
            return None
        start, end = self.quiet_hours.split("-")
        return _minutes(start), _minutes(end)

    @field_validator("validation_reminder_days")
    @classmethod
    def _reminder_days(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() and 0 < int(part) <= 365 for part in parts):
            raise ValueError("must be whole days separated by commas, such as 2,5")
        return ",".join(parts)

    @property
    def reminder_days(self) -> tuple[int, ...]:
        return tuple(int(day) for day in self.validation_reminder_days.split(",") if day)

    @field_validator("default_language")
    @classmethod
    def _default_language(cls, value: str) -> str:
        from locales import LANGUAGES

        if value not in LANGUAGES:
            raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
        return value

    @property
    def is_embedded_default(self) -> bool:
        return self.database_url == DEFAULT_DATABASE_URL

    @property
    def webhook_host_port(self) -> tuple[str, int]:
        return _host_port(self.webhook_listen)

    @property
    def whatsapp_host_port(self) -> tuple[str, int]:
        return _host_port(self.whatsapp_listen)

    @property
    def console_host_port(self) -> tuple[str, int]:
        return _host_port(self.console_listen)

    @property
    def console_base_url(self) -> str:
        """Where staff open the console: ``WVB_CONSOLE_URL`` behind a reverse proxy, else the
        address it listens on. Links to it (enrolment, the staff chat's /case) start here."""
        if self.console_url:
            return self.console_url.rstrip("/")
        host, port = self.console_host_port
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def messenger_configured(self) -> bool:
        """Whether a messenger channel is set (Telegram or WhatsApp)."""
        return self.telegram_token is not None or self.whatsapp_token is not None

    def log_secrets(self) -> list[str]:
        """The secrets a log line must never show (``configure_logging`` masks them)."""
        values = (
            self.telegram_token,
            self.webhook_secret,
            self.whatsapp_token,
            self.whatsapp_app_secret,
            self.whatsapp_verify_token,
        )
        return [value.get_secret_value() for value in values if value is not None]

    @property
    def whatsapp_enabled(self) -> bool:
        return self.whatsapp_token is not None

    def whatsapp_problem(self) -> str | None:
        """What is missing for the WhatsApp channel, naming the setting; None when it can run
        (or is off: no WVB_WHATSAPP_TOKEN)."""
        if self.whatsapp_token is None:
            return None
        missing = [
            name
            for name, value in (
                ("WVB_WHATSAPP_PHONE_NUMBER_ID", self.whatsapp_phone_number_id),
                ("WVB_WHATSAPP_APP_SECRET", self.whatsapp_app_secret),
                ("WVB_WHATSAPP_VERIFY_TOKEN", self.whatsapp_verify_token),
            )
            if value is None
        ]
        if missing:
            names = ", ".join(missing)
            return f"{names}: not set, and WVB_WHATSAPP_TOKEN is (WhatsApp needs all four)"
        return None


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _check_timezone(zone: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {zone!r}; use an IANA name such as Asia/Bangkok"
        ) from None
    return zone


@dataclass(frozen=True)
class SecretKeys:
    """Decoded key material: the pseudonym key and the data-encryption keys (newest first)."""

    secret_key: bytes
    encryption_keys: tuple[bytes, ...]
    previous_secret_keys: tuple[bytes, ...] = ()
    #: The key file this call generated (absolute), if it did: the operator is told where.
    generated_key_file: Path | None = field(default=None, compare=False, repr=False)


def check_private(path: Path) -> None:
    """Refuse a file of secrets that other users of this machine can read or change."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise SettingsError(
            f"{path}: other users of this machine can read or change it; run `chmod 600 {path}`"
        )


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line that names the variable. A
    ``.env`` file others can read is refused before anything is read from it."""
    env_file = overrides.get("_env_file", Settings.model_config.get("env_file"))
    if isinstance(env_file, str | Path):
        check_private(Path(env_file))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"WVB_{field.upper()}: {message}") from None


def _decode_key(text: str) -> bytes:
    """Decode one key; ValueError (which pydantic reports against the variable) if malformed."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64; run `wvb keys generate`") from None
    if len(raw) != _KEY_BYTES:
        raise ValueError(
            f"each key must be {_KEY_BYTES} random bytes in base64; run `wvb keys generate`"
        )
    return raw


def generate_key_lines() -> str:
    """Fresh secrets as .env lines."""

    def new_key() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode().rstrip("=")

    return f"WVB_SECRET_KEY={new_key()}\nWVB_ENCRYPTION_KEYS={new_key()}\n"


def _read_key_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in ("WVB_SECRET_KEY", "WVB_ENCRYPTION_KEYS"):
            values[name.strip()] = value.strip()
    return values


def key_file_in_use(settings: Settings) -> Path | None:
    """The key file the keys come from: on the embedded default, when neither WVB_SECRET_KEY
    nor WVB_ENCRYPTION_KEYS is set. It need not exist yet (``resolve_keys`` generates it)."""
    if settings.secret_key or settings.encryption_keys or not settings.is_embedded_default:
        return None
    return settings.key_file


def key_file_keys(settings: Settings) -> SecretKeys | None:
    """The keys in the embedded default's key file, even while WVB_SECRET_KEY and
    WVB_ENCRYPTION_KEYS (which come first) are set: what a refusal of those can point to."""
    path = settings.key_file
    if not settings.is_embedded_default or not path.is_file():
        return None
    stored = _read_key_file(path)
    try:
        return SecretKeys(
            _decode_key(stored.get("WVB_SECRET_KEY", "")),
            tuple(_decode_key(part) for part in stored.get("WVB_ENCRYPTION_KEYS", "").split(",")),
        )
    except ValueError:
        return None


def resolve_keys(settings: Settings) -> SecretKeys:
    """Return the key material, generating a local key file only for the embedded default.

    A production deployment (any explicit database) must be given its keys: silently generating
    them there would make data unreadable the day the file is lost. The composition root decides
    whether the key file may be generated (``key_file_in_use``) before calling this, and names
    the file it generated (``SecretKeys.generated_key_file``).
    """
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    encryption = settings.encryption_keys.get_secret_value() if settings.encryption_keys else ""
    generated = None
    if not secret and not encryption and settings.is_embedded_default:
        path = settings.key_file
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as key_file:
                key_file.write(
                    "# Keys of the embedded default bot. Losing them makes its data unreadable.\n"
                )
                key_file.write(generate_key_lines())
            generated = path.resolve()
        check_private(path)
        stored = _read_key_file(path)
        secret = stored.get("WVB_SECRET_KEY", "")
        encryption = stored.get("WVB_ENCRYPTION_KEYS", "")
        if not secret or not encryption:
            raise SettingsError(f"WVB_SECRET_KEY: the key file {path} is incomplete")
    if not secret:
        raise SettingsError("WVB_SECRET_KEY: not set; run `wvb keys generate` and add it to .env")
    if not encryption:
        raise SettingsError(
            "WVB_ENCRYPTION_KEYS: not set; run `wvb keys generate` and add it to .env"
        )
    try:
        secret_key = _decode_key(secret)
    except ValueError as error:
        raise SettingsError(f"WVB_SECRET_KEY: {error}") from None
    try:
        keys = tuple(_decode_key(part) for part in encryption.split(",") if part.strip())
    except ValueError as error:
        raise SettingsError(f"WVB_ENCRYPTION_KEYS: {error}") from None
    if not keys:
        raise SettingsError("WVB_ENCRYPTION_KEYS: no key given")
    previous = settings.previous_secret_keys
    previous_keys = tuple(
        _decode_key(part)  # validated with the settings
        for part in (previous.get_secret_value() if previous else "").split(",")
        if part.strip()
    )
    return SecretKeys(secret_key, keys, previous_keys, generated_key_file=generated)

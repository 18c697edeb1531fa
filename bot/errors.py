"""Operator-facing failures: each carries one line naming the setting to check.

Kept apart from the modules that raise them so the CLI can catch them without importing aiogram.
"""

from __future__ import annotations

from bot.settings import SettingsError


class ServiceUnavailableError(Exception):
    """The database or Redis cannot be reached."""


class SchemaOutdatedError(Exception):
    """The database schema is older than this code; `wvb db upgrade` must run first."""


class ChannelStartError(Exception):
    """A channel could not start (for example Telegram rejected the token)."""


class DatabaseNotFoundError(SettingsError):
    """WVB_DATABASE_URL names a SQLite file that does not exist, and this command does not make
    new databases (only `wvb db upgrade` and, on the embedded default, `wvb chat` do)."""


class KeysDoNotMatchError(SettingsError):
    """The configured keys are not the ones the data was made with (``services/key_canary.py``);
    nothing was written."""

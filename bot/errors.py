"""Operator-facing failures: each carries one line naming the setting to check.

Kept apart from the modules that raise them so the CLI can catch them without importing aiogram.
"""

from __future__ import annotations


class ServiceUnavailableError(Exception):
    """The database or Redis cannot be reached."""


class SchemaOutdatedError(Exception):
    """The database schema is older than this code; `wvb db upgrade` must run first."""


class ChannelStartError(Exception):
    """A channel could not start (for example Telegram rejected the token)."""

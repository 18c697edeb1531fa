"""What every `wvb` command shares: reading settings and turning failures into one line."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn

import typer

from bot.errors import ChannelStartError, SchemaOutdatedError, ServiceUnavailableError
from bot.settings import Settings, SettingsError, load_settings

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        fail(str(error), EXIT_CONFIG)


def run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine, turning known operator errors into one line and an exit code."""
    try:
        asyncio.run(coroutine)
    except (SettingsError, SchemaOutdatedError, ChannelStartError) as error:
        fail(str(error), EXIT_CONFIG)
    except ServiceUnavailableError as error:
        fail(str(error), EXIT_FAILURE)

"""What every `wvb` command shares: reading settings and turning failures into one line."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn, TypeVar

import typer

from bot.errors import ChannelStartError, SchemaOutdatedError, ServiceUnavailableError
from bot.settings import Settings, SettingsError, load_settings
from storage.database import Database

S = TypeVar("S")
T = TypeVar("T")

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


def print_json(document: object) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


@asynccontextmanager
async def open_database(settings: Settings, error: type[Exception]) -> AsyncIterator[Database]:
    """The database of a staff command: named on connection failure, refused (as ``error``)
    when its schema is behind this version."""
    from bot.app import database_errors_named

    database = Database(settings.database_url)
    try:
        async with database_errors_named():
            if not await database.is_up_to_date():
                raise error("the database schema is not up to date; run `wvb db upgrade`")
            yield database
    finally:
        await database.dispose()


def call_service(
    open_service: Callable[[], AbstractAsyncContextManager[S]],
    action: Callable[[S], Awaitable[T]],
    error: type[Exception],
) -> T:
    """Run one action on a freshly opened service; ``error`` becomes one line and exit code 1."""
    result: list[T] = []

    async def main() -> None:
        async with open_service() as service:
            result.append(await action(service))

    try:
        run_async(main())
    except error as failure:
        fail(str(failure))
    return result[0]


def run_until_stopped(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``serve(stop)`` until SIGINT or SIGTERM sets ``stop``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await serve(stop)

    run_async(main())

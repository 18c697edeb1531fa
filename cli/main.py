"""`wvb`: run the bot, talk to it in the terminal, manage the database and keys.

Every failure an operator can cause (a bad setting, an unreachable database) ends in one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

import typer

from bot.settings import Settings, SettingsError, generate_key_lines, load_settings

app = typer.Typer(
    name="wvb",
    help="Worker Voice Bot: rights education, anonymous grievances, worker-validated remediation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create or migrate the database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Secrets for pseudonyms and encryption.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")

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
    from bot.app import SchemaOutdatedError, ServiceUnavailableError
    from bot.runner import ChannelStartError

    try:
        asyncio.run(coroutine)
    except (SettingsError, SchemaOutdatedError, ChannelStartError) as error:
        fail(str(error), EXIT_CONFIG)
    except ServiceUnavailableError as error:
        fail(str(error), EXIT_FAILURE)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or migrate it to this version. Safe to run twice."""
    settings = settings_or_exit()

    async def upgrade() -> None:
        from bot.app import database_errors_named
        from storage.database import Database

        database = Database(settings.database_url)
        try:
            async with database_errors_named():
                await database.upgrade()
        finally:
            await database.dispose()

    run_async(upgrade())
    typer.echo("database schema is up to date", err=True)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print fresh secrets as .env lines (append them to .env, or export them)."""
    sys.stdout.write(generate_key_lines())


@app.command("run")
def run() -> None:
    """Run the bot (every configured channel plus the scheduler) until SIGINT or SIGTERM."""
    settings = settings_or_exit()
    from bot.logging_setup import configure_logging
    from bot.runner import serve

    secrets = [
        value.get_secret_value()
        for value in (settings.telegram_token, settings.webhook_secret)
        if value is not None
    ]
    configure_logging(settings.log_level, secrets)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await serve(settings, stop)

    run_async(main())


@app.command("chat")
def chat(
    identity: str = typer.Option(
        "local", "--as", help="Talk as this simulated worker (each name is a separate worker)."
    ),
) -> None:
    """Talk to the bot in this terminal (the console channel), with numbered choices."""
    settings = settings_or_exit()
    from bot.logging_setup import configure_logging

    configure_logging("WARNING")

    async def main() -> None:
        from bot.app import build_app
        from bot.console import ConsoleChannel

        bot_app = await build_app(settings)
        try:
            await ConsoleChannel(bot_app.gateway, identity=identity).run()
        finally:
            await bot_app.close()

    try:
        run_async(main())
    except KeyboardInterrupt:
        typer.echo("", err=True)


def main() -> None:
    app()

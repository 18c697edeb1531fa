"""What every `wvb` command shares: reading settings and turning failures into one line."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from bot.errors import ChannelStartError, SchemaOutdatedError, ServiceUnavailableError
from bot.settings import Settings, SettingsError, load_settings
from domain.access import Actor
from domain.errors import NotFound, Refusal
from services.audit import cli_actor, os_account

if TYPE_CHECKING:
    from bot.app import App

T = TypeVar("T")

#: Who runs this command, resolved once per ``call_app`` (``staff_actor``).
_ACTOR: ContextVar[Actor] = ContextVar("cli_actor")

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
    """One JSON document on stdout; views (``services/views.py``) print their fields."""
    from services.views import to_json

    typer.echo(json.dumps(to_json(document), ensure_ascii=False, indent=2))


#: The option of each field a service may refuse: ``Refusal("text", "must not be empty")`` is
#: ``--text: must not be empty`` here. A field that is an argument (a reference, a name) has no
#: flag: the reason names it.
FLAGS = {
    "assigned_only": "--assigned-only",
    "assignee": "--to",
    "at": "--at",
    "country": "--country",
    "fallback": "--fallback",
    "language": "--language",
    "outside_window": "--whatsapp-outside-window",
    "reason": "--reason",
    "role": "--role",
    "segment": "--segment",
    "since": "--since",
    "site_sample": "--site-sample",
    "status": "--status",
    "summary": "--summary",
    "summary_in": "--summary-in",
    "template_language": "--template-language",
    "text": "--text",
    "texts": "--text-file",
    "timezone": "--timezone",
    "topic": "--topic",
    "unvalidated": "--unvalidated",
    "until": "--until",
}
#: Where to look for what a refusal of this field asks for.
SEE_ALSO = {
    "assignee": "wvb staff list",
    "segment": "wvb workplaces list",
    "unvalidated": "wvb cases close REFERENCE --unvalidated --reason TEXT",
}


def refusal_line(refusal: Refusal) -> str:
    """A service's refusal in the CLI's words: ``--text: must not be empty``."""
    flag = FLAGS.get(refusal.field or "")
    line = (
        f"{flag}: {refusal.reason}"
        if flag and not isinstance(refusal, NotFound)
        else refusal.reason
    )
    if refusal.field in SEE_ALSO:
        line += f" (see `{SEE_ALSO[refusal.field]}`)"
    return line


def call_app(action: Callable[[App], Awaitable[T]]) -> T:
    """Open the application (the one composition root), run one staff action on it, close it.
    A refusal becomes one line on stderr (``refusal_line``) and exit code 1."""
    from bot.app import open_app

    settings = settings_or_exit()
    result: list[T] = []

    async def main() -> None:
        async with open_app(settings) as app:
            _ACTOR.set(await app.staff_accounts.command_line_actor(os_account(), cli_actor()))
            result.append(await action(app))

    try:
        run_async(main())
    except Refusal as refusal:
        fail(refusal_line(refusal))
    return result[0]


def staff_actor() -> Actor:
    """Who runs this command, for the services to check (``services/access.py``): the staff
    account named like the OS account, with its role, or else the server's operator. Valid
    inside an action given to ``call_app``."""
    return _ACTOR.get()


def run_until_stopped(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``serve(stop)`` until SIGINT or SIGTERM sets ``stop``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await serve(stop)

    run_async(main())

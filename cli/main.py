"""`wvb`: run the bot, talk to it in the terminal, manage the database and keys.

Every failure an operator can cause (a bad setting, an unreachable database) ends in one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import typer

from bot.settings import generate_key_lines
from cli.broadcast import broadcast_app, subscribers_app
from cli.common import call_app, fail, print_json, run_async, run_until_stopped, settings_or_exit
from cli.doctor import doctor
from cli.lessons import lessons_app
from cli.outbox import outbox_app
from cli.reports import reports_app
from cli.staff import cases_app, contacts_app, staff_app, workplaces_app
from cli.usage import JSON_OPTION, CommandGroup
from cli.whatsapp import whatsapp_app

app = CommandGroup(
    name="wvb",
    help="Worker Voice Bot: rights education, anonymous grievances, worker-validated remediation.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = CommandGroup(help="Create or migrate the database schema.")
keys_app = CommandGroup(help="Secrets for pseudonyms and encryption.")
audit_app = CommandGroup(help="The audit log of staff actions.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(cases_app, name="cases")
app.add_typer(workplaces_app, name="workplaces")
app.add_typer(contacts_app, name="contacts")
app.add_typer(staff_app, name="staff")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(lessons_app, name="lessons")
app.add_typer(outbox_app, name="outbox")
app.add_typer(reports_app, name="reports")
app.add_typer(whatsapp_app, name="whatsapp")
app.command("doctor")(doctor)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or migrate it to this version. Safe to run twice."""
    settings = settings_or_exit()

    location: list[str] = []

    async def upgrade() -> None:
        from bot.app import database_errors_named, tell_operator
        from storage.database import Database, describe, sqlite_path

        async with database_errors_named(describe(settings.database_url)):
            database = Database(settings.database_url)  # a missing folder is an OSError too
        try:
            async with database_errors_named(database.location):
                await database.upgrade()
        finally:
            await database.dispose()
        if database.created:
            tell_operator(f"created a new database at {sqlite_path(settings.database_url)}")
        location.append(database.location)

    run_async(upgrade())
    typer.echo(f"the schema of {location[0]} is up to date", err=True)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print fresh secrets as .env lines (append them to .env, or export them)."""
    sys.stdout.write(generate_key_lines())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt everything under the first key in WVB_ENCRYPTION_KEYS, check that every row
    reads under that key alone, then drop the old ones."""
    from rich.progress import Progress

    from bot.app import App, database_errors_named
    from services.audit import cli_actor
    from services.key_rotation import KeyRotation, RotationReport
    from storage.conversation_state import RedisConversationStore

    async def rotate(bot_app: App) -> RotationReport:
        async with database_errors_named(bot_app.database.location):
            with Progress(transient=True) as progress:
                tasks: dict[str, Any] = {}

                def report(table: str, done: int, total: int) -> None:
                    if table not in tasks:
                        tasks[table] = progress.add_task(table, total=total)
                    progress.update(tasks[table], completed=done)

                store = bot_app.state_store
                redis_store = store if isinstance(store, RedisConversationStore) else None
                return await KeyRotation(bot_app.database, bot_app.keyring, redis_store).run(
                    report, actor=cli_actor()
                )

    from services.key_rotation import failure_lines

    result = call_app(rotate)
    for table, count in result.reencrypted.items():
        typer.echo(
            f"{table}: {count} re-encrypted, {result.already_current[table]} already current, "
            f"{result.verified.get(table, 0)} verified under the newest key",
            err=True,
        )
    if result.failures:
        for line in failure_lines(result):
            typer.echo(f"error: {line}", err=True)
        fail(
            f"{len(result.failures)} rows do not decrypt under the newest key; "
            "keep the old keys in WVB_ENCRYPTION_KEYS until this is resolved"
        )


@audit_app.command("verify")
def audit_verify(as_json: bool = JSON_OPTION) -> None:
    """Check the audit log's hash chain: exit 0 when intact, 1 naming the first bad row.

    The last row's hash (the head) is printed: keep it elsewhere, and a later run shows whether
    rows were removed from the end or the whole log rewritten."""
    from bot.app import App
    from services import audit

    async def verify(bot_app: App) -> audit.ChainReport:
        return await audit.verify(bot_app.database)

    report = call_app(verify)
    if as_json:
        print_json(
            {"intact": report.intact, "rows": report.rows, "last_id": report.last_id,
             "head": report.head, "first_bad_id": report.first_bad_id, "problem": report.problem}
        )  # fmt: skip
    if not report.intact:
        fail(str(report.problem))
    if not as_json:
        typer.echo(
            f"audit log intact: {report.rows} rows, last row {report.last_id}, head {report.head}"
        )


@app.command("run")
def run() -> None:
    """Run the bot (every configured channel plus the scheduler) until SIGINT or SIGTERM."""
    settings = settings_or_exit()
    from bot.logging_setup import configure_logging
    from bot.runner import serve

    configure_logging(settings.log_level, settings.log_secrets())
    run_until_stopped(lambda stop: serve(settings, stop))


@app.command("console")
def console() -> None:
    """Serve the staff web console on WVB_CONSOLE_LISTEN (default 127.0.0.1:8081) until SIGINT
    or SIGTERM. Run it beside `wvb run`, on the same database and Redis; behind a reverse proxy
    with TLS for anyone not on this machine (README, "The staff console")."""
    settings = settings_or_exit()
    from bot.logging_setup import configure_logging
    from web.app import run_console

    configure_logging(settings.log_level, settings.log_secrets())
    run_until_stopped(lambda stop: run_console(settings, stop))


@app.command("chat")
def chat(
    identity: str = typer.Option(
        "local",
        "--as",
        metavar="NAME",
        help="Talk as this simulated worker (each name is a separate worker).",
    ),
) -> None:
    """Talk to the bot in this terminal (the console channel), with numbered choices.

    Staff replies, validation prompts, reminders and broadcasts for this worker are printed as
    they arrive: the console runs the same relays and case clock as `wvb run`."""
    settings = settings_or_exit()
    from bot.logging_setup import configure_logging

    configure_logging("WARNING")

    async def main() -> None:
        from bot.app import open_app
        from bot.channels.console import ConsoleChannel

        # The newcomer's first command: on the embedded default it may make a new database (and
        # says where); no other command does (README, "Where the data is").
        async with open_app(settings, create_database=True) as bot_app:
            console = ConsoleChannel(
                bot_app.gateway, identity=identity, rate=bot_app.send_rate("console")
            )
            bot_app.add_channel(console)
            await bot_app.serve(asyncio.Event())

    try:
        run_async(main())
    except KeyboardInterrupt:
        typer.echo("", err=True)


def main() -> None:
    app()

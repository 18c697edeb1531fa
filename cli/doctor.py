"""`wvb doctor`: prints the go-live checklist of ``bot/doctor.py``; exit 1 when a line failed.

Settings that cannot be read are a failed line too, not a usage mistake: the doctor exists to
say what to fix before going live, and a script reads one rule: 0 ready, 1 not.
"""

from __future__ import annotations

import asyncio

import typer

from bot.settings import SettingsError, load_settings
from cli.common import EXIT_FAILURE, print_json
from locales import staff_gettext as _
from services.doctor import Checklist, Status

#: The width of the check's name in a line.
NAME_WIDTH = 12


def _line(status: Status, name: str, detail: str, fix: str | None) -> str:
    line = f"{status.value:<4}  {name:<{NAME_WIDTH}} {detail}"
    return f"{line} → {fix}" if fix else line


def _summary(checklist: Checklist) -> str:
    failed = sum(check.status == Status.FAIL for check in checklist.checks)
    warned = sum(check.status == Status.WARN for check in checklist.checks)
    if failed:
        return _("Not ready for workers: {failed} FAIL, {warned} WARN.").format(
            failed=failed, warned=warned
        )
    return _("Ready for workers: 0 FAIL, {warned} WARN.").format(warned=warned)


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Check that the bot is ready for workers: each line OK, WARN or FAIL, with the fix.

    Keys, database and schema, Redis, the Telegram channel and the staff chat (asked through
    WVB_TELEGRAM_API_BASE), webhook, the WhatsApp number (asked through WVB_WHATSAPP_API_BASE),
    its webhook address and neutral templates, workplaces, emergency contacts, time zones, quiet
    hours and stuck messages. Creates and changes nothing. Exit 1 if any line is FAIL."""
    try:
        settings = load_settings()
    except SettingsError as error:
        from bot.doctor import settings_check

        checklist = Checklist.of([settings_check(error)])
    else:
        from bot.doctor import examine

        checklist = asyncio.run(examine(settings))
    if as_json:
        print_json(checklist)
    else:
        for check in checklist.checks:
            typer.echo(_line(check.status, check.name, check.detail, check.fix))
        typer.echo(_summary(checklist))
    if not checklist.ready:
        raise typer.Exit(EXIT_FAILURE)

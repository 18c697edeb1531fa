"""`wvb outbox`: messages that wait or failed, and retrying failed ones. Thin callers of
``services.stuck_messages``; what it shows never includes a message's content or recipient."""

from __future__ import annotations

from datetime import datetime

import typer

from cli.common import call_app, print_json, staff_actor
from cli.usage import JSON_OPTION, CommandGroup
from locales import staff_gettext as _
from services.views import QueuedMessageView

outbox_app = CommandGroup(help="Messages waiting to be sent, or that failed (never their content).")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone():%Y-%m-%d %H:%M}"


def _table(messages: list[QueuedMessageView]) -> list[str]:
    """Aligned columns; the last error, of any length, comes last."""
    header = (
        _("id"), _("reference"), _("kind"), _("status"), _("tries"), _("queued"),
        _("next try"), _("last error"),
    )  # fmt: skip
    rows = [
        (
            str(message.id),
            message.reference or "-",
            message.kind,
            message.status,
            str(message.attempts),
            _when(message.created_at),
            _when(message.next_attempt_at),
            message.last_error or "",
        )
        for message in messages
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(7)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        + "  "
        + row[7]
        for row in (header, *rows)
    ]


@outbox_app.command("list")
def outbox_list(
    status: str | None = typer.Option(
        None, "--status", help="Only messages in this status: pending, failed or unreachable."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List messages not sent yet or failed, oldest first (times are local).

    Failed messages go out again after `wvb outbox retry`; unreachable ones cannot: the worker
    used /forget or blocked the bot."""
    messages = call_app(lambda app: app.stuck_messages().list_messages(staff_actor(), status))
    if as_json:
        print_json(messages)
        return
    if not messages:
        typer.echo(_("no message waits or failed"))
        return
    for line in _table(messages):
        typer.echo(line.rstrip())


@outbox_app.command("retry")
def outbox_retry(
    message_id: int | None = typer.Argument(
        None, metavar="ID", help="One failed message (see `wvb outbox list`); default: all."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put failed messages back in the queue (audited).

    Each gets a fresh set of tries; the running bot sends them within seconds."""
    retried = call_app(lambda app: app.stuck_messages().retry(staff_actor(), message_id))
    if as_json:
        print_json({"retried": retried})
    elif retried:
        ids = ", ".join(str(each) for each in retried)
        typer.echo(_("back in the queue: {ids}").format(ids=ids))
    else:
        typer.echo(_("no failed message to retry"))

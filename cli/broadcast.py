"""`wvb broadcast` and `wvb subscribers`: rights education sent to segments of subscribed workers.

Thin callers of ``services.broadcasts``; every action is audited there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.common import (
    EXIT_CONFIG,
    call_app,
    fail,
    print_json,
    run_until_stopped,
    settings_or_exit,
    staff_actor,
)
from cli.usage import JSON_OPTION, CommandGroup, usage_error
from domain.statuses import BROADCAST_ENDED, OutsideWindow
from services.broadcasts import BroadcastService, settled, topic_texts

if TYPE_CHECKING:
    from bot.app import App

T = TypeVar("T")

broadcast_app = CommandGroup(
    help="Send rights education to subscribed workers, at the messenger's rate limit.",
)
subscribers_app = CommandGroup(
    help="Workers who receive broadcasts: tags for segments (workers stay anonymous).",
)

TEXT_FILE_OPTION = typer.Option(
    [], "--text-file", metavar="LANG=PATH", help="The text in one language: LANG=PATH (repeatable)."
)
OUTSIDE_WINDOW_OPTION = typer.Option(
    OutsideWindow.SKIP,
    "--whatsapp-outside-window",
    metavar="skip|template",
    help="WhatsApp workers whose 24-hour window is closed: 'skip' them (counted in the status), "
    "or send them the neutral 'template' (Meta charges each) and the broadcast when they write.",
)
SEGMENT_HELP = (
    "Who receives it: 'all' (default), or terms such as language=th,workplace=3,tag=night-shift "
    "(terms of one kind are alternatives; different kinds must all match)."
)


def call(action: Callable[[BroadcastService], Awaitable[T]]) -> T:
    """Run one action; a BroadcastError becomes one line on stderr and exit code 1."""
    return call_app(lambda app: action(app.broadcasts))


def _read_texts(text_files: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for spec in text_files:
        language, sep, path = spec.partition("=")
        if not sep or not path:
            usage_error(f"--text-file {spec!r}: use LANG=PATH, such as th=news-th.txt")
        if language in texts:
            usage_error(f"--text-file: language {language!r} given twice")
        try:
            texts[language] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            usage_error(f"--text-file {language}: cannot read {path} ({type(error).__name__})")
    return texts


def _parse_at(at: str | None) -> datetime | None:
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        usage_error(f"--at {at!r}: use ISO 8601 with a time zone, such as 2026-12-01T09:00+07:00")
    if moment.tzinfo is None:
        usage_error(f"--at {at!r}: add a time zone, such as 2026-12-01T09:00+07:00 or ...Z for UTC")
    return moment


@broadcast_app.command("create")
def broadcast_create(
    topic: str | None = typer.Option(
        None, "--topic", help="A lesson topic (wvb lessons list shows them)."
    ),
    text_file: list[str] = TEXT_FILE_OPTION,
    segment: str = typer.Option("all", "--segment", help=SEGMENT_HELP),
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="ISO8601",
        help="Send at this time (ISO 8601 with a time zone); default now.",
    ),
    fallback: str = typer.Option(
        "skip",
        "--fallback",
        metavar="skip|default",
        help="Workers whose language has no text: 'skip' them, or send the 'default' "
        "language (WVB_DEFAULT_LANGUAGE).",
    ),
    outside_window: OutsideWindow = OUTSIDE_WINDOW_OPTION,
    urgent: bool = typer.Option(
        False, "--urgent", help="Send during quiet hours too (safety warnings only)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only show how many workers would receive it, per language."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a broadcast from a lesson topic or from per-language text files."""
    if (topic is None) == (not text_file):
        usage_error("give either --topic TOPIC or --text-file LANG=PATH (one or more), not both")
    moment = _parse_at(at)
    # Read before anything opens: an unreadable file is a usage mistake, like a malformed --at.
    file_texts = _read_texts(text_file)

    async def create(service: BroadcastService) -> dict[str, Any]:
        texts = topic_texts(topic) if topic else file_texts
        chosen = await service.parse_segment(segment)
        if dry_run:
            return await service.preview(staff_actor(), texts, chosen, fallback, outside_window)
        return await service.create(
            staff_actor(), texts, chosen, topic=topic, at=moment, urgent=urgent, fallback=fallback,
            outside_window=outside_window,
        )  # fmt: skip

    result = call(create)
    if as_json:
        print_json(result)
    elif dry_run:
        typer.echo(f"would send to {result['total']} worker(s) ({result['segment']}):")
        for language, count in result["languages"].items():
            typer.echo(f"  {language}: {count}")
        if result["skipped_no_text"]:
            typer.echo(f"  skipped, no text in their language: {result['skipped_no_text']}")
        if result["in_quiet_hours_now"]:
            typer.echo(f"  in quiet hours now (would wait): {result['in_quiet_hours_now']}")
        if result["whatsapp"]:
            typer.echo(
                f"  on WhatsApp: {result['whatsapp']} (outside their 24-hour window: "
                f"{result['outside_window']})"
            )
    else:
        typer.echo(f"broadcast {result['id']}: {result['state']}, {result['total']} recipient(s)")


@broadcast_app.command("status")
def broadcast_status(
    broadcast_id: int = typer.Argument(..., metavar="ID", help="The broadcast id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """How far a broadcast has got: sent, failed (blocked included), pending."""
    status = call(lambda service: service.status(staff_actor(), broadcast_id))
    if as_json:
        print_json(status)
        return
    line = (
        f"broadcast {status['id']}: {status['state']} · {status['sent']}/{status['total']} sent · "
        f"{status['failed']} failed ({status['blocked']} blocked) · {status['pending']} pending"
    )
    if status["skipped"]:
        line += f" · {status['skipped']} skipped (outside WhatsApp's 24-hour window)"
    typer.echo(line)
    if "note" in status:
        typer.echo(status["note"])


@broadcast_app.command("watch")
def broadcast_watch(
    broadcast_id: int = typer.Argument(..., metavar="ID", help="The broadcast id."),
    interval: float = typer.Option(
        1.0, "--interval", metavar="SECONDS", help="Seconds between updates."
    ),
) -> None:
    """A live progress bar until the broadcast is done (Ctrl-C stops watching, not sending)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    async def watch(app: App) -> dict[str, Any]:
        service = app.broadcasts
        status = await service.status(staff_actor(), broadcast_id)
        with Progress(
            TextColumn("broadcast {task.fields[id]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
        ) as progress:
            task = progress.add_task("", total=max(1, status["total"]), id=broadcast_id,
                                     detail="")  # fmt: skip
            while True:
                done = status["sent"] + status["failed"]
                detail = f"{status['state']} · {status['failed']} failed"
                if status["waiting_quiet_hours"]:
                    detail += f" · {status['waiting_quiet_hours']} waiting for quiet hours"
                progress.update(task, total=max(1, status["total"]), completed=done, detail=detail)
                if settled(status):
                    return status
                await asyncio.sleep(interval)
                status = await service.status(staff_actor(), broadcast_id, audited=False)

    try:
        final = call_app(watch)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(
        f"broadcast {final['id']} {final['state']}: {final['sent']} sent, "
        f"{final['failed']} failed ({final['blocked']} blocked)"
    )
    if final["state"] not in BROADCAST_ENDED and settled(final):
        typer.echo(final["note"])


@broadcast_app.command("list")
def broadcast_list(as_json: bool = JSON_OPTION) -> None:
    """Recent broadcasts, newest first."""
    rows = call(lambda service: service.list(staff_actor()))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['id']}\t{row['state']}\t{row['total']}\t{row['topic'] or 'text'}\t"
            f"{row['segment']}\t{row['created_at'][:16]}"
        )


@broadcast_app.command("cancel")
def broadcast_cancel(
    broadcast_id: int = typer.Argument(..., metavar="ID", help="The broadcast id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop a broadcast: messages not yet sent are not sent."""
    status = call(lambda service: service.cancel(staff_actor(), broadcast_id))
    if as_json:
        print_json(status)
    else:
        typer.echo(f"broadcast {broadcast_id} cancelled; {status['sent']} had been sent")


@broadcast_app.command("relay")
def broadcast_relay() -> None:
    """Only send broadcasts (no polling), until SIGINT or SIGTERM: extra sending capacity beside
    `wvb run`. Every relay shares the rate through Redis (WVB_REDIS_URL)."""
    settings = settings_or_exit()
    from bot.logging_setup import configure_logging
    from bot.runner import relay_broadcasts

    if not settings.messenger_configured:
        fail(
            "WVB_TELEGRAM_TOKEN, WVB_WHATSAPP_TOKEN: neither is set, so there is nowhere to send",
            EXIT_CONFIG,
        )
    configure_logging(settings.log_level, settings.log_secrets())
    run_until_stopped(lambda stop: relay_broadcasts(settings, stop))


@subscribers_app.command("tag")
def subscribers_tag(
    reference: str = typer.Argument(..., help="A case reference: its reporter gets the tag."),
    tag: str = typer.Argument(..., help="The tag, such as night-shift."),
    remove: bool = typer.Option(False, "--remove", help="Take the tag away instead."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Tag the worker who reported a case (for --segment tag=...); you never see who they are."""
    call(lambda service: service.tag_reporter(staff_actor(), reference, tag, remove=remove))
    if as_json:
        print_json({"reference": reference, "tag": tag, "tagged": not remove})
    else:
        typer.echo(f"{'untagged' if remove else 'tagged'}: {tag}", err=True)


@subscribers_app.command("tags")
def subscribers_tags(as_json: bool = JSON_OPTION) -> None:
    """Tags in use, with how many workers carry each."""
    tags = call(lambda service: service.tags())
    if as_json:
        print_json(tags)
        return
    for tag, count in tags.items():
        typer.echo(f"{tag}\t{count}")

"""Staff commands: cases, workplaces, emergency contacts, staff accounts and their console
logins. Thin callers of ``services.staff``, ``services.staff_accounts`` and
``services.staff_login``.

Every command accepts ``--json`` and then prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import getpass
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import segno
import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cli.common import call_app, print_json, staff_actor
from cli.usage import JSON_OPTION, CommandGroup, usage_error
from conversations.categories import AFFECTED, CONFIDENTIALITY, OCCURRED
from conversations.status import STAGES
from domain.statuses import CaseStatus
from locales import LANGUAGES, staff_gettext
from locales import staff_gettext as _
from services.casework import CaseworkService, Remediation
from services.staff import StaffService
from services.staff_accounts import Staff, StaffAccounts
from services.staff_login import TotpEnrolment
from services.views import CaseDetail, CaseSummary, to_json

if TYPE_CHECKING:
    from bot.app import App

T = TypeVar("T")

cases_app = CommandGroup(help="See cases (every view is written to the audit log).")
workplaces_app = CommandGroup(help="Workplaces offered to workers when they report.")
staff_app = CommandGroup(help="Staff accounts and roles (admin, case_handler, educator, viewer).")
contacts_app = CommandGroup(help="Emergency contacts shown at once to urgent reporters.")

SUMMARY_IN_OPTION = typer.Option(
    [],
    "--summary-in",
    metavar="LANG=TEXT",
    help="The summary in a worker's language: LANG=TEXT (repeatable).",
)
SITE_SAMPLE_OPTION = typer.Option(
    0,
    "--site-sample",
    metavar="N",
    help="Also ask this many other workers of the same workplace (who agreed to be asked), "
    "without revealing the case.",
)
EXPORT_OPTION = typer.Option(
    None,
    "--export-files",
    metavar="DIR",
    help="Also write the decrypted evidence files into this folder.",
)


def call(action: Callable[[StaffService], Awaitable[T]]) -> T:
    """Run one staff action; a StaffError becomes one line on stderr and exit code 1."""
    return call_app(lambda app: action(app.staff))


@cases_app.command("list")
def cases_list(
    status: str | None = typer.Option(
        None, "--status", help=f"Only cases in this status: {', '.join(CaseStatus)}."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List cases, oldest first: one line each; a quoted workplace is one the worker typed."""

    # A typed workplace is what a worker wrote: left out for a role that may not read that.
    cases = call_app(lambda app: app.staff.list_cases(staff_actor(), status))
    if as_json:
        print_json(cases)
        return
    # One line per case, in 80 columns too: codes as --status takes them, the first category
    # (+N more), the day received (`cases show` has the time); the workplace gets the width
    # left and is cut with "…" (`cases show` has it whole). "!" marks an urgent case.
    headers = ("", "reference", "status", "about", "lang", "received")
    rows = [
        (
            "!" if case.urgent else "",
            case.reference,
            case.status,
            _about(case),
            case.language,
            local_time(case.created_at)[:10],
        )
        for case in cases
    ]
    widths = [max(cell_len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    console = Console()
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, width=width, no_wrap=True)
    workplaces = [_workplace(case) for case in cases]
    needed = max(cell_len(Text.from_markup(cell).plain) for cell in ["workplace", *workplaces])
    left = console.width - sum(widths) - len(widths)
    table.add_column("workplace", width=max(min(left, needed), 9), no_wrap=True,
                     overflow="ellipsis")  # fmt: skip
    for row, workplace in zip(rows, workplaces, strict=True):
        table.add_row(*row, workplace)
    console.print(table)


def _about(case: CaseSummary) -> str:
    more = len(case.categories) - 1
    return (case.category or "-") + (f" +{more}" if more > 0 else "")


def _workplace(case: CaseSummary) -> str:
    if case.workplace:
        return escape(case.workplace)
    if case.workplace_typed:
        return f'"{terminal_safe(case.workplace_typed)}"'
    return "-"


def local_time(moment: datetime) -> str:
    """A timestamp in the operator's local time zone, to the minute, with its offset:
    ``2026-03-01 14:05 +07:00``.

    The operator's zone (the machine's, or ``TZ``), not the workplace's: a case may name no
    listed workplace, and staff compare cases with each other and with their own clock. The
    offset leaves no doubt; ``--json`` keeps UTC (``...Z``) for scripts."""
    local = moment.astimezone()
    offset = f"{local:%z}"
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:5]}"


@cases_app.command("show")
def cases_show(
    reference: str = typer.Argument(..., help="The case reference, e.g. K7M3-9Q2X."),
    as_json: bool = JSON_OPTION,
    export_files: Path | None = EXPORT_OPTION,
) -> None:
    """Show one case with its file and history (decrypted; the worker stays anonymous).
    Staff accounts named like an OS account need the admin or case_handler role."""
    case = call_app(lambda app: app.staff.show_case(staff_actor(), reference))
    exported: list[str] | None = None
    if export_files is not None:
        files = call_app(lambda app: app.staff.export_files(staff_actor(), reference))
        export_files.mkdir(parents=True, exist_ok=True)
        for name, content in files:
            path = export_files / name
            path.write_bytes(content)
            path.chmod(0o600)
        exported = [name for name, _ in files]
    if as_json:
        document = to_json(case)
        if exported is not None:
            document["exported_files"] = exported
        print_json(document)
        return
    _print_case(case)


#: Terminal control: ESC / CSI / OSC sequences whole, then any other C0/C1 control character.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Worker text as it may reach a staff terminal: no Rich markup (``[link=...]`` prints as
    typed), no escape sequence (clearing the screen, a hidden hyperlink, a changed title) and no
    direction override; each control character is shown as its ``\\xNN`` code instead."""
    text = _ESCAPE_SEQUENCE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
    text = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
    return escape(text)


def _print_case(case: CaseDetail) -> None:
    console = Console()
    words = _label
    safe = terminal_safe
    urgent = " [bold red]URGENT[/]" if case.urgent else ""
    console.print(f"[bold]{case.reference}[/] — {_status(case.status)}{urgent}")
    console.print(f"about: {'; '.join(words(label) for label in case.category_labels)}")
    typed = case.workplace_typed
    console.print(
        f"workplace: {safe(case.workplace)}" if case.workplace
        else f'workplace: "{safe(typed)}" (typed by the worker)' if typed
        else "workplace: -"
    )  # fmt: skip
    console.print(f"agency: {safe(case.agency or '-')}")
    console.print(f"when: {words(OCCURRED.get(case.occurred, case.occurred))}")
    console.print(f"affected: {words(AFFECTED.get(case.affected, case.affected))}")
    console.print(f"danger now: {'yes' if case.danger_now else 'no'}")
    console.print(
        f"who may see it: {words(CONFIDENTIALITY.get(case.confidentiality, case.confidentiality))}"
    )
    language = f"{LANGUAGES.get(case.language, case.language)} ({case.language})"
    console.print(f"language: {language} · received {local_time(case.created_at)}")
    if case.purged_at is not None:
        console.print(
            f"[bold]content purged {local_time(case.purged_at)}[/]: what the worker wrote and "
            "sent, notes and validations are deleted; only the counts remain"
        )
    console.print(f"acknowledge by {local_time(case.acknowledge_due_at)}")
    console.print(f"respond by {local_time(case.response_due_at)}")
    for entry in case.entries:
        body = entry.text or f"[{entry.kind}, {'?' if entry.size is None else entry.size} bytes]"
        console.print(f"\n[dim]{local_time(entry.at)} {entry.author}[/]\n{safe(body)}")
    console.print("\n[bold]history[/]")
    for event in case.events:
        moved = f" → {_status(event.to_status)}" if event.to_status else ""
        console.print(f"{local_time(event.at)} {safe(event.actor)}: {event.action}{moved}")


def _label(message: str) -> str:
    """The bot's own catalog message in the staff language (locales.STAFF_LANGUAGE), so staff
    see what the worker saw."""
    return staff_gettext(message)


def _status(status: str) -> str:
    """The stage as the worker's /status names it, and the code staff commands take:
    ``Being looked into (investigating)``."""
    try:
        stage, _meaning = STAGES[CaseStatus(status)]
    except ValueError:
        return status
    return f"{_label(stage)} ({status})"


def casework_call(action: Callable[[CaseworkService], Awaitable[T]]) -> T:
    return call_app(lambda app: action(app.casework))


def done(as_json: bool, reference: str, status: str | None, message: str) -> None:
    if as_json:
        print_json({"reference": reference, "status": status})
    else:
        typer.echo(message)


@cases_app.command("acknowledge")
def cases_acknowledge(
    reference: str = typer.Argument(..., help="The case reference."), as_json: bool = JSON_OPTION
) -> None:
    """Tell the worker their report was read (status: acknowledged)."""
    status = casework_call(lambda s: s.acknowledge(staff_actor(), reference))
    done(as_json, reference, status, f"{reference}: {status}; the worker is told")


@cases_app.command("status")
def cases_status(
    reference: str = typer.Argument(..., help="The case reference."),
    status: str = typer.Argument(..., help="acknowledged or investigating."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move a case to acknowledged or investigating (other statuses have their own commands)."""
    new = casework_call(lambda s: s.set_status(staff_actor(), reference, status))
    done(as_json, reference, new, f"{reference}: {new}")


@cases_app.command("assign")
def cases_assign(
    reference: str = typer.Argument(..., help="The case reference."),
    to: str = typer.Option(
        ..., "--to", metavar="STAFF_NAME", help="A staff member's name (empty: unassign)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Assign the case to a staff member."""
    casework_call(lambda s: s.assign(staff_actor(), reference, to))
    done(as_json, reference, None, f"{reference}: assigned to {to or 'nobody'}")


@cases_app.command("note")
def cases_note(
    reference: str = typer.Argument(..., help="The case reference."),
    text: str = typer.Option(..., "--text", help="The note (never shown to the worker)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a staff-only note to the case history."""
    casework_call(lambda s: s.add_note(staff_actor(), reference, text))
    done(as_json, reference, None, f"{reference}: note added")


@cases_app.command("reply")
def cases_reply(
    reference: str = typer.Argument(..., help="The case reference."),
    text: str = typer.Option(..., "--text", help="The message to the worker."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send an anonymous follow-up message to the worker (they can answer it)."""
    casework_call(lambda s: s.reply(staff_actor(), reference, text))
    done(as_json, reference, None, f"{reference}: message queued for the worker")


@cases_app.command("remediate")
def cases_remediate(
    reference: str = typer.Argument(..., help="The case reference."),
    summary: str = typer.Option(
        ..., "--summary", metavar="TEXT", help="What the employer or buyer says was done."
    ),
    summary_in: list[str] = SUMMARY_IN_OPTION,
    site_sample: int = SITE_SAMPLE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Record the reported remediation and ask the worker whether it really happened."""
    translations: dict[str, str] = {}
    for item in summary_in:
        language, separator, text = item.partition("=")
        if not separator or not text.strip():
            usage_error("--summary-in takes LANG=TEXT, for example th=...")
        translations[language.strip()] = text
    remediation = Remediation(summary, translations)
    if site_sample < 0:
        usage_error("--site-sample takes a number of workers, 0 or more")
    status = casework_call(
        lambda s: s.remediate(staff_actor(), reference, remediation, site_sample=site_sample)
    )
    done(as_json, reference, status, f"{reference}: {status}; the worker is asked to confirm")


@cases_app.command("close")
def cases_close(
    reference: str = typer.Argument(..., help="The case reference."),
    unvalidated: bool = typer.Option(
        False, "--unvalidated", help="Close without workers' confirmation (reported separately)."
    ),
    reason: str | None = typer.Option(
        None, "--reason", metavar="TEXT", help="Why, with --unvalidated."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Close a case. Refused unless workers confirmed the fix, or --unvalidated --reason."""
    status = casework_call(
        lambda s: s.close(staff_actor(), reference, unvalidated=unvalidated, reason=reason)
    )
    done(as_json, reference, status, f"{reference}: {status}")


@cases_app.command("purge")
def cases_purge(
    reference: str = typer.Argument(..., help="The case reference."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete the case's content now: entries, files, note and reason texts, validations and
    queued messages (audited). Status, categories, workplace and dates to the day remain, so
    the case still counts. Cannot be undone."""
    result = call_app(lambda app: app.retention.purge(staff_actor(), reference))
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{result.reference}: content purged {local_time(result.purged_at)} "
        f"({result.entries} entries, {result.files} of them files)"
    )


@workplaces_app.command("add")
def workplaces_add(
    name: str = typer.Argument(..., help="The workplace's name as workers know it."),
    country: str | None = typer.Option(
        None, "--country", metavar="CC", help="Two-letter country code."
    ),
    timezone: str | None = typer.Option(
        None,
        "--timezone",
        metavar="ZONE",
        help="IANA time zone, e.g. Asia/Bangkok: quiet hours are local time.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a workplace to the list workers pick from (or re-activate or update it)."""
    workplace = call(lambda service: service.add_workplace(staff_actor(), name, country, timezone))
    if as_json:
        print_json(workplace)
    else:
        typer.echo(f"workplace {workplace.id}: {workplace.name}")


@workplaces_app.command("list")
def workplaces_list(as_json: bool = JSON_OPTION) -> None:
    """List workplaces."""
    workplaces = call(lambda service: service.list_workplaces())
    if as_json:
        print_json(workplaces)
        return
    for workplace in workplaces:
        state = "" if workplace.active else " (removed)"
        typer.echo(
            f"{workplace.id}\t{workplace.country or '-'}\t{workplace.timezone or '-'}\t"
            f"{workplace.name}{state}"
        )


@workplaces_app.command("remove")
def workplaces_remove(
    name: str = typer.Argument(..., help="The workplace's name."), as_json: bool = JSON_OPTION
) -> None:
    """Stop offering a workplace (its cases keep it)."""
    call(lambda service: service.remove_workplace(staff_actor(), name))
    if as_json:
        print_json({"name": name, "active": False})
    else:
        typer.echo(f"workplace {name}: no longer offered (its cases keep it)")


@contacts_app.command("set")
def contacts_set(
    text: str = typer.Option(..., "--text", help="What an urgent reporter sees."),
    country: str = typer.Option(
        "*", "--country", metavar="CC", help="Two-letter country code, or * for any."
    ),
    language: str = typer.Option(
        "*", "--language", metavar="LL", help="Language code, or * for any."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the emergency contacts for a country and language."""
    contact = call(lambda service: service.set_contacts(staff_actor(), country, language, text))
    if as_json:
        print_json(contact)
    else:
        typer.echo(f"emergency contacts set for country {contact.country}, "
                   f"language {contact.language}")  # fmt: skip


@contacts_app.command("list")
def contacts_list(as_json: bool = JSON_OPTION) -> None:
    """List emergency contacts."""
    contacts = call(lambda service: service.list_contacts())
    if as_json:
        print_json(contacts)
        return
    for contact in contacts:
        typer.echo(f"{contact.country}\t{contact.language}\t{contact.text}")


def staff_accounts_call(action: Callable[[StaffAccounts], Awaitable[T]]) -> T:
    return call_app(lambda app: action(app.staff_accounts))


@staff_app.command("add")
def staff_add(
    name: str = typer.Argument(..., help="How the staff member is named in the audit log."),
    role: str = typer.Option(..., "--role", help="admin, case_handler, educator or viewer."),
    telegram_id: int | None = typer.Option(
        None,
        "--telegram-id",
        metavar="ID",
        help="Their Telegram user id (stored only as a pseudonym).",
    ),
    assigned_only: bool = typer.Option(
        False, "--assigned-only", help="A case handler who sees only the cases assigned to them."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register (or update) a staff member; with --telegram-id they get staff commands there.

    A member who cannot log in to the web console yet also gets an enrolment link (valid 72
    hours) to set their password and second factor in the browser: give it to them privately."""

    async def adding(app: App) -> tuple[Staff, str | None]:
        member = await app.staff_accounts.add(
            staff_actor(), name, role, telegram_id, assigned_only=assigned_only
        )
        if await app.staff_login.can_log_in(member.name):
            return member, None
        return member, enrol_url(app, await app.staff_login.invite(staff_actor(), member.name))

    member, link = call_app(adding)
    if as_json:
        print_json({"name": member.name, "role": member.role,
                    "assigned_only": member.assigned_only, "enrol_url": link})  # fmt: skip
        return
    limit = _(" (assigned cases only)") if member.assigned_only else ""
    typer.echo(f"{member.name}: {member.role}{limit}")
    if link is not None:
        _tell_link(link)


def enrol_url(app: App, token: str) -> str:
    """The page where a newcomer sets their password and second factor (WVB_CONSOLE_URL)."""
    return f"{app.settings.console_base_url}/enrol/{token}"


def _tell_link(link: str) -> None:
    typer.echo(_("enrolment link, valid 72 hours and once (give it to them privately):"))
    typer.echo(link)


@staff_app.command("invite")
def staff_invite(
    name: str = typer.Argument(..., help="The staff member's name."), as_json: bool = JSON_OPTION
) -> None:
    """Make a new enrolment link for a staff member (valid 72 hours, once; it replaces any
    earlier link). Enrolling sets a new password and second factor: for a newcomer, or for
    someone who lost their phone or forgot their password."""

    async def inviting(app: App) -> str:
        return enrol_url(app, await app.staff_login.invite(staff_actor(), name))

    link = call_app(inviting)
    if as_json:
        print_json({"name": name, "enrol_url": link})
    else:
        _tell_link(link)


@staff_app.command("password")
def staff_password(
    name: str = typer.Argument(..., help="The staff member's name."), as_json: bool = JSON_OPTION
) -> None:
    """Set a staff member's web console password, read from standard input (one line: at least
    12 characters, not their name). Their open console sessions end.

    For example `wvb staff password Mai < password.txt`; at a terminal it is asked for without
    echo."""

    async def setting(app: App) -> None:
        await app.staff_login.check_manageable(staff_actor(), name, "staff.password")
        password = _password_from_stdin()
        await app.staff_login.set_password(staff_actor(), name, password)

    call_app(setting)
    if as_json:
        print_json({"name": name, "password_set": True})
    else:
        typer.echo(_("{name}: password set; their console sessions ended").format(name=name))


def _password_from_stdin() -> str:
    """One line from standard input (its line break removed, nothing else), or without echo
    when standard input is a terminal. None at all is a usage mistake."""
    if sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass(_("New password: "))
    else:
        line = sys.stdin.readline() if sys.stdin is not None else ""
        password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        usage_error(_("no password on standard input: give it as one line"))
    return password


@staff_app.command("totp")
def staff_totp(
    name: str = typer.Argument(..., help="The staff member's name."), as_json: bool = JSON_OPTION
) -> None:
    """Enrol (or enrol again) a staff member's second factor for the web console: prints the
    secret and its otpauth:// URI (TOTP, SHA-1, 6 digits, 30 s) and, without --json, a QR code
    to scan. The earlier secret stops working and their open console sessions end."""

    async def enrolling(app: App) -> TotpEnrolment:
        return await app.staff_login.enrol_totp(staff_actor(), name)

    enrolment = call_app(enrolling)
    if as_json:
        print_json({"secret": enrolment.secret, "uri": enrolment.uri})
        return
    typer.echo(_("secret: {secret}").format(secret=enrolment.secret))
    typer.echo(_("URI: {uri}").format(uri=enrolment.uri))
    segno.make(enrolment.uri, micro=False).terminal(out=sys.stdout, compact=True)
    typer.echo(_("Scan it with an authenticator app, then clear the screen: whoever sees the "
                 "secret can make codes."))  # fmt: skip


@staff_app.command("list")
def staff_list(as_json: bool = JSON_OPTION) -> None:
    """List staff members."""
    members = staff_accounts_call(lambda a: a.list())
    if as_json:
        print_json(members)
        return
    for member in members:
        state = "" if member["active"] else " (removed)"
        typer.echo(f"{member['name']}\t{member['role']}{state}")


@staff_app.command("remove")
def staff_remove(
    name: str = typer.Argument(..., help="The staff member's name."), as_json: bool = JSON_OPTION
) -> None:
    """Remove a staff member's access (their past actions stay in the audit log)."""
    staff_accounts_call(lambda a: a.remove(staff_actor(), name))
    if as_json:
        print_json({"name": name, "active": False})
    else:
        typer.echo(f"{name}: access removed")

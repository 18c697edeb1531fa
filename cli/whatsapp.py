"""`wvb whatsapp`: the WhatsApp channel's settings staff keep in the database.

`wvb whatsapp templates` names the neutral template ("You have a new message. Reply to see
it.") sent when a worker's 24-hour window is closed, per language. Thin callers of
``services.whatsapp_templates``; every change is audited there.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cli.common import call_app, print_json, staff_actor
from cli.usage import JSON_OPTION, CommandGroup
from services.whatsapp_templates import WhatsAppTemplateView

whatsapp_app = CommandGroup(help="The WhatsApp channel: what staff configure for it.")
templates_app = CommandGroup(
    help="The neutral template that asks a worker to write when their 24-hour window is closed "
    "(register it with Meta first, in each language you can).",
)
whatsapp_app.add_typer(templates_app, name="templates")


def _said(view: WhatsAppTemplateView) -> str:
    return f"{view.language}: {view.name} (approved in {view.template_language})"


@templates_app.command("list")
def templates_list(as_json: bool = JSON_OPTION) -> None:
    """Show which template workers of each language get (their own, a fallback, or none).

    With --json: the templates configured, one object per language."""
    if as_json:
        print_json(call_app(lambda app: app.whatsapp_templates.list_templates()))
        return
    coverage = call_app(lambda app: app.whatsapp_templates.coverage())
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for header in ("language", "template", "approved in", ""):
        table.add_column(header, no_wrap=True)
    for each in coverage:
        if each.template is None:
            table.add_row(each.language, "-", "-", "none: messages wait, no template asks")
            continue
        note = "" if each.from_language == each.language else f"{each.from_language}'s (fallback)"
        table.add_row(each.language, each.template.name, each.template.template_language, note)
    Console().print(table)


@templates_app.command("set")
def templates_set(
    language: str = typer.Argument(
        ..., metavar="LANG", help="The workers' language it is for (en, th, my ...)."
    ),
    name: str = typer.Argument(
        ..., metavar="NAME", help="The template's name at Meta, such as wvb_new_message."
    ),
    template_language: str | None = typer.Option(
        None,
        "--template-language",
        metavar="CODE",
        help="The language code Meta approved it in (en, en_US, th ...); default LANG.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Name the template sent to workers of LANG whose 24-hour window is closed (audited)."""
    view = call_app(
        lambda app: app.whatsapp_templates.set(staff_actor(), language, name, template_language)
    )
    if as_json:
        print_json(view)
    else:
        typer.echo(f"template set: {_said(view)}")


@templates_app.command("remove")
def templates_remove(
    language: str = typer.Argument(..., metavar="LANG", help="The workers' language."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop sending LANG's own template; those workers get the fallback's (audited)."""
    view = call_app(lambda app: app.whatsapp_templates.remove(staff_actor(), language))
    if as_json:
        print_json(view)
    else:
        typer.echo(f"template removed: {_said(view)}")

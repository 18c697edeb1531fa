"""How every `wvb` command reads: its help, its usage line, and what a usage mistake costs.

Typer (0.29) prints every flag as ``--json <bool>`` and a required argument as ``{reference}``
on the usage line. Each command group of ``wvb`` is a ``CommandGroup``, whose commands print
``--json`` alone and ``wvb cases show [OPTIONS] REFERENCE``, as Unix usage lines do.

Exit codes, the same for every command:

- ``2``, a usage mistake: the command line cannot be read as a request, so nothing was opened
  or tried: a missing or unknown argument or option, a value in the wrong form (not a number,
  not ``LANG=TEXT``, not ISO 8601, not one of the listed choices), options that do not go
  together, a file that cannot be read, or a bad setting.
- ``1``, a failed action: the request was made and refused or could not be done: nothing has
  that reference or name, the service does not accept a value (the line names it), the case's
  state does not allow it, a server is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import typer
from typer._click import Context, Parameter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from cli.common import fail

EXIT_USAGE = 2

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def usage_error(message: str) -> NoReturn:
    """A mistake in the command line the CLI itself found: one line, exit 2 (click's own
    usage errors exit 2 as well)."""
    fail(message, EXIT_USAGE)


def _plain_parameters(params: list[Parameter]) -> None:
    """Unless a declaration names its value (``metavar="LANG=TEXT"``): arguments in capitals
    (``REFERENCE``), an option's value after its name (``--status STATUS``), and flags with
    nothing after them (a flag takes no value, so ``<bool>`` only misleads)."""
    for param in params:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument) and param.name:
            param.metavar = param.name.upper()
        elif isinstance(param, TyperOption):
            longest = max(param.opts, key=len)
            param.metavar = "" if param.is_flag else longest.lstrip("-").replace("-", "_").upper()


def _bare_help_flag(option: TyperOption | None) -> TyperOption | None:
    """``--help`` is made by Typer itself, when help is first asked for."""
    if option is not None and option.metavar is None:
        option.metavar = ""
    return option


class PlainCommand(TyperCommand):
    """A command whose help and usage line read plainly (``_plain_parameters``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_parameters(self.params)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        return _bare_help_flag(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """``[OPTIONS] REFERENCE``: Typer would write ``{REFERENCE}`` for a required one."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw if param.required else f"[{param.display_name_raw}]"
                pieces.append(name if param.nargs == 1 else f"{name}...")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class PlainGroup(TyperGroup):
    """A group of commands whose ``--help`` is a bare flag too."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        return _bare_help_flag(super().get_help_option(ctx))


class CommandGroup(typer.Typer):
    """A ``typer.Typer`` whose commands read plainly; shows its help when given no command."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", PlainGroup)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("rich_markup_mode", "markdown")
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", PlainCommand)
        return super().command(*args, **kwargs)

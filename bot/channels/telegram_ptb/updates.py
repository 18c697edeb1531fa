"""What the PTB runtime reads from an update beyond ``bot/channels/telegram/updates.py``."""

from __future__ import annotations

from collections.abc import Collection


def staff_command(
    text: str | None, bot_username: str | None, names: Collection[str]
) -> tuple[str, str] | None:
    """(command, arguments) when ``text`` is one of the staff commands ``names``, read as
    aiogram's ``Command`` filter reads it (the aiogram runtime routes staff commands with it):
    the first word, ``/name`` or ``/name@this_bot``, the name matched exactly, the rest of the
    text as arguments. None for anything else, which goes on to the worker flow."""
    if not text:
        return None
    first, *rest = text.split(maxsplit=1) or [""]
    if not first.startswith("/"):
        return None
    name, _, mention = first[1:].partition("@")
    if mention and bot_username and mention.lower() != bot_username.lower():
        return None
    if name not in names:
        return None
    return name, rest[0] if rest else ""

"""What cleaning a file gives back: the clean bytes with their real type, or a refusal.

A module of its own so that every format module can return and raise these without importing the
package's entry point.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CleanMedia", "UnknownFileType", "UnsupportedMedia"]


class UnsupportedMedia(Exception):
    """The file cannot be cleaned and must not be stored. The message is a short fixed reason.

    Raised as such, it means the type is known but this file was refused: too large, too many
    pixels or pages, too slow, damaged, encrypted, or holding parts that cannot be cleaned.
    """


class UnknownFileType(UnsupportedMedia):
    """The content is not a type the bot cleans at all (a spreadsheet macro, a ZIP, an .exe)."""


@dataclass(frozen=True)
class CleanMedia:
    data: bytes
    mime_type: str
    """The real type of ``data``, detected from content."""
    extension: str
    """File name extension without the dot, e.g. ``"jpg"``."""

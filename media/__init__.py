"""Strip identifying metadata from evidence files before they are stored.

Workers send photos, documents and voice notes. Anything that could identify them or where they
were (EXIF/GPS, camera serials, XMP, IPTC, ICC profiles, text chunks, document authors, audio
tags, container timestamps) is removed here, before storage.

The type is detected from the content's magic bytes; the declared type is never trusted. Every
supported format is rebuilt rather than patched in place where the libraries allow it, so data
hidden after the end of a file (a polyglot's second half) does not survive either. One module per
format says what it removes:

* :mod:`media.sniff`: the type, from the content's magic bytes;
* :mod:`media.images`: JPEG, PNG, WebP, GIF and HEIC, re-encoded by Pillow;
* :mod:`media.pdf`: PDFs, rebuilt page by page with pypdf;
* :mod:`media.office`: Office Open XML (docx/xlsx/pptx) packages, rebuilt part by part;
* :mod:`media.audio`: Ogg, MP3 and MP4/M4A/MOV, which lose their tags through mutagen;
* :mod:`media.embedded`: JPEG and PNG images inside PDFs and Office packages, cleaned losslessly;
* :mod:`media.quiet`: no warning or library log record leaves with what a file holds;
* :mod:`media.result`: :class:`CleanMedia` and :class:`UnsupportedMedia`;
* :mod:`media.sandbox` and :mod:`media.worker`: where :func:`sanitize` runs for the bot, in a
  child process with no keys, no database, no network, and bounded memory, CPU and time.

:func:`sanitize` is a pure function of the input bytes: no I/O and no logging. Failures raise
:class:`UnsupportedMedia` with a short fixed reason that never contains file content
(:class:`UnknownFileType` when the content is not a type the bot cleans). While a file is
processed no warning escapes and the Pillow and pypdf loggers are muted (they would quote EXIF
values and file bytes); since both are process-wide settings, one file is sanitized at a time per
process. The bot never calls it in its own process: :class:`media.sandbox.CleaningSandbox` runs
it in a child per file. Importing this package loads no parser; :func:`sanitize` loads them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

from media.result import CleanMedia, UnknownFileType, UnsupportedMedia
from media.sniff import detect

__all__ = [
    "MAX_BYTES",
    "CleanMedia",
    "UnknownFileType",
    "UnsupportedMedia",
    "load_parsers",
    "sanitize",
]

MAX_BYTES: Final = 20 * 1024 * 1024
"""Telegram's getFile limit; anything larger is refused."""


def sanitize(data: bytes, *, declared_mime: str | None = None) -> CleanMedia:
    """Return ``data`` without identifying metadata, or raise :class:`UnsupportedMedia`.

    ``declared_mime`` (what the sender's client claims) is accepted for the caller's convenience
    but deliberately ignored: the type always comes from the content.
    """
    del declared_mime  # never trusted
    if len(data) > MAX_BYTES:
        raise UnsupportedMedia("file too large")
    if not data:
        raise UnsupportedMedia("empty file")
    data = bytes(data)  # a bytearray or memoryview must not change underneath the parsers
    handler = _handlers()[detect(data)]
    from media.quiet import contained

    with contained():
        try:
            return handler(data)
        except UnsupportedMedia:
            raise
        except Exception:
            # A parser failed in a way its handler did not expect. The original exception may
            # quote file content, so it is not chained.
            raise UnsupportedMedia("could not process file") from None


def load_parsers() -> None:
    """Import every parser and Pillow's format plugins now: the sandbox's child does this
    before it limits its own memory, CPU time and file writes."""
    _handlers()
    from PIL import Image

    Image.init()


@functools.cache
def _handlers() -> dict[str, Callable[[bytes], CleanMedia]]:
    # The parsers load on first use: the bot's own process imports this package for its types
    # and its sandbox, and never parses a file itself (see media.sandbox).
    from media.audio import sanitize_mp3, sanitize_mp4, sanitize_ogg
    from media.images import image_handler, sanitize_heic
    from media.office import sanitize_ooxml
    from media.pdf import sanitize_pdf

    return {
        "jpeg": image_handler("jpeg"),
        "png": image_handler("png"),
        "gif": image_handler("gif"),
        "webp": image_handler("webp"),
        "heic": sanitize_heic,
        "pdf": sanitize_pdf,
        "ooxml": sanitize_ooxml,
        "ogg": sanitize_ogg,
        "mp3": sanitize_mp3,
        "mp4": sanitize_mp4,
    }

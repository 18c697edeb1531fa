"""Nothing about a file leaves through warnings or library log records while it is cleaned.

Pillow logs EXIF tag values at DEBUG level and pypdf quotes raw file bytes in its warnings; any
library may warn with a piece of the file in the message.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from PIL import Image

__all__ = ["contained"]

_QUIET_LOCK: Final = threading.Lock()
# Pillow logs EXIF tag values at DEBUG level and pypdf quotes raw file bytes in its warnings.
_SILENCED_LOGGERS: Final = ("PIL", "pypdf")


@contextmanager
def contained() -> Iterator[None]:
    """Nothing about the file leaves ``sanitize`` through warnings or library log records.

    Every warning is swallowed, except a decompression-bomb warning, which becomes an exception;
    Pillow's own pixel limit is lowered to :data:`media.images.MAX_PIXELS` so that it warns
    there. The loggers of Pillow and pypdf (and their children) are switched off for the
    duration. Warning filters, Pillow's limit and logger levels are process-wide in Python 3.11,
    so the change is serialized with a lock: a process sanitizes one file at a time.
    """
    from media.images import MAX_PIXELS

    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        loggers = [logging.getLogger(name) for name in _SILENCED_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        pillow_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = (
            MAX_PIXELS if pillow_limit is None else min(MAX_PIXELS, pillow_limit)
        )
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)

"""Operator logging that cannot leak secrets.

Our own log calls never carry a messenger id, name, phone or message text (they name conversations
by a short pseudonym prefix). As a second line of defence every record passes a filter that
redacts configured secrets and anything shaped like a bot token, because the token sits inside
every Bot API URL and third-party libraries may print such URLs in errors.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_TOKEN_SHAPE = re.compile(r"\b\d{3,20}:[A-Za-z0-9_-]{20,}\b")
REDACTED = "[redacted]"

#: Libraries that log, below WARNING, what our logs never may. Operators need none of it, even at
#: DEBUG: aiohttp's access log names client addresses and paths; aiosqlite's debug log echoes
#: every statement with its parameters; python-telegram-bot logs every update and every request's
#: parameters (chat ids, message text) at DEBUG, and httpx/httpcore log each request's URL, which
#: holds the bot token, at INFO and DEBUG.
QUIET_BELOW_WARNING = ("aiohttp.access", "aiosqlite", "asyncio", "telegram", "httpx", "httpcore")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_below_warning(*QUIET_BELOW_WARNING)


def quiet_below_warning(*names: str) -> None:
    """Let the loggers ``names`` (and their children) pass only WARNING and above, whatever
    level the root logger has."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)

"""What tests read back from the bot's messages: a case reference and a receipt code, as the
worker sees them (``domain/`` has the formats)."""

from __future__ import annotations

import re

REFERENCE = re.compile(r"(?<![-\w])([0-9A-Z]{4}-[0-9A-Z]{4})(?![-\w])")
RECEIPT_CODE = re.compile(r"(?<![-\w])([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})(?![-\w])")

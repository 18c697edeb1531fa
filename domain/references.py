"""Case references and receipt codes: easy to read aloud and type on a cheap phone, hard to guess.

Both use Crockford's base-32 alphabet (no I, L, O or U), and reading them back forgives the usual
slips: lower case, spaces, dashes, O for 0, I or L for 1.

- A reference (``K7M3-9Q2X``, 40 bits) names a case; it is not secret on its own.
- A receipt code (``4F9C-...``, 16 characters, 80 bits) proves the holder reported the case. It is
  shown once and stored only as a hash (``storage/codes.py``).

Whoever looks a case up by what someone typed normalises it here first, so every surface accepts
``k7m3 9q2x`` as well as ``K7M3-9Q2X``.
"""

from __future__ import annotations

import secrets
import unicodedata

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
REFERENCE_LENGTH = 8
RECEIPT_LENGTH = 16


def _random_symbols(count: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(count))


def grouped(symbols: str) -> str:
    """Symbols in groups of four joined by dashes, as a worker reads them."""
    return "-".join(symbols[index : index + 4] for index in range(0, len(symbols), 4))


def new_reference() -> str:
    return grouped(_random_symbols(REFERENCE_LENGTH))


def new_receipt_code() -> str:
    return grouped(_random_symbols(RECEIPT_LENGTH))


def _western(character: str) -> str:
    """A decimal digit of any script (Thai ๓, Myanmar ၃ …) as the ASCII digit it stands for."""
    return str(unicodedata.decimal(character)) if character.isdecimal() else character


def normalize(typed: str) -> str:
    """What someone typed, reduced to the canonical symbols (no separators); empty if it holds a
    symbol outside the alphabet. Full-width forms (NFKC) and the digits of any script count as
    the ASCII symbols they look like: phones in Thailand or Myanmar often type their own."""
    folded = unicodedata.normalize("NFKC", typed).upper()
    cleaned = "".join(_western(ch) for ch in folded if ch.isalnum()).translate(_CONFUSABLE)
    return cleaned if all(ch in ALPHABET for ch in cleaned) else ""


def normalize_reference(typed: str) -> str | None:
    """The stored form of a typed reference, or None if it cannot be one."""
    symbols = normalize(typed)
    return grouped(symbols) if len(symbols) == REFERENCE_LENGTH else None

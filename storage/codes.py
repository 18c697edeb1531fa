"""Case references and receipt codes: easy to read aloud and type on a cheap phone, hard to guess.

Both use Crockford's base-32 alphabet (no I, L, O or U), and reading them back forgives the usual
slips: lower case, spaces, dashes, O for 0, I or L for 1.

- A reference (``K7M3-9Q2X``, 40 bits) names a case; it is not secret on its own.
- A receipt code (``4F9C-...``, 16 characters, 80 bits) proves the holder reported the case. It is
  shown once and stored only as a scrypt hash, so a leaked database does not reveal it, and each
  guess costs the guesser real work on top of the bot's throttling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
REFERENCE_LENGTH = 8
RECEIPT_LENGTH = 16

# scrypt cost: ~16 MiB and some tens of milliseconds per check; raise N as hardware grows.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def _random_symbols(count: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(count))


def _grouped(symbols: str) -> str:
    return "-".join(symbols[index : index + 4] for index in range(0, len(symbols), 4))


def new_reference() -> str:
    return _grouped(_random_symbols(REFERENCE_LENGTH))


def new_receipt_code() -> str:
    return _grouped(_random_symbols(RECEIPT_LENGTH))


def normalize(typed: str) -> str:
    """What the worker typed, reduced to the canonical symbols (no separators)."""
    cleaned = "".join(ch for ch in typed.upper() if ch.isalnum()).translate(_CONFUSABLE)
    return cleaned if all(ch in ALPHABET for ch in cleaned) else ""


def normalize_reference(typed: str) -> str | None:
    symbols = normalize(typed)
    return _grouped(symbols) if len(symbols) == REFERENCE_LENGTH else None


def _scrypt(symbols: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        symbols.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_receipt(code: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(normalize(code), salt)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_receipt(code: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    symbols = normalize(code)
    candidate = hashlib.scrypt(
        symbols.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate, _unb64(digest)) and len(symbols) == RECEIPT_LENGTH


#: Checked against when a reference does not exist, so a miss costs the same time as a hit.
DUMMY_RECEIPT_HASH = hash_receipt(_grouped("0" * RECEIPT_LENGTH))

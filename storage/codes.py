"""Receipt codes kept as hashes: a leaked database does not reveal them, and each guess costs the
guesser real work on top of the bot's throttling. The formats of references and codes, and how
what someone typed is read back, are ``domain/references.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from domain.references import RECEIPT_LENGTH, grouped, normalize

# scrypt cost: ~16 MiB and some tens of milliseconds per check; raise N as hardware grows.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


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
DUMMY_RECEIPT_HASH = hash_receipt(grouped("0" * RECEIPT_LENGTH))

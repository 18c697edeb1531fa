"""Receipt codes kept as hashes: a leaked database does not reveal them, and each guess costs the
guesser real work on top of the bot's throttling. The formats of references and codes, and how
what someone typed is read back, are ``domain/references.py``.

The scrypt output is stored sealed (AES-GCM under the data-encryption keys, bound to the case
reference), not bare: someone who can write to the database but holds no key cannot plant a hash
of a code they chose, nor copy their own case's hash onto another case, to read that case's staff
messages with /status. ``wvb keys rotate`` re-seals it like any other ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from domain.references import RECEIPT_LENGTH, grouped, normalize
from storage.crypto import DecryptionError, Keyring

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


SCHEME = "scrypt-gcm"
#: The scheme written before hashes were sealed; only the upgrade reads it (``seal_legacy``).
LEGACY_SCHEME = "scrypt"


def receipt_purpose(reference: str) -> bytes:
    return f"receipt\x00{reference}".encode()


def hash_receipt(code: str, keyring: Keyring, reference: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(normalize(code), salt)
    return _sealed(_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, salt, digest, keyring, reference)


def _sealed(
    n: int, r: int, p: int, salt: bytes, digest: bytes, keyring: Keyring, reference: str
) -> str:
    sealed = keyring.encrypt(digest, receipt_purpose(reference))
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(sealed)}"


def _parts(stored: str) -> tuple[str, int, int, int, bytes, bytes] | None:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        return scheme, int(n), int(r), int(p), _unb64(salt), _unb64(digest)
    except ValueError:
        return None


def verify_receipt(code: str, stored: str, keyring: Keyring, reference: str) -> bool:
    """Whether ``code`` is the receipt code of the case ``reference``. A hash that is not sealed
    for this reference under a configured key never matches, whatever code is typed."""
    parts = _parts(stored)
    if parts is None or parts[0] != SCHEME:
        return False
    _, n, r, p, salt, sealed = parts
    symbols = normalize(code)
    candidate = hashlib.scrypt(symbols.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    try:
        digest = keyring.decrypt(sealed, receipt_purpose(reference))
    except DecryptionError:
        return False
    return hmac.compare_digest(candidate, digest) and len(symbols) == RECEIPT_LENGTH


def reseal(stored: str, keyring: Keyring, reference: str, *, legacy: bool) -> str | None:
    """The hash sealed under the newest key (``legacy``: a bare scrypt hash of the old format is
    sealed too), or None when it already is; DecryptionError when it cannot be read."""
    parts = _parts(stored)
    if parts is None:
        raise DecryptionError("not a receipt hash of a known format")
    scheme, n, r, p, salt, digest = parts
    if scheme == LEGACY_SCHEME and legacy:
        return _sealed(n, r, p, salt, digest, keyring, reference)
    if scheme != SCHEME:
        raise DecryptionError("not a receipt hash of a known format")
    if keyring.is_current(digest):
        return None
    plain = keyring.decrypt(digest, receipt_purpose(reference))
    return _sealed(n, r, p, salt, plain, keyring, reference)


def dummy_receipt_hash(keyring: Keyring) -> str:
    """Checked against when a reference does not exist, so a miss costs the same time as a hit."""
    return hash_receipt(grouped("0" * RECEIPT_LENGTH), keyring, "-")


def opens(stored: str, keyring: Keyring, reference: str) -> bool:
    """Whether the sealed hash reads under ``keyring`` (``wvb keys rotate`` verifies with it)."""
    parts = _parts(stored)
    if parts is None or parts[0] != SCHEME:
        return False
    try:
        keyring.decrypt(parts[5], receipt_purpose(reference))
    except DecryptionError:
        return False
    return True

"""Pseudonyms and authenticated encryption for everything that could identify a worker.

- A pseudonym is HMAC-SHA256 over the channel and messenger id, keyed with ``WVB_SECRET_KEY``.
  A plain hash would not do: Telegram ids are small integers, so anyone holding a database dump
  could hash every possible id and find the worker.
- Ciphertexts are AES-256-GCM with a random 96-bit nonce, tagged with the id of the key that made
  them, and bound to their purpose through associated data, so a ciphertext copied into another
  row or column fails to decrypt instead of being misread.
- The associated data names every column that decides who may receive the plaintext (a case
  entry's author, kind and case; an outbox row's recipient, worker and case; an address's worker).
  Someone who can write to the database but holds no key can then not relabel or re-point a row to
  have the bot deliver its content to them: the changed row simply fails to decrypt.
- Format 2 is the only one read in normal operation. Format 1 (written before the associated data
  named those columns) is read only by the one-time upgrade and ``wvb keys rotate``, which
  re-encrypt it as format 2 (``services/key_rotation.py``).
- A blind index (``Keyring.blind_index``) lets a column be looked up by a value without holding
  it: an HMAC under a key derived from the encryption key, so rotating the keys rotates it too.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT_VERSION = b"\x02"
_LEGACY_FORMAT_VERSION = b"\x01"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext could not be decrypted: wrong key, wrong purpose or tampered with."""


class Pseudonymizer:
    """``previous_keys``: pseudonym keys since replaced; a pseudonym cannot be recomputed without
    the messenger id, so a worker is moved to the current key only when they next write."""

    def __init__(self, secret_key: bytes, previous_keys: tuple[bytes, ...] = ()) -> None:
        self._key = secret_key
        self._previous = previous_keys

    def pseudonym(self, channel: str, messenger_id: str | int) -> str:
        return self._pseudonym(self._key, channel, messenger_id)

    def previous_pseudonyms(self, channel: str, messenger_id: str | int) -> tuple[str, ...]:
        return tuple(self._pseudonym(key, channel, messenger_id) for key in self._previous)

    @staticmethod
    def _pseudonym(key: bytes, channel: str, messenger_id: str | int) -> str:
        message = f"pseudonym\x00{channel}\x00{messenger_id}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def key_check(self) -> str:
        """What the key canary stores of the current key (``services/key_canary.py``)."""
        return _key_check(self._key)

    def matches(self, check: str) -> bool:
        """Whether ``check`` was made with the current key."""
        return hmac.compare_digest(check, self.key_check())

    def previous_key_matches(self, check: str) -> bool:
        """Whether ``check`` was made with one of the keys listed as replaced."""
        return any(hmac.compare_digest(check, _key_check(key)) for key in self._previous)


def _key_check(key: bytes) -> str:
    # A keyed MAC of a constant, never a hash of the key: it says only "made with this key".
    return hmac.new(key, b"wvb-key-canary\x00pseudonym-key", hashlib.sha256).hexdigest()


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"wvb-key-id\x00" + key).digest()[:_KEY_ID_BYTES]


class Keyring:
    """Encrypts under the newest key; decrypts under whichever listed key made the ciphertext."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys = keys
        self._current_id = key_id(keys[0])
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self._current = self._ciphers[self._current_id]

    def encrypt(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        header = _FORMAT_VERSION + self._current_id
        return header + nonce + self._current.encrypt(nonce, plaintext, header + purpose)

    def decrypt(
        self, ciphertext: bytes, purpose: bytes, *, legacy_purpose: bytes | None = None
    ) -> bytes:
        """Decrypt a format-2 ciphertext made for ``purpose``. A format-1 ciphertext is read
        only when ``legacy_purpose`` (what it was bound to then) is given: by the upgrade alone."""
        header_end = 1 + _KEY_ID_BYTES
        header = ciphertext[:header_end]
        if len(ciphertext) < header_end + _NONCE_BYTES + 16:
            raise DecryptionError("not a ciphertext of a known format")
        if header[:1] == _LEGACY_FORMAT_VERSION and legacy_purpose is not None:
            purpose = legacy_purpose
        elif header[:1] != _FORMAT_VERSION:
            raise DecryptionError("not a ciphertext of a known format")
        cipher = self._ciphers.get(header[1:])
        if cipher is None:
            raise DecryptionError("made with a key that is no longer configured")
        nonce = ciphertext[header_end : header_end + _NONCE_BYTES]
        try:
            return cipher.decrypt(nonce, ciphertext[header_end + _NONCE_BYTES :], header + purpose)
        except InvalidTag:
            raise DecryptionError("ciphertext or purpose does not match") from None

    def is_current(self, ciphertext: bytes) -> bool:
        """Whether the newest key made this ciphertext in the current format (key rotation
        re-encrypts the others)."""
        return (
            ciphertext[:1] == _FORMAT_VERSION and ciphertext[1:][:_KEY_ID_BYTES] == self._current_id
        )

    def knows_key_of(self, ciphertext: bytes) -> bool:
        """Whether a configured key made ``ciphertext`` (format 1 or 2), judged by the key id in
        its header alone: how a database without a key canary is checked before one is written."""
        header = ciphertext[: 1 + _KEY_ID_BYTES]
        return header[:1] in (_FORMAT_VERSION, _LEGACY_FORMAT_VERSION) and header[1:] in (
            self._ciphers
        )

    def newest_only(self) -> Keyring:
        """A keyring of the newest key alone: what is left once the old keys are removed."""
        return Keyring((self._keys[0],))

    def blind_index(self, value: str) -> str:
        """A lookup value for ``value`` under the newest key (see ``blind_indexes``)."""
        return self._blind(self._keys[0], value)

    def blind_indexes(self, value: str) -> list[str]:
        """Lookup values for ``value`` under every configured key, newest first: a row written
        before a key rotation reached it is found too."""
        return [self._blind(key, value) for key in self._keys]

    @staticmethod
    def _blind(key: bytes, value: str) -> str:
        subkey = hmac.new(key, b"wvb-blind-index", hashlib.sha256).digest()
        return hmac.new(subkey, value.encode(), hashlib.sha256).hexdigest()[:32]

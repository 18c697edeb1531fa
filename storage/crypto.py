"""Pseudonyms and authenticated encryption for everything that could identify a worker.

- A pseudonym is HMAC-SHA256 over the channel and messenger id, keyed with ``WVB_SECRET_KEY``.
  A plain hash would not do: Telegram ids are small integers, so anyone holding a database dump
  could hash every possible id and find the worker.
- Ciphertexts are AES-256-GCM with a random 96-bit nonce, tagged with the id of the key that made
  them, and bound to their purpose through associated data, so a ciphertext copied into another
  row or column fails to decrypt instead of being misread.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT_VERSION = b"\x01"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext could not be decrypted: wrong key, wrong purpose or tampered with."""


class Pseudonymizer:
    def __init__(self, secret_key: bytes) -> None:
        self._key = secret_key

    def pseudonym(self, channel: str, messenger_id: str | int) -> str:
        message = f"pseudonym\x00{channel}\x00{messenger_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"wvb-key-id\x00" + key).digest()[:_KEY_ID_BYTES]


class Keyring:
    """Encrypts under the newest key; decrypts under whichever listed key made the ciphertext."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._current_id = key_id(keys[0])
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self._current = self._ciphers[self._current_id]

    def encrypt(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        header = _FORMAT_VERSION + self._current_id
        return header + nonce + self._current.encrypt(nonce, plaintext, header + purpose)

    def decrypt(self, ciphertext: bytes, purpose: bytes) -> bytes:
        header_end = 1 + _KEY_ID_BYTES
        header = ciphertext[:header_end]
        if len(ciphertext) < header_end + _NONCE_BYTES + 16 or header[:1] != _FORMAT_VERSION:
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
        """Whether the newest key made this ciphertext (key rotation re-encrypts the others)."""
        return ciphertext[1 : 1 + _KEY_ID_BYTES] == self._current_id

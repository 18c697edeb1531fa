"""Names of the Redis keys that belong to one worker.

A key never holds the pseudonym: ``workers.pseudonym`` is in the database, so a Redis dump keyed
by it could be joined to a database dump. Each kind of key (state, lock, chat history, counters)
gets its own token, HMAC-SHA256 under a subkey derived from ``WVB_SECRET_KEY`` for that kind,
truncated to 128 bits. Without the secret, neither dump can be joined to the other, and two kinds
of one worker's keys cannot be joined to each other.
"""

from __future__ import annotations

import hashlib
import hmac

_TOKEN_HEX = 32  # 128 bits: no collisions in any realistic number of workers


class RedisKeyNames:
    def __init__(self, secret_key: bytes, prefix: str) -> None:
        self._secret = secret_key
        self._subkeys: dict[str, bytes] = {}
        self.prefix = prefix

    def _subkey(self, kind: str) -> bytes:
        if kind not in self._subkeys:
            label = b"wvb-redis-key\x00" + kind.encode()
            self._subkeys[kind] = hmac.new(self._secret, label, hashlib.sha256).digest()
        return self._subkeys[kind]

    def token(self, kind: str, subject: str) -> str:
        """The stand-in for ``subject`` (a pseudonym) in keys of this kind."""
        digest = hmac.new(self._subkey(kind), subject.encode(), hashlib.sha256).hexdigest()
        return digest[:_TOKEN_HEX]

    def key(self, kind: str, subject: str) -> str:
        return f"{self.prefix}:{kind}:{self.token(kind, subject)}"

"""Conversation state: where a worker is in a flow, and the draft they are building.

The state is small, JSON-serialisable and free of identity: it is kept under the worker's pseudonym
by a state store (memory or Redis) and expires when idle.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATE_VERSION = 1
MAX_HISTORY = 20


@dataclass
class ConversationState:
    step: str = "language"
    language: str | None = None
    onboarded: bool = False
    history: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"v": STATE_VERSION, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ConversationState:
        loaded = json.loads(raw)
        if not isinstance(loaded, dict) or loaded.pop("v", None) != STATE_VERSION:
            # A state written by an incompatible version: start over rather than misread it.
            return cls()
        known = {name: loaded[name] for name in cls.__dataclass_fields__ if name in loaded}
        return cls(**known)

    def push(self, step: str) -> None:
        """Enter ``step``, remembering where we came from for "back"."""
        if step != self.step:
            self.history.append(self.step)
            del self.history[:-MAX_HISTORY]
        self.step = step

    def pop(self) -> str | None:
        return self.history.pop() if self.history else None

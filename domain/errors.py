"""Refusals: a request the domain will not carry out, saying which field is wrong and why.

A service raises ``Refusal(field, reason)``; ``field`` names the domain's field (``text``,
``summary_in``, ``country``, ``segment`` …, or None when the request as a whole is refused, for
example by the case lifecycle) and ``reason`` says why in plain words, with no surface's syntax.
Each surface renders it its own way: the CLI names its flag (``--text: must not be empty``),
the staff chat shows the command's usage (``/note REFERENCE text``), a web form would mark the
input. ``NotFound`` is a refusal whose reason already names what was not found.
"""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class NotFound(Refusal):
    """Nothing by the name given in ``field``; the reason says which name."""

    def __str__(self) -> str:
        return self.reason


class CaseNotFound(NotFound):
    def __init__(self, typed_reference: str) -> None:
        super().__init__("reference", f"no case with reference {typed_reference!r}")

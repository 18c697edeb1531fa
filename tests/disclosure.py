"""What a reader of published tables can work out: the attacker of the suppression tests.

A reader knows the published counts and which sums hold (a row adds up to its total, two tables
count the same cases). ``peel`` solves any sum with one unknown, again and again, as someone
with a calculator would."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

#: A sum a reader knows: (the total's position, the positions it adds up).
Sum = tuple[Hashable, Sequence[Hashable]]


def peel(sums: Sequence[Sum], published: Mapping[Hashable, object]) -> dict[Hashable, int]:
    """The hidden counts (not ints) that subtraction recovers, with their values."""
    known = {p: v for p, v in published.items() if isinstance(v, int)}
    recovered: dict[Hashable, int] = {}
    progress = True
    while progress:
        progress = False
        for total, parts in sums:
            unknown = [p for p in (total, *parts) if p not in known]
            if len(unknown) != 1:
                continue
            [position] = unknown
            if position == total:
                value = sum(known[p] for p in parts)
            else:
                value = known[total] - sum(known[p] for p in parts if p != position)
            known[position] = recovered[position] = value
            progress = True
    return recovered

"""Small-count suppression for the tables staff reports publish (``services/reports.py``).

A count below ``THRESHOLD`` (5) can point at a worker: "1 case of child labour at Golden
Thread". Every such count, totals included, is published as ``HIDDEN`` ("<5") — *primary*
suppression. Hiding it is not enough when the table also publishes totals: with a row's total
and all but one of its cells, subtraction gives the hidden one back. So *complementary*
suppression hides further counts (the next smallest in the same sum) until every sum that holds
a hidden count holds at least two, repeated until nothing changes, and then checks with exact
linear algebra that no hidden count follows from the published ones by any combination of the
sums; where one still does, it hides one more and starts again.

Tables published together are suppressed together (``LinkedTables``): a count that two tables
share (the cases of a month in one, the same cases in another's total) is joined by an
equation, so hiding it in one table hides what would give it away in the other.

The limit, written down in docs/ARCHITECTURE.md: this defeats subtraction and any exact linear
solution, not bounds. Knowing counts are whole numbers of at least 0, a reader can still narrow
a hidden count to an interval (two hidden cells that add up to 6 are each between 0 and 6) —
what linear programming attacks find. Complementary counts are shown as "<5" too: marking them
otherwise would say which hidden counts are the small ones.

Standard library only (``domain/``): the rule is the same for the CLI, the web console and any
export, and it is tested on its own (tests/test_suppression.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

#: Counts below this are never published.
THRESHOLD = 5
#: How a hidden count is published (the contract of `wvb reports summary --json`).
HIDDEN = "<5"

#: A published count: a whole number of at least ``THRESHOLD``, or ``HIDDEN``.
Count = int | str
#: What names one count: (table, row, column); None stands for a table's total row or column.
Key = tuple[str, int | None, int | None]


@dataclass(frozen=True)
class Equation:
    """``total`` is the sum of ``parts``: what a reader of the published tables knows."""

    total: Key
    parts: tuple[Key, ...]

    @property
    def members(self) -> tuple[Key, ...]:
        return (self.total, *self.parts)


@dataclass(frozen=True)
class TableKeys:
    """The keys of one table's counts, and the sums its margins publish."""

    name: str
    rows: int
    columns: int
    row_totals: bool
    column_totals: bool
    has_total: bool

    def cell(self, row: int, column: int) -> Key:
        return (self.name, row, column)

    def row_total(self, row: int) -> Key:
        return (self.name, row, None)

    def column_total(self, column: int) -> Key:
        return (self.name, None, column)

    @property
    def total(self) -> Key:
        return (self.name, None, None)

    def equations(self) -> list[Equation]:
        cells = range(self.rows), range(self.columns)
        found = []
        if self.row_totals:
            found += [
                Equation(self.row_total(i), tuple(self.cell(i, j) for j in cells[1]))
                for i in cells[0]
            ]
        if self.column_totals:
            found += [
                Equation(self.column_total(j), tuple(self.cell(i, j) for i in cells[0]))
                for j in cells[1]
            ]
        if self.has_total:
            if self.row_totals:
                found.append(Equation(self.total, tuple(map(self.row_total, cells[0]))))
            if self.column_totals:
                found.append(Equation(self.total, tuple(map(self.column_total, cells[1]))))
            if not (self.row_totals or self.column_totals):
                found.append(
                    Equation(self.total, tuple(self.cell(i, j) for i in cells[0] for j in cells[1]))
                )
        # A sum of nothing is zero by construction: it tells a reader nothing about the data.
        return [equation for equation in found if equation.parts]


@dataclass(frozen=True)
class Suppressed:
    """The outcome: what to publish for each key."""

    values: Mapping[Key, int]
    hidden: frozenset[Key]

    def count(self, key: Key) -> Count:
        return HIDDEN if key in self.hidden else self.values[key]

    def is_hidden(self, key: Key) -> bool:
        return key in self.hidden


@dataclass
class LinkedTables:
    """Tables published together: their counts, the sums within and between them."""

    threshold: int = THRESHOLD
    values: dict[Key, int] = field(default_factory=dict)
    equations: list[Equation] = field(default_factory=list)

    def add(
        self,
        name: str,
        cells: Sequence[Sequence[int]],
        *,
        row_totals: bool = False,
        column_totals: bool = False,
        total: bool = True,
    ) -> TableKeys:
        """A table of ``cells`` (rows of equal length) with the margins it publishes; the
        margins' values are computed here. A one-column table needs no row totals."""
        columns = len(cells[0]) if cells else 0
        if any(len(row) != columns for row in cells):
            raise ValueError(f"table {name}: rows of different lengths")
        keys = TableKeys(name, len(cells), columns, row_totals, column_totals, total)
        for i, row in enumerate(cells):
            for j, value in enumerate(row):
                self.values[keys.cell(i, j)] = value
            if row_totals:
                self.values[keys.row_total(i)] = sum(row)
        if column_totals:
            for j in range(columns):
                self.values[keys.column_total(j)] = sum(row[j] for row in cells)
        if total:
            self.values[keys.total] = sum(sum(row) for row in cells)
        self.equations += keys.equations()
        return keys

    def same(self, one: Key, other: Key) -> None:
        """Two tables publish the same count."""
        self.equations.append(Equation(one, (other,)))

    def sums(self, total: Key, parts: Iterable[Key]) -> None:
        """One published count is the sum of others (in the same or other tables)."""
        self.equations.append(Equation(total, tuple(parts)))

    def suppress(self) -> Suppressed:
        for equation in self.equations:
            got = sum(self.values[part] for part in equation.parts)
            if self.values[equation.total] != got:
                raise ValueError(
                    f"the sum {equation.total} = {' + '.join(map(str, equation.parts))} does "
                    f"not hold ({self.values[equation.total]} != {got}): a report counts "
                    "something twice or not at all"
                )
        return Suppressed(dict(self.values), suppress(self.values, self.equations, self.threshold))


def suppress(
    values: Mapping[Key, int], equations: Sequence[Equation], threshold: int = THRESHOLD
) -> frozenset[Key]:
    """The keys to hide: every count below ``threshold``, and as few others as this greedy
    method finds so that none of them can be worked out from the rest (module docstring)."""
    order = {key: index for index, key in enumerate(values)}
    totals = {equation.total for equation in equations}
    sums = Counter(key for equation in equations for key in equation.members)
    hidden = {key for key, value in values.items() if value < threshold}

    def next_smallest(candidates: Iterable[Key]) -> Key | None:
        """The smallest published count; among equals, cells before totals, then the one in
        fewest sums (hiding it spreads least), then the tables' own order."""
        published = [key for key in candidates if key not in hidden]
        if not published:
            return None
        return min(published, key=lambda key: (values[key], key in totals, sums[key], order[key]))

    while True:
        if _hide_single_unknowns(equations, hidden, next_smallest):
            continue
        exposed = determined(hidden, equations)
        if not exposed:
            return frozenset(hidden)
        near = [eq.members for eq in equations if exposed[0] in eq.members]
        wider = [eq.members for eq in equations if hidden.intersection(eq.members)]
        extra = next_smallest(key for members in near for key in members) or next_smallest(
            key for members in wider for key in members
        )
        if extra is None:  # everything around it is hidden already: the sums alone decide it
            return frozenset(hidden)
        hidden.add(extra)


def _hide_single_unknowns(
    equations: Sequence[Equation],
    hidden: set[Key],
    next_smallest: Callable[[Iterable[Key]], Key | None],
) -> bool:
    """Complementary suppression by subtraction: while a sum holds exactly one hidden count,
    hide the next smallest published one in it. Whether anything was hidden."""
    changed = False
    progress = True
    while progress:
        progress = False
        for equation in equations:
            if sum(key in hidden for key in equation.members) == 1:
                extra = next_smallest(equation.members)
                if extra is not None:  # an equation has at least two members
                    hidden.add(extra)
                    changed = progress = True
    return changed


def determined(hidden: set[Key] | frozenset[Key], equations: Sequence[Equation]) -> list[Key]:
    """The hidden keys whose value follows from the published ones through the sums, by any
    linear combination: Gauss-Jordan elimination over the hidden keys, exactly in fractions.
    A key is determined when a row of the reduced system names it alone."""
    pivots: list[tuple[Key, dict[Key, Fraction]]] = []
    for equation in equations:
        row: dict[Key, Fraction] = {}
        for key, sign in ((equation.total, 1), *((part, -1) for part in equation.parts)):
            if key in hidden:
                row[key] = row.get(key, Fraction(0)) + sign
        for pivot, pivot_row in pivots:
            factor = row.get(pivot)
            if factor:
                for key, value in pivot_row.items():
                    row[key] = row.get(key, Fraction(0)) - factor * value
        row = {key: value for key, value in row.items() if value}
        if not row:
            continue
        pivot = next(iter(row))
        scale = row[pivot]
        row = {key: value / scale for key, value in row.items()}
        for index, (other, other_row) in enumerate(pivots):
            factor = other_row.get(pivot)
            if factor:
                reduced = dict(other_row)
                for key, value in row.items():
                    reduced[key] = reduced.get(key, Fraction(0)) - factor * value
                pivots[index] = (other, {key: value for key, value in reduced.items() if value})
        pivots.append((pivot, row))
    return [pivot for pivot, row in pivots if len(row) == 1]

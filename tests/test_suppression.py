"""Small-count suppression (``domain/suppression.py``): every published count is at least 5 or
"<5", and no hidden count can be worked out again from the published ones and the totals.

The attackers here are written from the published table alone, independently of the module: one
solves any row, column or total equation that has a single unknown, again and again; the other
asks linear algebra whether the equations determine a hidden count at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.suppression import (
    HIDDEN,
    THRESHOLD,
    Count,
    Key,
    LinkedTables,
    TableKeys,
    determined,
)
from tests.disclosure import peel

#: Counts as reports have them: many small ones (0..4) among larger ones.
counts = st.one_of(st.integers(0, THRESHOLD - 1), st.integers(THRESHOLD, 60))


@dataclass(frozen=True)
class Shape:
    rows: int
    columns: int
    row_totals: bool
    column_totals: bool
    total: bool


@st.composite
def tables(draw: st.DrawFn, *, small: bool = True) -> tuple[Shape, list[list[int]]]:
    """A 1-D table (one column, a grand total) or a 2-D table with its margins."""
    one_dimensional = draw(st.booleans())
    rows = draw(st.integers(1, 7))
    columns = 1 if one_dimensional else draw(st.integers(2, 5))
    values = counts if small else st.integers(THRESHOLD, 500)
    cells = draw(st.lists(st.lists(values, min_size=columns, max_size=columns),
                          min_size=rows, max_size=rows))  # fmt: skip
    if one_dimensional:
        shape = Shape(rows, 1, row_totals=False, column_totals=False, total=True)
    else:
        shape = Shape(rows, columns, row_totals=draw(st.booleans()),
                      column_totals=draw(st.booleans()), total=True)  # fmt: skip
    return shape, cells


Position = tuple[str, int, int]


def published(shape: Shape, cells: list[list[int]]) -> dict[Position, Count]:
    """What the table shows, position by position: ``c`` cells, ``r`` row totals, ``k`` column
    totals, ``g`` the grand total."""
    tables_ = LinkedTables()
    keys = tables_.add("t", cells, row_totals=shape.row_totals,
                       column_totals=shape.column_totals, total=shape.total)  # fmt: skip
    shown = tables_.suppress()
    return positions(keys, shape, shown.count)


def positions(keys: TableKeys, shape: Shape, show: Callable[[Key], Count]) -> dict[Position, Count]:
    table: dict[Position, Count] = {}
    for i in range(shape.rows):
        for j in range(shape.columns):
            table[("c", i, j)] = show(keys.cell(i, j))
        if shape.row_totals:
            table[("r", i, 0)] = show(keys.row_total(i))
    if shape.column_totals:
        for j in range(shape.columns):
            table[("k", 0, j)] = show(keys.column_total(j))
    if shape.total:
        table[("g", 0, 0)] = show(keys.total)
    return table


def true_values(shape: Shape, cells: list[list[int]]) -> dict[Position, int]:
    values: dict[Position, int] = {}
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            values[("c", i, j)] = value
        values[("r", i, 0)] = sum(row)
    for j in range(shape.columns):
        values[("k", 0, j)] = sum(row[j] for row in cells)
    values[("g", 0, 0)] = sum(map(sum, cells))
    return values


def equations(shape: Shape) -> list[tuple[Position, list[Position]]]:
    """Each published total and the positions it adds up, as a reader of the table sees them."""
    found: list[tuple[Position, list[Position]]] = []
    all_cells = [("c", i, j) for i in range(shape.rows) for j in range(shape.columns)]
    if shape.row_totals:
        for i in range(shape.rows):
            found.append((("r", i, 0), [("c", i, j) for j in range(shape.columns)]))
    if shape.column_totals:
        for j in range(shape.columns):
            found.append((("k", 0, j), [("c", i, j) for i in range(shape.rows)]))
    if shape.total:
        if shape.row_totals:
            found.append((("g", 0, 0), [("r", i, 0) for i in range(shape.rows)]))
        if shape.column_totals:
            found.append((("g", 0, 0), [("k", 0, j) for j in range(shape.columns)]))
        found.append((("g", 0, 0), all_cells))
    return found


def peel_table(shape: Shape, table: dict[Position, Count]) -> dict[Position, int]:
    """The attacker by subtraction: any equation with one unknown gives it; repeat."""
    return peel(equations(shape), table)


def rank(matrix: list[list[Fraction]]) -> int:
    rows = [row[:] for row in matrix]
    found = 0
    width = len(rows[0]) if rows else 0
    for column in range(width):
        pivot = next((r for r in range(found, len(rows)) if rows[r][column]), None)
        if pivot is None:
            continue
        rows[found], rows[pivot] = rows[pivot], rows[found]
        for r in range(len(rows)):
            if r != found and rows[r][column]:
                factor = rows[r][column] / rows[found][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[found], strict=True)]
        found += 1
    return found


def determined_by_algebra(shape: Shape, table: dict[Position, Count]) -> list[Position]:
    """Hidden positions whose value follows from the equations, whatever the method: those
    whose column adds to the rank of the equations' matrix over the hidden positions."""
    hidden = [p for p, v in table.items() if not isinstance(v, int)]
    matrix = []
    for total, parts in equations(shape):
        coefficients = dict.fromkeys(hidden, Fraction(0))
        if total in coefficients:
            coefficients[total] += 1
        for part in parts:
            if part in coefficients:
                coefficients[part] -= 1
        matrix.append([coefficients[p] for p in hidden])
    full = rank(matrix)
    return [
        p for index, p in enumerate(hidden)
        if rank([row[:index] + row[index + 1 :] for row in matrix]) < full
    ]  # fmt: skip


@given(tables())
@settings(max_examples=300, deadline=None)
def test_every_published_count_is_at_least_five_or_hidden_and_small_ones_are_hidden(
    table: tuple[Shape, list[list[int]]],
) -> None:
    shape, cells = table
    shown = published(shape, cells)
    truth = true_values(shape, cells)
    for position, value in shown.items():
        assert value == HIDDEN or (isinstance(value, int) and value >= THRESHOLD), position
        if isinstance(value, int):
            assert value == truth[position], "a published count is the true count"
        if truth[position] < THRESHOLD:
            assert value == HIDDEN, position


@given(tables())
@settings(max_examples=300, deadline=None)
def test_subtraction_recovers_no_hidden_count(table: tuple[Shape, list[list[int]]]) -> None:
    shape, cells = table
    assert peel_table(shape, published(shape, cells)) == {}


@given(tables())
@settings(max_examples=200, deadline=None)
def test_no_hidden_count_follows_from_the_totals_by_any_linear_method(
    table: tuple[Shape, list[list[int]]],
) -> None:
    shape, cells = table
    assert determined_by_algebra(shape, published(shape, cells)) == []


@given(tables(small=False))
@settings(max_examples=100, deadline=None)
def test_a_table_of_large_counts_is_published_unchanged(
    table: tuple[Shape, list[list[int]]],
) -> None:
    shape, cells = table
    truth = true_values(shape, cells)
    assert published(shape, cells) == {p: truth[p] for p in published(shape, cells)}


def test_one_small_cell_hides_the_next_smallest_so_the_total_cannot_give_it_away() -> None:
    shape = Shape(3, 1, row_totals=False, column_totals=False, total=True)
    shown = published(shape, [[3], [10], [20]])
    assert [shown[("c", i, 0)] for i in range(3)] == [HIDDEN, HIDDEN, 20]
    assert shown[("g", 0, 0)] == 33


def test_two_small_cells_need_no_third() -> None:
    shape = Shape(3, 1, row_totals=False, column_totals=False, total=True)
    shown = published(shape, [[3], [1], [20]])
    assert [shown[("c", i, 0)] for i in range(3)] == [HIDDEN, HIDDEN, 20]


def test_a_small_total_hides_everything_it_adds_up() -> None:
    shape = Shape(2, 2, row_totals=True, column_totals=True, total=True)
    shown = published(shape, [[1, 0], [2, 1]])
    assert set(shown.values()) == {HIDDEN}


def test_a_hidden_cell_in_a_two_way_table_is_protected_in_its_row_and_its_column() -> None:
    shape = Shape(3, 3, row_totals=True, column_totals=True, total=True)
    cells = [[2, 30, 40], [25, 35, 45], [50, 60, 70]]
    shown = published(shape, cells)
    hidden = {p for p, v in shown.items() if v == HIDDEN}
    assert ("c", 0, 0) in hidden
    assert len(hidden) == 4, "the smallest rectangle: two in its row, two in its column"
    assert {("c", 0, 1), ("c", 1, 0), ("c", 1, 1)} <= hidden
    assert peel_table(shape, shown) == {}


def test_a_link_between_tables_carries_the_protection_across() -> None:
    """Two tables count the same thing in one cell each: hiding it in one must hide it in the
    other, and then that table needs its own second cell."""

    def shown(linked: bool) -> tuple[list[Count], list[Count]]:
        tables_ = LinkedTables()
        first = tables_.add("first", [[3], [10], [20]])
        second = tables_.add("second", [[10], [6], [30]])
        if linked:
            tables_.same(first.cell(1, 0), second.cell(0, 0))
        result = tables_.suppress()
        return (
            [result.count(first.cell(i, 0)) for i in range(3)],
            [result.count(second.cell(i, 0)) for i in range(3)],
        )

    assert shown(linked=False) == ([HIDDEN, HIDDEN, 20], [10, 6, 30])
    assert shown(linked=True) == ([HIDDEN, HIDDEN, 20], [HIDDEN, HIDDEN, 30])


def test_a_sum_across_tables_that_does_not_hold_is_a_bug_and_says_so() -> None:
    tables_ = LinkedTables()
    first = tables_.add("first", [[3], [10]])
    second = tables_.add("second", [[12], [5]])
    tables_.same(first.total, second.total)
    with pytest.raises(ValueError, match="does not hold"):
        tables_.suppress()


def test_a_count_only_a_combination_of_sums_gives_away_is_protected_too() -> None:
    """Three tables of two small counts each, every two sharing one: each sum holds two hidden
    counts, so subtraction finds nothing, yet x = (a + b - c) / 2. One total must go."""
    x, y, z = 3, 4, 2
    tables_ = LinkedTables()
    first = tables_.add("first", [[x], [y]])
    second = tables_.add("second", [[x], [z]])
    third = tables_.add("third", [[y], [z]])
    tables_.same(first.cell(0, 0), second.cell(0, 0))
    tables_.same(first.cell(1, 0), third.cell(0, 0))
    tables_.same(second.cell(1, 0), third.cell(1, 0))
    shown = tables_.suppress()
    totals = [shown.count(keys.total) for keys in (first, second, third)]
    assert HIDDEN in totals, totals
    assert determined(shown.hidden, tables_.equations) == []

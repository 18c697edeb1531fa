"""Bar charts of report tables as inline SVG, drawn on the server: no script, no style
attribute (the console's Content-Security-Policy forbids inline styles; colours are
presentation attributes and classes a stylesheet may override), no reference outside the
picture. Pure functions of the standard library; the table beside the chart holds the numbers.

A hidden count ("<5") arrives here as that text, never as its value, and is drawn as a hatched,
outlined bar from 0 to the threshold, the same for every hidden count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH = 640
ROW = 26  # height of one bar's row
BAR = 16  # height of a bar
MARGIN = 8
LABEL_WIDTH = 220
COUNT_WIDTH = 44
LABEL_CHARACTERS = 28  # a longer label is shortened with "…" (its bar's tooltip has it whole)
BAR_AREA = WIDTH - LABEL_WIDTH - COUNT_WIDTH - 2 * MARGIN


def bar_chart_svg(
    counts: Sequence[int | str],
    *,
    title: str,
    labels: Sequence[str],
    hidden_below: int = 5,
) -> str:
    """One horizontal bar per count, labelled; ``counts`` as published: whole numbers, or a
    text ("<5") for a hidden count, drawn hatched over ``[0, hidden_below)``. ``title`` is the
    picture's accessible name (``<title>``, role="img")."""
    if len(counts) != len(labels):
        raise ValueError("one label per count")
    largest = max([count for count in counts if isinstance(count, int)] + [hidden_below])
    height = 2 * MARGIN + ROW * len(counts)
    digest = hashlib.sha256(repr((title, list(labels), list(counts))).encode()).hexdigest()
    hatch = f"hatch-{digest[:12]}"  # one id per chart, so charts on one page do not collide
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" font-size="12" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f"<title>{escape(title)}</title>",
        f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" '
        'stroke="currentColor" stroke-width="2"/></pattern></defs>',
    ]
    for index, (count, label) in enumerate(zip(counts, labels, strict=True)):
        top = MARGIN + index * ROW
        middle = top + ROW / 2
        bar_top = top + (ROW - BAR) / 2
        shown = label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"
        parts.append(f'<g class="bar"><title>{escape(label)}: {escape(str(count))}</title>')
        parts.append(
            f'<text class="label" x="{LABEL_WIDTH - MARGIN}" y="{middle}" text-anchor="end" '
            f'dominant-baseline="middle" fill="currentColor">{escape(shown)}</text>'
        )
        if isinstance(count, int):
            width = BAR_AREA * count / largest
            parts.append(
                f'<rect class="value" x="{LABEL_WIDTH}" y="{bar_top}" width="{width:.1f}" '
                f'height="{BAR}" fill="#2b6cb0"/>'
            )
        else:
            width = max(3.0, BAR_AREA * hidden_below / largest)
            parts.append(
                f'<rect class="hidden" x="{LABEL_WIDTH}" y="{bar_top}" width="{width:.1f}" '
                f'height="{BAR}" fill="url(#{hatch})" stroke="currentColor" '
                'stroke-dasharray="3 2"/>'
            )
        parts.append(
            f'<text class="count" x="{LABEL_WIDTH + width + 6:.1f}" y="{middle}" '
            f'dominant-baseline="middle" fill="currentColor">{escape(str(count))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)

"""Report charts (``web/charts.py``): well-formed SVG an img role can name, nothing that reaches
outside the picture or needs a script or an inline style, every text escaped, and a hidden
count drawn the same whatever its true value."""

from __future__ import annotations

import re
from datetime import date
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from domain.suppression import HIDDEN, LinkedTables
from services.reports import ReportFacts, build_report
from web.charts import LABEL_CHARACTERS, bar_chart_svg

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & Co. "Mill" \'s'


def widths(svg: Element, kind: str) -> list[float]:
    return [float(rect.attrib["width"]) for rect in svg.iter(f"{SVG}rect")
            if rect.attrib.get("class") == kind]  # fmt: skip


def test_the_chart_is_an_svg_image_named_by_its_title_with_a_bar_per_row() -> None:
    svg = fromstring(bar_chart_svg([12, 6, HIDDEN], title="Cases by workplace",
                                   labels=["Golden Thread", "Tiny Knit", "Other"]))  # fmt: skip
    assert svg.tag == f"{SVG}svg"
    assert svg.attrib["role"] == "img"
    title = svg[0]
    assert (title.tag, title.text) == (f"{SVG}title", "Cases by workplace")
    assert len(svg.findall(f"{SVG}g")) == 3
    twelve, six = widths(svg, "value")
    assert six / twelve == pytest.approx(0.5, abs=0.01), "published counts are to scale"
    [hidden] = widths(svg, "hidden")
    assert hidden == pytest.approx(twelve * 5 / 12, abs=0.1), "a hidden bar spans 0 to 5"
    labels = [text.text for text in svg.iter(f"{SVG}text")]
    assert labels == ["Golden Thread", "12", "Tiny Knit", "6", "Other", HIDDEN]


def test_nothing_reaches_outside_the_picture_or_needs_a_script_or_an_inline_style() -> None:
    source = bar_chart_svg([40, HIDDEN], title="t", labels=["a", "b"])
    svg = fromstring(source)
    for element in svg.iter():
        assert element.tag.removeprefix(SVG) not in ("script", "style", "image", "use",
                                                     "foreignObject", "a")  # fmt: skip
        for name, value in element.attrib.items():
            assert "href" not in name, name
            assert name != "style", "the console's CSP forbids inline styles"
            assert not name.startswith("on"), name
            for target in re.findall(r"url\(([^)]*)\)", value):
                assert target.startswith("#"), value
    assert source.count("http") == 1, "only the SVG namespace, which is a name, not a request"


def test_every_text_is_escaped_and_reads_back_as_given() -> None:
    source = bar_chart_svg([7], title=HOSTILE, labels=[HOSTILE])
    assert "<script>" not in source
    svg = fromstring(source)
    assert svg[0].text == HOSTILE
    texts = [element.text for element in svg.iter() if element.text]
    assert f"{HOSTILE}: 7" in texts
    assert HOSTILE[: LABEL_CHARACTERS - 1] + "…" in texts, (
        "a long label is shortened, its tooltip keeps it whole"
    )


def test_a_hidden_count_is_drawn_the_same_whatever_its_true_value() -> None:
    def chart_of(small: int) -> str:
        tables = LinkedTables()
        keys = tables.add("workplaces", [[40], [small], [3]])
        shown = tables.suppress()
        counts = [shown.count(keys.cell(row, 0)) for row in range(3)]
        return bar_chart_svg(counts, title="Cases by workplace", labels=["a", "b", "c"])

    assert chart_of(0) == chart_of(4)
    assert len(widths(fromstring(chart_of(4)), "hidden")) == 2, "the small one and the 3"


def test_a_report_table_charts_its_published_counts() -> None:
    report = build_report(ReportFacts([], [(1, "Golden Thread")], {}, {}), None, None,
                          date(2026, 3, 1))  # fmt: skip
    table = report.table("by_workplace")
    counts = table.chart_counts()
    labels = [table.row_label(row) for row in range(len(counts))]
    svg = fromstring(bar_chart_svg(counts, title=table.title, labels=labels))
    assert [text.text for text in svg.iter(f"{SVG}text")] == [
        "Golden Thread", HIDDEN, "Other or unlisted workplace", HIDDEN,
    ]  # fmt: skip


def test_a_count_without_a_label_is_refused() -> None:
    with pytest.raises(ValueError, match="one label per count"):
        bar_chart_svg([1, 2], title="t", labels=["a"])

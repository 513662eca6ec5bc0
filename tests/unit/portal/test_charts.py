"""The server-drawn SVG charts: well-formed, accessible, proportional, exact, escaped."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from services.portal.domain import charts
from services.portal.domain.charts import Bar

SVG = "{http://www.w3.org/2000/svg}"
TODAY = dt.date(2027, 1, 15)


def parse(svg: str) -> ET.Element:
    # Our own markup, not untrusted input; fromstring raises on anything not well-formed.
    return ET.fromstring(svg)  # noqa: S314


def rects(root: ET.Element) -> list[ET.Element]:
    return root.findall(f".//{SVG}rect")


def texts(root: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == css]


def test_a_chart_is_well_formed_accessible_svg() -> None:
    root = parse(
        charts.bar_chart(
            "c1", "Sales", "Per month.", [Bar("Jan", 5, "EUR 0.05"), Bar("Feb", 10, "EUR 0.10")]
        )
    )
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Sales"  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc").text  # type: ignore[union-attr]
    assert desc == "Per month. Jan: EUR 0.05; Feb: EUR 0.10."
    tooltips = [
        g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "chart-item"
    ]  # type: ignore[union-attr]
    assert tooltips == ["Jan: EUR 0.05", "Feb: EUR 0.10"]
    assert "style=" not in charts.bar_chart(
        "c", "t", "d", [Bar("a", 1, "1")]
    )  # CSP: no inline style


def test_bars_are_proportional_and_labels_exact() -> None:
    bars = [Bar("2026-11", 300, "EUR 3.00", "3"), Bar("2026-12", 100, "EUR 1.00", "1"),
            Bar("2027-01", 0, "EUR 0.00", "0")]  # fmt: skip
    root = parse(charts.bar_chart("c", "t", "d", bars))
    heights = [Fraction(r.get("height", "")) for r in rects(root)]
    # Drawn to 1/100 of a unit: proportional within that rounding.
    assert abs(heights[0] - 3 * heights[1]) <= Fraction(3, 100) and heights[2] == 0
    assert [int(r.get("data-value", "")) for r in rects(root)] == [300, 100, 0]
    assert texts(root, "chart-label") == ["2026-11", "2026-12", "2027-01"]
    assert texts(root, "chart-value") == ["3", "1", "0"]
    # Bars stand on the same baseline.
    bottoms = {Fraction(r.get("y", "")) + Fraction(r.get("height", "")) for r in rects(root)}
    assert len(bottoms) == 1


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=20))
def test_heights_follow_the_values(values: list[int]) -> None:
    bars = [Bar(str(i), v, str(v)) for i, v in enumerate(values)]
    root = parse(charts.bar_chart("c", "t", "d", bars))
    if not any(values):
        assert not rects(root)
        return
    top = max(values)
    tallest = max(Fraction(r.get("height", "")) for r in rects(root))
    for value, rect in zip(values, rects(root), strict=True):
        expected = tallest * Fraction(value, top)
        assert abs(Fraction(rect.get("height", "")) - expected) <= Fraction(1, 50)


def test_negative_values_hang_below_the_zero_line() -> None:
    root = parse(charts.bar_chart("c", "t", "d", [Bar("a", 200, "2"), Bar("b", -100, "-1")]))
    up, down = rects(root)
    assert "chart-bar-negative" in (down.get("class") or "")
    assert abs(Fraction(up.get("height", "")) - 2 * Fraction(down.get("height", ""))) < 0.03
    assert Fraction(up.get("y", "")) + Fraction(up.get("height", "")) == Fraction(down.get("y", ""))


def test_empty_data_says_so() -> None:
    for bars in ([], [Bar("a", 0, "0")]):
        root = parse(charts.bar_chart("c", "Title", "Desc.", bars, empty_text="Nothing yet."))
        assert not rects(root)
        assert texts(root, "chart-empty") == ["Nothing yet."]
        assert "Nothing yet." in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


def test_text_is_escaped() -> None:
    svg = charts.bar_chart('x"><script>', "<b>&", "d <i>", [Bar("<a>", 1, "&amp;", "<v>")])
    root = parse(svg)
    assert "<script>" not in svg and "<b>" not in svg
    assert root.find(f"{SVG}title").text == "<b>&"  # type: ignore[union-attr]
    assert texts(root, "chart-label") == ["<a>"] and texts(root, "chart-value") == ["<v>"]


def test_commissions_per_month_last_twelve_months_per_currency() -> None:
    lines = [
        {"occurred_at": "2027-01-05T10:00:00Z", "amount_minor": 500, "currency": "EUR"},
        {"occurred_at": "2027-01-20T10:00:00Z", "amount_minor": -200, "currency": "EUR"},
        {"occurred_at": "2026-02-01T00:00:00Z", "amount_minor": 100, "currency": "EUR"},
        {"occurred_at": "2026-01-31T23:00:00Z", "amount_minor": 999, "currency": "EUR"},  # too old
        {"occurred_at": "2026-12-01T00:00:00Z", "amount_minor": 7, "currency": "USD"},
    ]
    per = charts.commissions_per_month(lines, TODAY)
    assert list(per) == ["EUR", "USD"]
    eur = dict(per["EUR"])
    assert list(eur) == charts.months_back(TODAY, 12) and len(eur) == 12
    assert next(iter(eur)) == "2026-02" and list(eur)[-1] == "2027-01"
    assert eur["2027-01"] == 300 and eur["2026-02"] == 100 and sum(eur.values()) == 400
    [(currency, svg)] = charts.commissions_charts(lines[:1], TODAY)
    assert currency == "EUR" and "2027-01: EUR 5.00" in svg
    assert charts.commissions_charts([], TODAY) == []


def test_renewals_per_week_cover_the_next_90_days() -> None:
    ends = ["2027-01-15", "2027-01-21", "2027-01-22", "2027-04-15", "2027-04-16", "2027-01-14"]
    weeks = charts.renewals_per_week([{"term_end": e} for e in ends], TODAY)
    assert len(weeks) == 13 and weeks[0] == (TODAY, 2) and weeks[1] == (dt.date(2027, 1, 22), 1)
    assert weeks[-1] == (dt.date(2027, 4, 9), 1)  # day 90 counts, day 91 does not
    assert sum(count for _, count in weeks) == 4
    root = parse(charts.renewals_chart([{"term_end": "2027-01-16"}], TODAY))
    assert texts(root, "chart-label")[:2] == ["15 Jan", "22 Jan"]
    empty = parse(charts.renewals_chart([], TODAY))
    assert texts(empty, "chart-empty") == ["No renewals due in the next 90 days."]


def test_revenue_per_tier_is_por_order_amounts_less_refunds() -> None:
    lines = [
        {"partner_id": "P-A", "role": "partner_of_record", "base_amount_minor": 10000,
         "refund_id": None, "currency": "EUR"},
        {"partner_id": "P-A", "role": "partner_of_record", "base_amount_minor": 2500,
         "refund_id": "R-1", "currency": "EUR"},
        {"partner_id": "P-D", "role": "distributor_override", "base_amount_minor": 10000,
         "refund_id": None, "currency": "EUR"},
        {"partner_id": "P-A", "role": "adjustment", "base_amount_minor": 0, "currency": "EUR"},
        {"partner_id": "P-B", "role": "partner_of_record", "base_amount_minor": 4000,
         "refund_id": None, "currency": "USD"},
    ]  # fmt: skip
    per = charts.revenue_per_tier(lines, {"P-A": "gold", "P-B": "platinum", "P-D": "gold"})
    assert per["EUR"] == [("platinum", 0), ("gold", 7500), ("silver", 0), ("bronze", 0)]
    assert dict(per["USD"])["platinum"] == 4000
    [(_, eur), (_, usd)] = charts.tier_revenue_charts(lines, {"P-A": "gold", "P-B": "platinum"})
    assert "gold: EUR 75.00" in eur and "platinum: USD 40.00" in usd


def test_compact_amounts_for_narrow_bars() -> None:
    assert charts.compact(123456789) == "1.2m"
    assert charts.compact(-150000) == "-1.5k"
    assert charts.compact(4200) == "42"
    assert charts.compact(5000, 0) == "5.0k"

"""The Activity window's charts laid out without a display: every shape inside its box,
bars as tall as their values, axes that hold the largest value, gaps kept as gaps."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.desktop.charts import (
    Box,
    Line,
    Rect,
    Series,
    Text,
    _legend,
    bar_chart,
    line_chart,
    nice_ceiling,
    short,
)

BOX = Box(440, 190, 14)
DAYS = tuple(f"2026-11-{d:02d}" for d in range(6, 31)) + tuple(
    f"2026-12-{d:02d}" for d in range(1, 6))
VALUES = st.one_of(st.none(), st.floats(min_value=0, max_value=1e9, allow_nan=False))


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_the_axis_holds_the_value_in_three_or_four_round_steps(value: float) -> None:
    top, step = nice_ceiling(value)
    assert top >= value  # every bar inside the chart
    assert round(top / step) in (1, 2, 3, 4) and math.isclose(top / step, round(top / step))
    assert round(top / step) >= 3 or top < value * 2.5  # never mostly empty
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def test_axis_labels_are_short() -> None:
    assert [short(v) for v in (0, 0.25, 7, 1500, 2_000_000, 3e9)] == [
        "0", "0.25", "7", "1.5k", "2M", "3G"]


def _inside(shapes: list[Rect | Line | Text], box: Box) -> None:
    for shape in shapes:
        xs: tuple[float, ...]
        ys: tuple[float, ...]
        if isinstance(shape, Rect):
            xs, ys = (shape.x0, shape.x1), (shape.y0, shape.y1)
        elif isinstance(shape, Line):
            xs, ys = shape.points[::2], shape.points[1::2]
        else:
            xs, ys = (shape.x,), (shape.y,)
        assert all(-0.01 <= x <= box.width + 0.01 for x in xs), shape
        assert all(-0.01 <= y <= box.height + 0.01 for y in ys), shape


@given(st.lists(st.lists(VALUES, min_size=30, max_size=30), min_size=1, max_size=4))
def test_stacked_bars_stay_inside_and_are_as_tall_as_their_values(
        columns: list[list[float | None]]) -> None:
    series = [Series(f"model {i}", tuple(c)) for i, c in enumerate(columns)]
    shapes = bar_chart("Tokens", DAYS, series, BOX)
    _inside(shapes, BOX)
    left, upper, right, lower = BOX.plot(_legend(series, BOX)[1])
    totals = [sum(c[i] or 0 for c in columns) for i in range(30)]
    top, _ = nice_ceiling(max(totals))
    bars = [s for s in shapes if isinstance(s, Rect) and s.y0 >= upper - 1e-9]  # no legend
    drawn = sum(b.y1 - b.y0 for b in bars)
    assert math.isclose(drawn, sum(totals) / top * (lower - upper) if max(totals) else 0,
                        rel_tol=1e-6, abs_tol=1e-6)
    if not any(totals):
        assert any(isinstance(s, Text) and s.text == "Nothing yet" for s in shapes)


@given(st.lists(VALUES, min_size=30, max_size=30))
def test_a_line_breaks_where_a_day_has_no_value(values: list[float | None]) -> None:
    shapes = line_chart("Speed", DAYS, [Series("tokens/s", tuple(values))], BOX)
    _inside(shapes, BOX)
    plotted = [s for s in shapes if isinstance(s, Line) and s.width == 2.0]
    dots = [s for s in shapes if isinstance(s, Rect)]
    points = sum(len(line.points) // 2 for line in plotted) + len(dots)
    assert points == sum(v is not None for v in values)  # every day with a value, once
    runs = "".join("x" if v is not None else " " for v in values).split()
    assert len(plotted) == sum(len(r) > 1 for r in runs) and len(dots) == sum(
        len(r) == 1 for r in runs)


def test_an_empty_chart_says_why_in_its_middle() -> None:
    shapes = bar_chart("Energy per day (Wh)", DAYS, [Series("Wh", (None,) * 30)], BOX,
                       empty="Energy is not available here: no NVIDIA driver")
    middle = [s for s in shapes if isinstance(s, Text) and s.anchor == "center"]
    assert [m.text for m in middle] == ["Energy is not available here: no NVIDIA driver"]


@given(st.lists(st.text(min_size=1, max_size=80), min_size=2, max_size=7))
def test_a_long_legend_wraps_inside_the_chart(names: list[str]) -> None:
    series = [Series(name, (1.0,) * 30) for name in names]
    shapes, rows = _legend(series, BOX)
    _inside([s for s in shapes if isinstance(s, Rect)], BOX)
    keys = [s for s in shapes if isinstance(s, Text)]
    assert len(keys) == len(names) and all(len(k.text) <= 24 for k in keys)
    assert rows == len({k.y for k in keys}) and BOX.plot(rows)[1] > max(k.y for k in keys)


def test_the_last_day_is_labelled_and_labels_do_not_crowd() -> None:
    shapes = bar_chart("Requests", DAYS, [Series("served", (1.0,) * 30)], BOX)
    labels = [s.text for s in shapes if isinstance(s, Text) and s.anchor == "n"]
    assert labels[-1] == "12-05" and 4 <= len(labels) <= 7

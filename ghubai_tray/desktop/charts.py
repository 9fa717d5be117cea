"""The Activity window's charts as shapes: bars, lines and words at pixel positions.

Pure (no Tk): a chart is laid out here and drawn by the window on a Tk canvas, so the
layout is tested without a display, and the app carries no plotting library (a
canvas draws bars and lines well; matplotlib would add tens of megabytes to the
bundle for the same six pictures).

Every chart has a title, a value axis from zero to a round ceiling with three or four
gridlines, a day axis labelled every few days, and a legend when it has more than one
series; a chart with nothing to show says so in its middle, in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

TEXT, GRID, AXIS = "#333333", "#dddddd", "#888888"
# Colour-blind-safe (Okabe and Ito's), in the order series are given.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")


Anchor = Literal["nw", "n", "ne", "w", "center", "e", "sw", "s", "se"]  # Tk's


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float
    fill: str


@dataclass(frozen=True)
class Line:
    points: tuple[float, ...]  # x0, y0, x1, y1, ...
    fill: str
    width: float = 1.0


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: Anchor = "w"
    fill: str = TEXT
    bold: bool = False


Shape = Rect | Line | Text


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]  # one per day; None: nothing that day (a gap)
    colour: str = PALETTE[0]


@dataclass(frozen=True)
class Box:
    """Where a chart is drawn, in pixels, and how large its words are."""

    width: float
    height: float
    line: float = 14.0  # one line of small text

    def plot(self, legend_rows: int = 1) -> tuple[float, float, float, float]:
        """The plotting area inside the title, the legend's rows and the axes' labels."""
        return (self.line * 3.6, self.line * (2.0 + legend_rows), self.width - self.line * 1.6,
                self.height - self.line * 1.6)


MAX_NAME = 24  # a legend's name is cut past this many characters ("…")


def _legend(series: Sequence[Series], box: Box) -> tuple[list[Shape], int]:
    """The legend's keys from the left, wrapped onto as many rows as they need; the rows."""
    if len(series) < 2:
        return [], 1
    shapes: list[Shape] = []
    x, row = 0.0, 0
    for s in series:
        name = s.name if len(s.name) <= MAX_NAME else s.name[:MAX_NAME - 1] + "…"
        width = len(name) * box.line * 0.55 + box.line * 1.6
        if x > 0 and x + width > box.width:
            x, row = 0.0, row + 1
        y = box.line * (1.7 + row)
        shapes.append(Rect(x, y, x + box.line * 0.7, y + box.line * 0.7, s.colour))
        shapes.append(Text(x + box.line, y + box.line * 0.35, name))
        x += width
    return shapes, row + 1


def nice_ceiling(value: float) -> tuple[float, float]:
    """The axis's top and its step (1, 2, 2.5 or 5 times a power of ten): three or four
    steps, the top at or above ``value``."""
    if not math.isfinite(value) or value < 1e-9:  # nothing, or less than anything shown
        return 1.0, 0.25
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0):
        step = factor * magnitude
        if value <= step * 4:
            ticks = max(1, math.ceil(value / step - 1e-9))  # 3.0000000001 steps: 3
            if ticks * step < value:  # ... unless that leaves the value above the top
                ticks += 1
            return step * ticks, step
    return 10 * magnitude, 2.5 * magnitude  # pragma: no cover - the loop always returns


def short(value: float) -> str:
    """An axis label: 1.5k, 2M, 0.25."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:.3g}"


def _frame(title: str, box: Box, days: Sequence[str], top: float, step: float,
           series: Sequence[Series]) -> tuple[list[Shape], tuple[float, float, float, float]]:
    """Title, legend, gridlines and day labels; the plotting area they leave."""
    legend, rows = _legend(series, box)
    left, upper, right, lower = area = box.plot(rows)
    shapes: list[Shape] = [Text(0, box.line * 0.7, title, bold=True), *legend]
    ticks = round(top / step)
    for i in range(ticks + 1):
        y = lower - (lower - upper) * i / ticks
        shapes.append(Line((left, y, right, y), GRID if i else AXIS))
        shapes.append(Text(left - 4, y, short(step * i), anchor="e"))
    width = (right - left) / max(len(days), 1)
    every = max(1, math.ceil(len(days) / 6))
    for i, day in enumerate(days):
        if (len(days) - 1 - i) % every == 0:  # the last day always labelled
            shapes.append(Text(left + width * (i + 0.5), lower + 3, day[5:], anchor="n"))
    return shapes, area


def _empty(area: tuple[float, float, float, float], why: str) -> Text:
    left, upper, right, lower = area
    return Text((left + right) / 2, (upper + lower) / 2, why, anchor="center", fill=AXIS)


def bar_chart(title: str, days: Sequence[str], series: Sequence[Series], box: Box,
              empty: str = "Nothing yet") -> list[Shape]:
    """Bars per day, the series stacked in their order from the bottom."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(days))]
    top, step = nice_ceiling(max(totals, default=0))
    shapes, area = _frame(title, box, days, top, step, series)
    if not any(totals):
        return [*shapes, _empty(area, empty)]
    left, upper, right, lower = area
    width = (right - left) / len(days)
    for i in range(len(days)):
        base = lower
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            height = (lower - upper) * value / top
            x = left + width * i
            shapes.append(Rect(x + width * 0.15, base - height, x + width * 0.85, base,
                               s.colour))
            base -= height
    return shapes


def line_chart(title: str, days: Sequence[str], series: Sequence[Series], box: Box,
               empty: str = "Nothing yet") -> list[Shape]:
    """A line per series through each day's value, broken where a day has none; a day
    alone between gaps is a dot."""
    values = [v for s in series for v in s.values if v is not None]
    top, step = nice_ceiling(max(values, default=0))
    shapes, area = _frame(title, box, days, top, step, series)
    if not values:
        return [*shapes, _empty(area, empty)]
    left, upper, right, lower = area
    width = (right - left) / len(days)
    for s in series:
        run: list[float] = []
        for i, value in enumerate((*s.values, None)):
            if value is not None:
                run += [left + width * (i + 0.5), lower - (lower - upper) * value / top]
                continue
            if len(run) >= 4:
                shapes.append(Line(tuple(run), s.colour, 2.0))
            elif run:
                x, y = run
                shapes.append(Rect(x - 2, y - 2, x + 2, y + 2, s.colour))
            run = []
    return shapes

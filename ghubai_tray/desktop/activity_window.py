"""The Activity window (tkinter): what this computer gave, in pictures, from the ledger.

A process of its own (``ghubai-tray --activity-window``), as Settings is: the tray
never loads Tk, the charts or the ledger's queries, so it does not grow by a byte.
It reads the ledger read-only (the worker goes on writing it; SQLite's WAL lets both),
on a thread, and again every :data:`REFRESH` seconds; the charts are laid out by
:mod:`ghubai_tray.desktop.charts` and drawn on Tk canvases. *Export CSV…* writes every
row of the ledger to a file the owner picks, on a thread too.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import tkinter as tk
from collections.abc import Callable
from datetime import date
from pathlib import Path
from tkinter import filedialog, font, ttk
from typing import Any, TypeVar

from ghubai_tray.adapters import ledger_db
from ghubai_tray.core import texts
from ghubai_tray.core.hours import HELD, NOT_SHARING, PAUSED, SHARED
from ghubai_tray.core.ledger import ActivityCharts
from ghubai_tray.desktop.charts import (
    PALETTE,
    Box,
    Line,
    Rect,
    Series,
    Shape,
    Text,
    bar_chart,
    line_chart,
)
from ghubai_tray.desktop.tk_scaling import dpi_aware, scale_to_desktop

T = TypeVar("T")
DAYS = 30
REFRESH = 30.0  # seconds between readings of the ledger while the window is open
CHART = (440, 190)  # each chart's size at 96 dpi
HOURS_COLOURS = {SHARED: PALETTE[2], PAUSED: PALETTE[6], HELD: PALETTE[1],
                 NOT_SHARING: "#dddddd"}
GpuWords = Callable[[], tuple[bool, str]]
"""Whether a GPU here says its power draw, and what the GPUs read, in words: why the
energy chart is empty, where it is. Handed in by the composition root."""


def chart_shapes(data: ActivityCharts, box: Box, energy_why: str | None) -> list[list[Shape]]:
    """The six charts, in reading order (left to right, top to bottom)."""
    days = data.days
    models = [Series(name, values, PALETTE[i % len(PALETTE)])
              for i, (name, values) in enumerate(data.tokens_by_model)]
    energy_empty = energy_why or "No energy recorded in these days"
    return [
        bar_chart("Tokens made per day, by model", days, models, box),
        bar_chart("Requests per day", days, [
            Series("served", data.served, PALETTE[0]),
            Series("not served", data.not_served, PALETTE[5])], box),
        bar_chart("Hours per day", days, [
            Series(name, data.hours[name], HOURS_COLOURS[name])
            for name in (SHARED, HELD, PAUSED, NOT_SHARING)], box),
        bar_chart("Energy per day (Wh)", days, [Series("Wh", data.energy_wh, PALETTE[3])],
                  box, empty=energy_empty),
        line_chart("Time to first token (ms, average)", days,
                   [Series("ms", data.ttft_ms, PALETTE[4])], box),
        line_chart("Speed (tokens per second)", days,
                   [Series("tokens/s", data.tokens_per_s, PALETTE[2])], box),
    ]


def totals_line(data: ActivityCharts) -> str:
    shared = data.lifetime_hours.get(SHARED, 0.0)
    return (f"Since install: {data.lifetime_requests:,} requests served, "
            f"{data.lifetime_tokens:,} tokens, {shared:,.1f} hours shared")


def held_line(data: ActivityCharts) -> str:
    if not data.held_by:
        return f"No rule held sharing in the last {len(data.days)} days."
    rules = ", ".join(f"{rule} {hours:.1f} h" for rule, hours in data.held_by)
    return f"Held by your rules in the last {len(data.days)} days: {rules}."


def draw(canvas: tk.Canvas, shapes: list[Shape], normal: font.Font, bold: font.Font) -> None:
    canvas.delete("all")
    for shape in shapes:
        if isinstance(shape, Rect):
            canvas.create_rectangle(shape.x0, shape.y0, shape.x1, shape.y1, fill=shape.fill,
                                    width=0)
        elif isinstance(shape, Line):
            canvas.create_line(*shape.points, fill=shape.fill, width=shape.width)
        elif isinstance(shape, Text):
            canvas.create_text(shape.x, shape.y, text=shape.text, anchor=shape.anchor,
                               fill=shape.fill, font=bold if shape.bold else normal)


class ActivityWindow:
    """Build on a Tk root with the ledger's path; it reads and draws by itself."""

    def __init__(self, root: tk.Tk, path: Path, gpu_words: GpuWords, *,
                 today: Callable[[], date] = date.today, scale: float = 1.0) -> None:
        self.root = root
        self._path = path
        self._gpu_words = gpu_words
        self._today = today
        self._results: queue.Queue[tuple[Callable[[Any], None], Any]] = queue.Queue()
        self._energy_why: str | None = None
        self.data: ActivityCharts | None = None
        self.exported: Path | None = None
        root.title(texts.ACTIVITY_TITLE)
        self._normal = font.nametofont("TkSmallCaptionFont", root).copy()
        self._bold = font.nametofont("TkSmallCaptionFont", root).copy()
        self._bold.configure(weight="bold")
        frame = ttk.Frame(root, padding=10)
        frame.grid(sticky="nsew")
        self._totals = ttk.Label(frame, text="Reading the ledger…", font="TkHeadingFont")
        self._totals.grid(row=0, column=0, columnspan=2, sticky="w")
        width, height = (round(CHART[0] * scale), round(CHART[1] * scale))
        self._box = Box(width, height, self._normal.metrics("linespace"))
        self.canvases = []
        for i in range(6):
            canvas = tk.Canvas(frame, width=width, height=height, background="white",
                               highlightthickness=0)
            canvas.grid(row=1 + i // 2, column=i % 2, padx=4, pady=4)
            self.canvases.append(canvas)
        self._held = ttk.Label(frame, text="")
        self._held.grid(row=4, column=0, columnspan=2, sticky="w")
        buttons = ttk.Frame(frame)
        buttons.grid(row=5, column=0, columnspan=2, sticky="ew", pady=(8, 0))
        self._said = ttk.Label(buttons, text="", wraplength=width * 2 - 220)
        self._said.pack(side="left")
        ttk.Button(buttons, text="Close", command=root.destroy).pack(side="right")
        ttk.Button(buttons, text="Export CSV…", underline=0, command=self.export).pack(
            side="right", padx=6)
        root.bind("<Alt-e>", lambda _e: self.export())
        root.bind("<Control-e>", lambda _e: self.export())
        root.bind("<Escape>", lambda _e: root.destroy())
        self._in_background(lambda: self._gpu_words(), self._show_gpu)
        self.refresh()
        root.after(100, self._poll)

    # -- reading -----------------------------------------------------------------

    def refresh(self) -> None:
        self._in_background(self._read, self._show)
        self.root.after(int(REFRESH * 1000), self.refresh)

    def _read(self) -> ActivityCharts | None:
        if not self._path.exists():
            return None
        with contextlib.closing(ledger_db.read_only(self._path)) as db:
            return ledger_db.charts(db, DAYS, self._today())

    def _show(self, data: ActivityCharts | None | Exception) -> None:
        if isinstance(data, Exception):
            self._totals.configure(text=f"The ledger cannot be read: {data}")
            return
        if data is None:
            self._totals.configure(text=texts.NO_LEDGER_YET)
            data = ledger_db.empty_charts(DAYS, self._today())
        else:
            self._totals.configure(text=totals_line(data))
        self.data = data
        self._held.configure(text=held_line(data))
        self._redraw()

    def _show_gpu(self, found: tuple[bool, str] | Exception) -> None:
        if isinstance(found, Exception):
            self._energy_why = "Energy is not available: the GPUs could not be read"
        elif not found[0]:
            self._energy_why = f"Energy is not available here: {found[1]}"
        self._redraw()

    def _redraw(self) -> None:
        if self.data is None:
            return
        for canvas, shapes in zip(self.canvases, chart_shapes(self.data, self._box,
                                                              self._energy_why), strict=True):
            draw(canvas, shapes, self._normal, self._bold)

    # -- export ------------------------------------------------------------------

    def export(self) -> None:
        name = filedialog.asksaveasfilename(
            parent=self.root, title="Export the ledger as CSV", defaultextension=".csv",
            initialfile=f"ghubai-activity-{self._today().isoformat()}.csv",
            filetypes=[("CSV files", "*.csv"), ("All files", "*")])
        if not name:
            return
        target = Path(name)
        self._said.configure(text="Exporting…")
        self._in_background(lambda: self._write_csv(target),
                            lambda done: self._exported(target, done))

    def _write_csv(self, target: Path) -> int:
        if not self._path.exists():
            raise FileNotFoundError("nothing is recorded yet")
        with contextlib.closing(ledger_db.read_only(self._path)) as db, \
                target.open("w", encoding="utf-8", newline="") as out:
            return ledger_db.write_csv(db, out)

    def _exported(self, target: Path, done: int | Exception) -> None:
        if isinstance(done, Exception):
            reason = done.strerror if isinstance(done, OSError) and done.strerror else done
            self._said.configure(text=f"Nothing was exported: {reason}")
            return
        self.exported = target
        self._said.configure(text=f"Exported {done:,} rows to {target}")

    # -- threads -----------------------------------------------------------------

    def _in_background(self, work: Callable[[], T], done: Callable[[T | Exception], None]
                       ) -> None:
        """``work`` on a thread; ``done`` with its result (or exception) on Tk's."""
        def run() -> None:
            try:
                result: T | Exception = work()
            except Exception as exc:  # shown in the window, in words; the window goes on
                result = exc
            self._results.put((done, result))

        threading.Thread(target=run, daemon=True, name="activity-read").start()

    def _poll(self) -> None:
        while True:
            try:
                done, result = self._results.get_nowait()
            except queue.Empty:
                break
            done(result)
        self.root.after(100, self._poll)


def main(gpu_words: GpuWords, path: Path | None = None) -> int:
    dpi_aware()
    root = tk.Tk(className="ghubai-tray-activity")
    dpi = scale_to_desktop(root)
    ActivityWindow(root, path or ledger_db.default_path(), gpu_words,
                   scale=(dpi or 96.0) / 96.0)
    root.mainloop()
    return 0

"""The Activity window: its figures read from a ledger the test wrote, and the real window
on a real display (Xvfb): drawn, exported as CSV through Tk's own file dialog, measured."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.adapters import ledger_db
from ghubai_tray.adapters.ledger_db import Ledger
from ghubai_tray.core import texts
from ghubai_tray.core.hours import Period
from ghubai_tray.core.ledger import Entry
from ghubai_tray.core.settings import APP_NAME
from ghubai_tray.desktop.activity_window import held_line, totals_line
from tests.paths import ARTIFACTS
from tests.processes import clean_environment
from tests.testbed.desktop import Desktop, Window, desktop_available, real_desktop, wait_for

NEEDS_DISPLAY = pytest.mark.skipif(
    sys.platform != "linux" or (not desktop_available() and not os.environ.get("CI")),
    reason="Xvfb and xdotool needed (make test installs them)")
MODELS = ("llama3.1:8b", "qwen2.5:7b", "mistral:7b", "phi3:mini", "gemma2:2b", "tinyllama")


def _row(day: date, model: str, outcome: str = "served", tokens: int = 200,
         ttft: float = 250.0, rate: float = 100.0, energy: float | None = None) -> Entry:
    served = outcome == "served"
    return Entry(at=f"{day}T12:00:00.000+00:00", day=day.isoformat(), hub="hub.example.com",
                 model=model, endpoint="/api/chat", server="ollama", outcome=outcome,
                 prompt_tokens=40, output_tokens=tokens if served else None,
                 chunks=tokens if served else 0, ttft_ms=ttft,
                 duration_ms=ttft + tokens / rate * 1000, energy_wh=energy)


def _tokens(back: int, model: int) -> int:
    """Today's answers are 200 tokens (the test reads today's figures); other days vary."""
    return 200 if back == 0 else 120 + (back * 53 + model * 17) % 160


def write_ledger(path: Path, today: date) -> None:
    """Three weeks of a donor's evenings: six models (the last two made least), a failure
    every third day, energy read in the last ten days, hours shared, held by game mode,
    paused."""
    ledger = Ledger(path)
    ledger.open(today)
    for back in range(21):
        day = today - timedelta(days=back)
        ttft = 250.0 if back == 0 else 180.0 + (back * 37) % 140
        rate = 100.0 if back == 0 else 70.0 + (back * 29) % 50
        for i, model in enumerate(MODELS):
            for _ in range(6 - i):
                ledger.add(_row(day, model, tokens=_tokens(back, i), ttft=ttft, rate=rate,
                                energy=0.5 if back < 10 else None))
        if back % 3 == 0:
            ledger.add(_row(day, MODELS[0], outcome="failed"))
        noon = f"{day}T{{}}:00:00.000+00:00"
        shared = 6.0 if back == 0 else 3.0 + (back * 7) % 5
        ledger.add(Period(noon.format("08"), day.isoformat(), shared * 3600, "shared"))
        ledger.add(Period(noon.format("14"), day.isoformat(), 2 * 3600.0, "held", "game mode"))
        ledger.add(Period(noon.format("16"), day.isoformat(), 3600.0, "paused"))
    ledger.close()


def test_the_figures_are_read_from_the_ledger(tmp_path: Path) -> None:
    today = date(2026, 12, 5)
    path = tmp_path / "ledger.sqlite3"
    write_ledger(path, today)
    with contextlib.closing(ledger_db.read_only(path)) as db:
        data = ledger_db.charts(db, 30, today)
    assert data.days[0] == "2026-11-06" and data.days[-1] == "2026-12-05"
    assert [name for name, _ in data.tokens_by_model] == [*MODELS[:5], "other models"]
    llama = dict(data.tokens_by_model)["llama3.1:8b"]
    assert llama[:9] == (None,) * 9 and llama[-1] == 1200  # six of 200 today
    assert llama[-2] == 6 * _tokens(1, 0)
    assert data.served[-1] == 21 and data.not_served[-1] == 1 and data.not_served[-2] == 0
    assert data.ttft_ms[-1] == 250.0 and data.tokens_per_s[-1] == 100.0  # 200 in 2 s
    assert data.energy_wh[-1] == pytest.approx(21 * 0.5)
    assert data.energy_wh[-11] is None and data.energy_wh[0] is None
    assert data.hours["shared"][-1] == 6.0 and data.hours["held"][-1] == 2.0
    assert data.hours["paused"][0] is None  # no hours were kept that day
    assert data.held_by == (("game mode", 42.0),)
    tokens = sum(_tokens(back, i) * (6 - i) for back in range(21) for i in range(6))
    shared = 6 + sum(3 + (back * 7) % 5 for back in range(1, 21))
    assert totals_line(data) == (f"Since install: 441 requests served, {tokens:,} tokens, "
                                 f"{shared:.1f} hours shared")
    assert held_line(data) == "Held by your rules in the last 30 days: game mode 42.0 h."
    empty = ledger_db.empty_charts(30, today)
    assert empty.empty and empty.days == data.days and not data.empty


# The window built in a process of its own (Tk keeps a display's connection for the life
# of its process, and a later test's Xvfb would find this one's gone), which reads its
# canvases back as JSON.
INSPECT = """
import json, sys, time, tkinter as tk
from pathlib import Path
from typing import Any
from ghubai_tray.desktop.activity_window import ActivityWindow
no_gpu = (False, sys.argv[2])
root = tk.Tk(className="ghubai-tray-activity")
window = ActivityWindow(root, Path(sys.argv[1]), lambda: no_gpu)
deadline = time.monotonic() + 30
while window.data is None or window._energy_why is None:
    assert time.monotonic() < deadline, "the charts were not drawn"
    root.update()
    time.sleep(0.02)
root.update()
print(json.dumps({
    "totals": str(window._totals.cget("text")),
    "charts": [[{"type": c.type(i), "coords": c.coords(i),
                 "text": c.itemcget(i, "text") if c.type(i) == "text" else ""}
                for i in c.find_all()] for c in window.canvases]}))
root.destroy()
"""


def _drawn(desk: Desktop, tmp_path: Path, ledger: Path, no_gpu: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", INSPECT, str(ledger), no_gpu],
                          env={**clean_environment(tmp_path), **desk.env}, capture_output=True,
                          text=True, timeout=120, check=True)
    return dict(json.loads(done.stdout))


@NEEDS_DISPLAY
def test_the_window_draws_each_chart_and_says_why_energy_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    write_ledger(path, date.today())
    no_gpu = "not available (no NVIDIA driver and no AMD card's hwmon files)"
    with real_desktop(ARTIFACTS, notifications=False) as desk:
        drawn = _drawn(desk, tmp_path, path, no_gpu)
        empty = _drawn(desk, tmp_path, tmp_path / "none.sqlite3", no_gpu)
    charts = drawn["charts"]
    kinds = [[item["type"] for item in chart] for chart in charts]
    assert all(k.count("rectangle") >= 20 for k in kinds[:3])  # bars on every day
    assert kinds[3].count("rectangle") >= 10  # energy on the days it was read
    for chart in charts[4:]:  # time to first token, speed: a line through the 21 days
        assert max(len(i["coords"]) for i in chart if i["type"] == "line") == 21 * 2
    assert drawn["totals"].startswith("Since install: 441 requests served")
    words = [item["text"] for item in empty["charts"][3] if item["type"] == "text"]
    assert f"Energy is not available here: {no_gpu}" in words
    assert empty["totals"] == texts.NO_LEDGER_YET


def _activity_window(desk: Desktop) -> Window | None:
    return next((w for w in desk.windows(tree=False)
                 if w.name == texts.ACTIVITY_TITLE and w.width > 100), None)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


BARE_TK = """
import tkinter as tk
root = tk.Tk()
root.title("bare Tk")
tk.Canvas(root, width=880, height=600).pack()
root.mainloop()
"""


@NEEDS_DISPLAY
async def test_the_real_window_is_drawn_exported_as_csv_and_measured(tmp_path: Path) -> None:
    env = {**clean_environment(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    path = tmp_path / "data" / APP_NAME / "ledger.sqlite3"
    path.parent.mkdir(parents=True)
    write_ledger(path, date.today())
    target = tmp_path / "exported" / "my-ledger.csv"
    target.parent.mkdir()
    with real_desktop(ARTIFACTS, notifications=False) as desk:
        env.update(desk.env)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ghubai_tray", "--activity-window", env=env)
        bare = subprocess.Popen([sys.executable, "-c", BARE_TK], env=env)
        try:
            window = await asyncio.to_thread(wait_for, "the activity window",
                                             lambda: _activity_window(desk))
            assert window.height <= 700, window.height  # a 1366x768 screen's room
            await asyncio.sleep(0)
            await asyncio.to_thread(wait_for, "the bare Tk window", lambda: next(
                (w for w in desk.windows(tree=False) if w.name == "bare Tk"), None))
            await asyncio.to_thread(time.sleep, 1.0)  # the charts drawn (read on a thread)
            await asyncio.to_thread(desk.screenshot, "activity-window.png",
                                    (window.width, window.height, window.x, window.y))
            window_kib, bare_kib = _rss_kib(proc.pid), _rss_kib(bare.pid)
            (ARTIFACTS / "activity-window-memory.txt").write_text(
                f"Activity window: {window_kib / 1024:.1f} MiB resident; a bare Tk window "
                f"with a canvas: {bare_kib / 1024:.1f} MiB\n")
            assert window_kib < 150 * 1024, window_kib
            await asyncio.to_thread(desk.run, "xdotool", "search", "--name",
                                    texts.ACTIVITY_TITLE, "windowfocus", "--sync")
            await asyncio.to_thread(desk.press, "ctrl+e")
            await asyncio.to_thread(wait_for, "the export dialog", lambda: next(
                (w for w in desk.windows(tree=False)
                 if w.name == "Export the ledger as CSV" and w.width > 100), None))
            await asyncio.to_thread(desk.run, "xdotool", "search", "--name",
                                    "Export the ledger as CSV", "windowfocus", "--sync")
            await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "10", str(target))
            await asyncio.to_thread(desk.press, "Return")
            await asyncio.to_thread(wait_for, "the exported file", lambda: target.exists()
                                    and target.read_bytes().endswith(b"\r\n") or None)
            await asyncio.to_thread(wait_for, "the export to end", lambda: (
                _csv_of(path) == target.read_bytes().decode()) or None)
            await asyncio.to_thread(desk.press, "Escape")  # closes the window
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            bare.kill()
            bare.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _csv_of(path: Path) -> str:
    out = io.StringIO(newline="")
    with contextlib.closing(ledger_db.read_only(path)) as db:
        ledger_db.write_csv(db, out)
    return out.getvalue()


def test_the_tray_process_loads_none_of_the_window() -> None:
    """The window is a process of its own: the tray's process never imports Tk, the charts
    or the window (so it does not grow by what the window costs)."""
    code = ("import sys, ghubai_tray.app, ghubai_tray.desktop.tray, ghubai_tray.desktop.menu; "
            "print(sorted(m for m in ('tkinter', 'ghubai_tray.desktop.activity_window', "
            "'ghubai_tray.desktop.charts', 'pynvml') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"

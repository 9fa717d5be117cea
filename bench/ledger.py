"""``make bench-ledger``: what keeping the ledger costs a request, and the relay beside it.

The row is handed over on the event loop (``StateStore.record``: the tallies, then
``Ledger.add``, a queue put) while the ledger's thread writes rows to SQLite; the
figure that matters is that hand-over's time on the loop, per row, p50 and p99, taken
while the writer is busy with a burst (it competes for the interpreter). The baseline,
in the same run: the same hand-over to a ledger that writes nothing (its queue only).
Then the relay's ceiling (``bench.run``'s unpaced stream through a worker) with the
ledger on, beside the same without it.

    python -m bench.ledger [--quick] [--write]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from bench.real_ollama import main, write_section
from bench.run import pct, relay_ceiling
from ghubai_tray.adapters.ledger_db import Ledger
from ghubai_tray.core.ledger import Entry
from ghubai_tray.core.settings import Settings
from ghubai_tray.worker.runtime import SideJobs
from ghubai_tray.worker.store import StateStore

BEGIN, END = "<!-- ledger:begin -->", "<!-- ledger:end -->"
ROW = Entry(at="2026-12-05T10:00:00.000+00:00", day=date.today().isoformat(),
            hub="hub.example.com", model="llama3.2:1b", endpoint="/api/chat", server="ollama",
            outcome="served", prompt_tokens=12, output_tokens=300, chunks=301, ttft_ms=80.5,
            duration_ms=4080.5, limits="max_tokens capped")


def _hand_over(rows: int, keep: bool) -> tuple[list[float], float, int]:
    """Seconds per ``record`` on the caller's thread, the rows/s the writer committed, and
    how many it committed."""
    with tempfile.TemporaryDirectory(prefix="ghubai-bench-ledger-") as home:
        store = StateStore(Settings(), SideJobs())
        ledger = Ledger(Path(home) / "ledger.sqlite3")
        if keep:
            store.activity_loaded(ledger.open(date.today()))
            store.keep_ledger(ledger.add)
        times = []
        started = time.perf_counter()
        for number in range(rows):
            row = replace(ROW, model=f"model-{number % 7}")
            t0 = time.perf_counter()
            store.record(row)
            times.append(time.perf_counter() - t0)
        ledger.close(timeout=120)
        elapsed = time.perf_counter() - started
        return times, (ledger.written / elapsed if keep else 0.0), ledger.written


async def measure(quick: bool) -> list[str]:
    rows = 5_000 if quick else 10_000  # a burst the writer's queue holds whole
    base, _, _ = _hand_over(rows, keep=False)
    kept, rate, written = _hand_over(rows, keep=True)
    lines = ["| hand-over on the event loop, per row | p50 | p99 | max | mean |",
             "|---|---:|---:|---:|---:|"]
    for name, times in (("tallies only (baseline)", base), ("tallies and the ledger", kept)):
        lines.append(f"| {name} | {pct(times, 0.5) * 1e6:.1f} µs | "
                     f"{pct(times, 0.99) * 1e6:.1f} µs | {max(times) * 1e6:.0f} µs | "
                     f"{statistics.mean(times) * 1e6:.1f} µs |")
    lines += ["", f"{rows:,} rows handed over in one burst, {written:,} committed; the "
              f"writer committed **{rate:,.0f} rows/s**; the ledger's p99 is "
              f"{pct(kept, 0.99) / pct(base, 0.99):.1f} × the baseline's (goal: under 1 ms). "
              "The worst hand-over is the interpreter's lock, held a moment by the writer.",
              "", "The relay's ceiling with the ledger on (every headless worker keeps it):", ""]
    return lines + await relay_ceiling(quick)


def write(rows: list[str]) -> None:
    write_section(BEGIN, END, "### The ledger's cost per request", rows,
                  "`python -m bench.ledger`")


if __name__ == "__main__":
    main("what the ledger costs a request", measure, write)

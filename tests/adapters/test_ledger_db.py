"""The ledger on disk: a real SQLite file, its writer thread, pruning, the old counters
carried over, and a writer killed with SIGKILL in the middle of a burst."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from ghubai_tray.adapters import activity_file, ledger_db
from ghubai_tray.adapters.ledger_db import Ledger
from ghubai_tray.core.activity import Activity, Tally
from ghubai_tray.core.hours import Period
from ghubai_tray.core.ledger import COLUMNS, Entry

TODAY = date(2026, 12, 5)
ROW = Entry(at="2026-12-05T10:00:00.000+00:00", day=TODAY.isoformat(), hub="hub.example.com",
            model="llama3.2:1b", endpoint="/api/chat", server="ollama", outcome="served",
            prompt_tokens=12, output_tokens=30, chunks=31, ttft_ms=80.5, duration_ms=1080.5)


def _rows(path: Path) -> list[Entry]:
    with contextlib.closing(ledger_db.read_only(path)) as db:
        return list(ledger_db.entries(db))


def test_rows_are_written_off_the_loop_and_read_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.sqlite3"
    ledger = Ledger(path)
    assert ledger.open(TODAY) == Activity(TODAY.isoformat(), Tally(), Tally())
    failed = replace(ROW, outcome="failed", why="the model server", output_tokens=None,
                     chunks=3, limits="max_tokens capped")
    for entry in (ROW, failed):
        ledger.add(entry)
    ledger.close()
    assert _rows(path) == [ROW, failed]
    if sys.platform != "win32":
        assert path.stat().st_mode & 0o777 == 0o600
    with contextlib.closing(ledger_db.read_only(path)) as db:
        tallies = ledger_db.activity_in(db, TODAY)
        assert tallies.today == tallies.lifetime == Tally(requests=1, failed=1, tokens=33,
                                                          limited=1)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        out = io.StringIO()
        assert ledger_db.write_csv(db, out) == 2
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1] == ("2026-12-05T10:00:00.000+00:00,hub.example.com,llama3.2:1b,/api/chat,"
                        "ollama,served,12,30,80.5,1080.5,30,")  # 30 tokens in 1.0 s


def test_the_old_counters_are_carried_over_once(tmp_path: Path) -> None:
    old = tmp_path / "activity.json"
    activity_file.save(old, Activity(TODAY.isoformat(), Tally(2, 1, 20, 1), Tally(9, 3, 90, 2)))
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    carried = ledger.open(TODAY)
    ledger.close()
    assert carried == Activity(TODAY.isoformat(), Tally(2, 1, 20, 1), Tally(9, 3, 90, 2))
    assert not old.exists() and (tmp_path / "activity.json.migrated").exists()
    later = Ledger(tmp_path / "ledger.sqlite3").open(TODAY + timedelta(days=1))
    assert later.today == Tally() and later.lifetime == Tally(9, 3, 90, 2)


def test_pruned_rows_leave_their_counts_behind(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path, retention_days=10)
    ledger.open(TODAY)
    old_day = (TODAY - timedelta(days=30)).isoformat()
    for _ in range(5):
        ledger.add(replace(ROW, day=old_day))
    ledger.add(ROW)
    ledger.close()
    again = Ledger(path, retention_days=10)
    tallies = again.open(TODAY)  # prunes at start
    again.close()
    assert _rows(path) == [ROW]
    assert tallies.lifetime == Tally(requests=6, tokens=180)


def test_the_stretch_under_way_is_one_row_and_pruned_hours_are_carried(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path, retention_days=10)
    ledger.open(TODAY)
    old_day = (TODAY - timedelta(days=30)).isoformat()
    ledger.add(Period(f"{old_day}T10:00:00.000+00:00", old_day, 7200.0, "held", "away"))
    start = f"{TODAY}T09:00:00.000+00:00"
    for minutes in (1, 2, 3):  # the stretch under way, written again each minute
        ledger.add(Period(start, TODAY.isoformat(), minutes * 60.0, "shared"))
    ledger.close()
    again = Ledger(path, retention_days=10)
    again.open(TODAY)  # prunes the old day's hours into the carried ones
    again.close()
    with contextlib.closing(ledger_db.read_only(path)) as db:
        assert db.execute("SELECT * FROM periods").fetchall() == [
            (start, TODAY.isoformat(), 180.0, "shared", "")]
        summary = ledger_db.summary(db, 30, TODAY)
    assert summary["hours_by_day"] == [{"day": TODAY.isoformat(), "shared": 0.05,
                                        "paused": 0.0, "held": 0.0, "not sharing": 0.0}]
    assert summary["held_by"] == []  # not within the 30 days any more
    assert summary["lifetime_hours"] == {"shared": 0.05, "paused": 0.0, "held": 2.0,
                                         "not sharing": 0.0}


def test_a_ledger_from_before_the_hours_reads_as_none_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    ledger.open(TODAY)
    ledger.close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # as the previous version made it
        db.execute("DROP TABLE periods")
        db.execute("DROP TABLE carried_hours")
    with contextlib.closing(ledger_db.read_only(path)) as db:
        assert ledger_db.summary(db, 30, TODAY)["hours_by_day"] == []


def test_past_its_size_ceiling_the_oldest_rows_go_first(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    ledger.open(TODAY)
    for number in range(3000):
        ledger.add(replace(ROW, model=f"model-{number:05d}", limits="x" * 200))
    ledger.close()
    size = path.stat().st_size
    small = Ledger(path, max_bytes=size // 2)
    tallies = small.open(TODAY)
    small.close()
    kept = _rows(path)
    assert 0 < len(kept) < 3000
    assert kept[-1].model == "model-02999"  # the newest stay
    assert path.stat().st_size <= size // 2
    assert tallies.lifetime.requests == 3000


def test_a_full_queue_drops_rows_instead_of_blocking(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_db, "MAX_WAITING", 3)
    ledger = Ledger(tmp_path / "ledger.sqlite3")  # not opened: nothing takes from the queue
    started = time.perf_counter()
    for _ in range(50):
        ledger.add(ROW)
    assert time.perf_counter() - started < 5  # generous: it never waits for the disk
    assert ledger._queue.qsize() == 3


WRITER = textwrap.dedent("""
    import sys
    from dataclasses import replace
    from datetime import date
    from pathlib import Path
    from ghubai_tray.adapters.ledger_db import Ledger
    from tests.adapters.test_ledger_db import ROW
    ledger = Ledger(Path(sys.argv[1]))
    ledger.open(date(2026, 12, 5))
    number = 0
    while True:
        ledger.add(replace(ROW, model=f"burst-{number}"))
        number += 1
""")


def test_a_writer_killed_mid_burst_leaves_a_whole_database_and_the_next_start_goes_on(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                              cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 60
        while True:  # the event waited for: rows committed while the burst goes on
            assert writer.poll() is None, "the writer stopped by itself"
            with contextlib.suppress(Exception):
                if len(_rows(path)) > 2000:
                    break
            assert time.monotonic() < deadline, "no rows were written"
            time.sleep(0.05)
        writer.kill()  # SIGKILL; TerminateProcess on Windows: no chance to clean up either way
    finally:
        writer.kill()
        writer.wait(30)
    with contextlib.closing(ledger_db._connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        before = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    ledger = Ledger(path)
    tallies = ledger.open(TODAY)
    ledger.add(ROW)
    ledger.close()
    assert tallies.lifetime.requests == before
    assert len(_rows(path)) == before + 1

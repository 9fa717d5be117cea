"""The ledger on disk: SQLite (the standard library's), written off the event loop.

One file in the app's data folder, owner-only, in WAL mode: a reader (``ghubai-tray
activity``, the Activity window) never blocks the writer, and a process killed in the
middle of a write leaves a database that opens whole (SQLite's journal; tested with
``kill -9``). The worker hands each row to :meth:`Ledger.add`, which only queues it:
one thread writes the rows, many to a transaction, so a request never waits for the
disk. A full disk or a damaged file is said once in the log and costs rows, never a
request.

Bounded: rows older than the retention (400 days by default) and, past a size
ceiling, the oldest tenth, are pruned at start and once a day; what they counted is
added to the carried totals first, so the lifetime figures never shrink. The old
``activity.json`` counters are carried over once, the first time the ledger is
created, and the file is renamed ``activity.json.migrated``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, astuple, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from ghubai_tray.adapters.activity_file import load as load_activity_file
from ghubai_tray.adapters.owner_only import private_dir, private_file
from ghubai_tray.core.activity import Activity, Tally
from ghubai_tray.core.guard import DayUse, busy_seconds
from ghubai_tray.core.hours import STANDINGS, HourTotals, Period
from ghubai_tray.core.ledger import ActivityCharts, Entry, csv_header, csv_line
from ghubai_tray.core.settings import APP_NAME

log = logging.getLogger("ghubai_tray.ledger")

RETENTION_DAYS = 400
MAX_BYTES = 256 * 1024 * 1024  # past this, the oldest tenth of the rows goes
MAX_WAITING = 10_000  # rows queued for the writer; more are dropped (and said), not held
BATCH = 256
SCHEMA_VERSION = "1"

_COLUMNS = tuple(f.name for f in fields(Entry))
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL, day TEXT NOT NULL, hub TEXT NOT NULL, model TEXT NOT NULL,
    endpoint TEXT NOT NULL, server TEXT NOT NULL, outcome TEXT NOT NULL,
    why TEXT NOT NULL DEFAULT '', prompt_tokens INTEGER, output_tokens INTEGER,
    chunks INTEGER NOT NULL DEFAULT 0, ttft_ms REAL, duration_ms REAL,
    limits TEXT NOT NULL DEFAULT '', energy_wh REAL);
CREATE INDEX IF NOT EXISTS requests_day ON requests (day);
CREATE TABLE IF NOT EXISTS carried (
    day TEXT PRIMARY KEY, requests INTEGER NOT NULL, failed INTEGER NOT NULL,
    tokens INTEGER NOT NULL, limited INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS periods (
    start TEXT NOT NULL, day TEXT NOT NULL, seconds REAL NOT NULL, standing TEXT NOT NULL,
    rule TEXT NOT NULL DEFAULT '', PRIMARY KEY (start, standing, rule));
CREATE INDEX IF NOT EXISTS periods_day ON periods (day);
CREATE TABLE IF NOT EXISTS carried_hours (
    standing TEXT NOT NULL, rule TEXT NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (standing, rule));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');
"""
# The tallies of a set of rows, as core.ledger.tally_of counts one.
_SUMS = ("COALESCE(SUM(outcome = 'served'), 0), COALESCE(SUM(outcome != 'served'), 0), "
         "COALESCE(SUM(COALESCE(output_tokens, chunks)), 0), COALESCE(SUM(limits != ''), 0)")


def default_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "ledger.sqlite3"


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=10.0, isolation_level=None,
                                 check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # whole after a crash; the last rows may go
    return connection


class Ledger:
    """The writer: ``open()`` once (it returns the tallies so far), ``add()`` per
    request from the event loop, ``close()`` at the end (it writes what is queued)."""

    def __init__(self, path: Path, *, retention_days: int = RETENTION_DAYS,
                 max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self._retention = retention_days
        self._max_bytes = max_bytes
        # rows, a day to prune up to, or None: the end
        self._queue: queue.Queue[Entry | Period | date | None] = queue.Queue(MAX_WAITING)
        self._thread: threading.Thread | None = None
        self._dropped = 0
        self._failing = False
        self.written = 0  # rows committed (for tests and the benchmark)
        self.today_use = DayUse()  # what the rows of the day it was opened on used

    def open(self, today: date) -> Activity:
        """Create or open the file, carry the old counters over, prune; the tallies."""
        private_dir(self.path.parent)
        fresh = not self.path.exists()
        if fresh:  # owner-only from the first byte (its -wal and -shm files follow it)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        private_file(self.path)
        with contextlib.closing(_connect(self.path)) as db:
            db.executescript(_SCHEMA)
            if fresh:
                self._carry_old_counters(db)
            self.prune(db, today)
            activity = activity_in(db, today)
            self.today_use = day_use(db, today.isoformat())
        self._thread = threading.Thread(target=self._write, name="ledger", daemon=True)
        self._thread.start()
        return activity

    def add(self, entry: Entry | Period) -> None:
        """Queue a request's row or a stretch of hours for the writer; never blocks (a
        full queue drops it, said)."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1:
                log.warning("the ledger's writer is behind: rows are being dropped")

    def prune_soon(self, today: date) -> None:
        """Prune on the writer's thread (a new day began)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(today)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def prune(self, db: sqlite3.Connection, today: date) -> None:
        """Rows past the retention, then the oldest tenth while the file is too big;
        what they counted goes to the carried totals of their day."""
        oldest = (today - timedelta(days=self._retention)).isoformat()
        self._carry_and_delete(db, "day < ?", (oldest,))
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO carried_hours SELECT standing, rule, SUM(seconds) FROM "
                       "periods WHERE day < ? GROUP BY standing, rule ON CONFLICT DO UPDATE "
                       "SET seconds = seconds + excluded.seconds", (oldest,))
            db.execute("DELETE FROM periods WHERE day < ?", (oldest,))
        while self._size(db) > self._max_bytes:
            count = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
            if count == 0:
                break
            cut = db.execute("SELECT id FROM requests ORDER BY id LIMIT 1 OFFSET ?",
                             (max(count // 10, 1) - 1,)).fetchone()[0]
            self._carry_and_delete(db, "id <= ?", (cut,))
            db.execute("VACUUM")

    @staticmethod
    def _size(db: sqlite3.Connection) -> int:
        pages, size = (db.execute(f"PRAGMA {p}").fetchone()[0]
                       for p in ("page_count", "page_size"))
        return int(pages) * int(size)

    @staticmethod
    def _carry_and_delete(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for day, *tally in db.execute(
                    f"SELECT day, {_SUMS} FROM requests WHERE {where} GROUP BY day",
                    args).fetchall():
                _carry(db, day, Tally(*tally))
            db.execute(f"DELETE FROM requests WHERE {where}", args)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _carry_old_counters(self, db: sqlite3.Connection) -> None:
        """The counters of ``activity.json`` (the ledger's predecessor), carried once."""
        old = self.path.with_name("activity.json")
        if not old.is_file():
            return
        activity = load_activity_file(old)
        before_today = Tally(*(a - b for a, b in zip(astuple(activity.lifetime),
                                                      astuple(activity.today), strict=True)))
        _carry(db, activity.day, activity.today)
        _carry(db, "0000-00-00", before_today)  # the days before, in one sum
        with contextlib.suppress(OSError):
            old.replace(old.with_name("activity.json.migrated"))
        log.info("the activity counters were carried over into the ledger")

    def _write(self) -> None:
        db = _connect(self.path)
        try:
            while True:
                batch = [self._queue.get()]
                while batch[-1] is not None and len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                rows = [e for e in batch if isinstance(e, Entry)]
                hours = [p for p in batch if isinstance(p, Period)]
                if rows or hours:
                    self._insert(db, rows, hours)
                for day in (d for d in batch if isinstance(d, date)):
                    try:
                        self.prune(db, day)
                    except sqlite3.Error as exc:
                        log.warning("the ledger could not be pruned (%s)", exc)
                if batch[-1] is None:
                    return
        finally:
            db.close()

    def _insert(self, db: sqlite3.Connection, rows: list[Entry], hours: list[Period]) -> None:
        try:
            with db:  # one transaction
                db.execute("BEGIN")
                db.executemany(
                    f"INSERT INTO requests ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})", [astuple(r) for r in rows])
                # the stretch under way is written again each minute: one row, its seconds
                db.executemany(
                    "INSERT INTO periods VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                    "seconds = excluded.seconds", [astuple(p) for p in hours])
            self.written += len(rows)
            if self._failing:
                self._failing = False
                log.info("the ledger is written again")
        except sqlite3.Error as exc:
            if not self._failing:
                self._failing = True
                log.warning("the ledger could not be written (%s): %d row(s) lost; sharing "
                            "goes on", exc, len(rows) + len(hours))


def _carry(db: sqlite3.Connection, day: str, tally: Tally) -> None:
    db.execute("INSERT INTO carried VALUES (?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
               "requests = requests + excluded.requests, failed = failed + excluded.failed, "
               "tokens = tokens + excluded.tokens, limited = limited + excluded.limited",
               (day, tally.requests, tally.failed, tally.tokens, tally.limited))


def activity_in(db: sqlite3.Connection, today: date) -> Activity:
    """The menu's tallies from the rows and the carried totals: today's and lifetime."""
    day = today.isoformat()

    def tally(where: str, args: tuple[object, ...]) -> Tally:
        rows = Tally(*db.execute(f"SELECT {_SUMS} FROM requests WHERE {where}",
                                 args).fetchone())
        carried = db.execute(
            "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(failed), 0), "
            f"COALESCE(SUM(tokens), 0), COALESCE(SUM(limited), 0) FROM carried WHERE {where}",
            args).fetchone()
        return Tally(*(a + b for a, b in zip(astuple(rows), carried, strict=True)))

    return Activity(day, tally("day = ?", (day,)), tally("1 = ?", (1,)))


def day_use(db: sqlite3.Connection, day: str) -> DayUse:
    """What the hub's requests of ``day`` used: their energy, and the time at least one of
    them ran (each row ends at ``at`` and lasted ``duration_ms``)."""
    wh, measured = db.execute("SELECT COALESCE(SUM(energy_wh), 0), COUNT(energy_wh) FROM "
                              "requests WHERE day = ?", (day,)).fetchone()
    spans = []
    for at, duration in db.execute("SELECT at, duration_ms FROM requests WHERE day = ? AND "
                                   "duration_ms > 0", (day,)):
        with contextlib.suppress(ValueError):
            end = datetime.fromisoformat(at).timestamp()
            spans.append((end - duration / 1000, end))
    return DayUse(day, float(wh), measured > 0, busy_seconds(spans))


def read_only(path: Path) -> sqlite3.Connection:
    """The ledger for reading (another process may be writing it)."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10.0)
    return connection


def entries(db: sqlite3.Connection, since_day: str = "") -> Iterator[Entry]:
    """Every row from ``since_day`` on, oldest first."""
    cursor = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE day >= ? "
                        "ORDER BY id", (since_day,))
    for row in cursor:
        yield Entry(*row)


def summary(db: sqlite3.Connection, days: int, today: date) -> dict[str, object]:
    """The last ``days`` days (today included) by day and by model, and the tallies."""
    since = (today - timedelta(days=days - 1)).isoformat()
    by_day = db.execute(
        f"SELECT day, {_SUMS}, COALESCE(SUM(energy_wh), 0) FROM requests WHERE day >= ? "
        "GROUP BY day ORDER BY day", (since,)).fetchall()
    by_model = db.execute(
        f"SELECT model, {_SUMS} FROM requests WHERE day >= ? AND model != '' GROUP BY model "
        "ORDER BY 4 DESC, 2 DESC", (since,)).fetchall()
    tallies = activity_in(db, today)
    return {**_hours(db, since).as_json(), 
        "since": since, "days": [
            {"day": d, "served": s, "failed": f, "tokens": t, "limited": lim,
             "energy_wh": round(e, 3)} for d, s, f, t, lim, e in by_day],
        "models": [{"model": m, "served": s, "failed": f, "tokens": t}
                   for m, s, f, t, _ in by_model],
        "today": asdict(tallies.today), "lifetime": asdict(tallies.lifetime)}


def _hours(db: sqlite3.Connection, since: str) -> HourTotals:
    """The hours of each standing by day since ``since``, the hours each rule held, and
    the hours of each standing since install (the pruned ones carried)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'periods'").fetchone() is None:
        return HourTotals()  # a ledger from before the hours, not yet opened by the worker
    by_day: dict[str, dict[str, float]] = {}
    for day, standing, seconds in db.execute(
            "SELECT day, standing, SUM(seconds) FROM periods WHERE day >= ? "
            "GROUP BY day, standing ORDER BY day", (since,)):
        by_day.setdefault(day, dict.fromkeys(STANDINGS, 0.0))[standing] = _h(seconds)
    rules = db.execute("SELECT rule, SUM(seconds) FROM periods WHERE day >= ? AND rule != '' "
                       "GROUP BY rule ORDER BY 2 DESC", (since,)).fetchall()
    lifetime = dict.fromkeys(STANDINGS, 0.0)
    for standing, seconds in db.execute(
            "SELECT standing, SUM(seconds) FROM (SELECT standing, seconds FROM periods "
            "UNION ALL SELECT standing, seconds FROM carried_hours) GROUP BY standing"):
        lifetime[standing] = _h(seconds)
    return HourTotals(by_day, tuple((rule, _h(seconds)) for rule, seconds in rules), lifetime)


def _h(seconds: float) -> float:
    return round(seconds / 3600, 3)


def write_csv(db: sqlite3.Connection, out: TextIO) -> int:
    """Every row, oldest first, under the header; how many rows."""
    out.write(csv_header())
    count = 0
    for entry in entries(db):
        out.write(csv_line(entry))
        count += 1
    return count


TOP_MODELS = 5  # the Activity window names the five models that made the most tokens


def charts(db: sqlite3.Connection, days: int, today: date) -> ActivityCharts:
    """What the Activity window draws: the last ``days`` days (every one, empty or not)
    and the totals since install."""
    span = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    since = span[0]
    at = {day: i for i, day in enumerate(span)}

    def per_day(query: str, *args: object) -> list[tuple[Any, ...]]:
        return db.execute(query, (since, *args)).fetchall()

    tokens: dict[str, list[float | None]] = {}
    ranked = [m for m, in per_day("SELECT model FROM requests WHERE day >= ? AND model != '' "
                                  "GROUP BY model ORDER BY SUM(COALESCE(output_tokens, "
                                  "chunks)) DESC")]
    named = ranked[:TOP_MODELS]
    for day, model, count in per_day(
            "SELECT day, model, SUM(COALESCE(output_tokens, chunks)) FROM requests "
            "WHERE day >= ? AND outcome = 'served' GROUP BY day, model"):
        key = model if model in named else "other models"
        column = tokens.setdefault(key, [None] * days)
        column[at[day]] = (column[at[day]] or 0) + count
    served, failed = [0.0] * days, [0.0] * days
    ttft: list[float | None] = [None] * days
    speed: list[float | None] = [None] * days
    energy: list[float | None] = [None] * days
    for day, ok, other, first, made, generating, wh in per_day(
            "SELECT day, SUM(outcome = 'served'), SUM(outcome != 'served'), "
            "AVG(CASE WHEN outcome = 'served' THEN ttft_ms END), "
            "SUM(CASE WHEN outcome = 'served' AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms "
            "THEN output_tokens END), "
            "SUM(CASE WHEN outcome = 'served' AND output_tokens IS NOT NULL "
            "AND duration_ms > ttft_ms THEN duration_ms - ttft_ms END), SUM(energy_wh) "
            "FROM requests WHERE day >= ? GROUP BY day"):
        i = at[day]
        served[i], failed[i], ttft[i], energy[i] = ok, other, first, wh
        speed[i] = made / (generating / 1000) if made and generating else None
    hours = _hours(db, since)
    standing = {s: tuple(hours.by_day[d][s] if d in hours.by_day else None for d in span)
                for s in STANDINGS}
    lifetime = activity_in(db, today).lifetime
    order = [m for m in named if m in tokens] + (["other models"] if "other models" in tokens
                                                 else [])
    return ActivityCharts(
        days=tuple(span), tokens_by_model=tuple((m, tuple(tokens[m])) for m in order),
        served=tuple(served), not_served=tuple(failed), hours=standing,
        held_by=hours.held_by,
        ttft_ms=tuple(ttft), tokens_per_s=tuple(speed), energy_wh=tuple(energy),
        lifetime_requests=lifetime.requests, lifetime_tokens=lifetime.tokens,
        lifetime_hours=hours.lifetime)


def empty_charts(days: int, today: date) -> ActivityCharts:
    """The charts of a ledger with no rows (none is kept yet): every day empty."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.executescript(_SCHEMA)
        return charts(db, days, today)

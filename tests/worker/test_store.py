"""The state store's one staging rule: what is counted as requests end goes out with the
next snapshot, whatever else that snapshot changes, and never before."""

from __future__ import annotations

from datetime import date

from ghubai_tray.core.activity import Activity, Tally
from ghubai_tray.core.ledger import Entry
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Counters, State
from ghubai_tray.worker.runtime import SideJobs
from ghubai_tray.worker.store import StateStore

TODAY = date(2026, 12, 2)


def _store() -> tuple[StateStore, list[int]]:
    store = StateStore(Settings(), SideJobs(), lambda: TODAY)
    seen: list[int] = []
    store.subscribe(lambda snap: seen.append(snap.totals.served))
    return store, seen


def _row(outcome: str = "served", chunks: int = 7) -> Entry:
    return Entry(at=f"{TODAY}T10:00:00.000+00:00", day=TODAY.isoformat(), hub="hub",
                 model="llama3.2:1b", endpoint="/api/chat", server="ollama", outcome=outcome,
                 chunks=chunks)


def test_counts_wait_for_the_next_snapshot_then_go_out_with_it() -> None:
    store, seen = _store()
    kept: list[Entry] = []
    store.keep_ledger(kept.append)
    store.count("llama3.2:1b", served=1, chunks=7, size=70)
    store.record(_row())
    assert kept == [_row()], "the row goes to the ledger as the tallies take it"
    assert store.snapshot.totals == Counters(), "counting alone publishes nothing"
    assert store.current_activity.today == Tally(requests=1, tokens=7)
    store.connection(State.CONNECTED, "connected")  # not a request update: still carries them
    snap = store.snapshot
    assert snap.totals.served == 1 and snap.totals.chunks == 7 and snap.totals.bytes == 70
    assert dict(snap.per_model)["llama3.2:1b"].served == 1
    assert snap.activity.today == Tally(requests=1, tokens=7)
    store.requests(0, 0)
    assert store.snapshot.totals.served == 1, "published once, not added twice"
    assert seen == [1, 1]


def test_a_ledger_loaded_after_counts_keeps_its_own_figures_and_the_counters() -> None:
    store, _ = _store()
    store.count(None, failed=1)
    store.activity_loaded(Activity(TODAY.isoformat(), Tally(requests=5), Tally(requests=50)))
    snap = store.snapshot
    assert snap.activity.today == Tally(requests=5) and snap.totals.failed == 1
    store.count(None, served=1)
    store.record(_row(chunks=0))
    store.day_changed()
    assert store.snapshot.activity.today == Tally(requests=6)
    assert store.snapshot.activity.lifetime == Tally(requests=51)

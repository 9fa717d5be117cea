"""The hours' pure parts: a snapshot's standing, and a stretch cut at local midnights."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.hours import HELD, NOT_SHARING, PAUSED, SHARED, periods, standing_of
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import ModelView, OllamaStatus, Snapshot, State

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                         timezone(timedelta(hours=5, minutes=30))])


@given(start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
       length=st.floats(min_value=0, max_value=10 * 86400, allow_nan=False), zone=ZONES)
def test_a_stretch_is_cut_into_whole_local_days_that_add_up(start: datetime, length: float,
                                                            zone: timezone) -> None:
    begin = start.replace(tzinfo=zone)
    end = begin + timedelta(seconds=length)
    cut = periods(begin, end, HELD, "game mode")
    assert abs(sum(p.seconds for p in cut) - (end - begin).total_seconds()) < 0.001 * (
        len(cut) + 1)
    assert [p.day for p in cut] == sorted({p.day for p in cut})  # one row per day, in order
    for period in cut:
        at = datetime.fromisoformat(period.start)
        assert at.date().isoformat() == period.day and period.seconds <= 86400
        assert (period.standing, period.rule) == (HELD, "game mode")
    assert all(datetime.fromisoformat(p.start).time() == datetime.min.time() for p in cut[1:])


def test_the_standing_of_a_snapshot() -> None:
    models = (ModelView("llama3.2:1b", remote=False, shared=True),)
    live = Snapshot(connection=State.REGISTERED, models=models,
                    ollama=OllamaStatus.REACHABLE)
    assert standing_of(live) == (SHARED, "")
    assert standing_of(replace(live, connection=State.CONNECTED)) == (SHARED, "")
    assert standing_of(replace(live, ollama=OllamaStatus.UNREACHABLE)) == (NOT_SHARING, "")
    assert standing_of(replace(live, connection=State.RECONNECTING)) == (NOT_SHARING, "")
    unshared = (ModelView("llama3.2:1b", remote=False, shared=False),)
    assert standing_of(replace(live, models=unshared)) == (NOT_SHARING, "")
    assert standing_of(replace(live, held_by="game mode")) == (HELD, "game mode")
    paused = replace(live, settings=Settings(paused=True), held_by="game mode")
    assert standing_of(paused) == (PAUSED, "")  # the owner's pause says more than a rule

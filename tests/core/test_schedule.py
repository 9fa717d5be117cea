"""The schedule: parsed as people write it, and asked about any moment (hypothesis)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.schedule import EXPECTED, Window, allows, next_change, parse, shown

WEEK = frozenset(range(7))
windows = st.builds(Window, st.times().map(lambda t: time(t.hour, t.minute)),
                    st.times().map(lambda t: time(t.hour, t.minute)),
                    st.frozensets(st.integers(0, 6), min_size=1))
schedules = st.lists(windows, max_size=4).map(tuple)
moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31))


def test_the_forms_people_write() -> None:
    assert parse("18:00-23:30") == (Window(time(18), time(23, 30), WEEK),)
    assert parse("Mon-Fri 18:00-23:30, Sat,Sun 9:00-02:00") == (
        Window(time(18), time(23, 30), frozenset(range(5))),
        Window(time(9), time(2), frozenset({5, 6})))
    assert parse("Fri-Mon 22:00-24:00") == (Window(time(22), time(0), frozenset({4, 5, 6, 0})),)
    assert parse("") == () and parse(["08:00-09:00"]) == (Window(time(8), time(9), WEEK),)


@pytest.mark.parametrize("bad", ["18-23", "25:00-26:00", "Someday 10:00-11:00", "10:00",
                                 "10:00-11:00 Mon", 42])
def test_an_unreadable_schedule_says_the_form(bad: object) -> None:
    with pytest.raises(ValueError, match="expected windows like 18:00-23:30"):
        parse(bad)
    assert "Mon-Fri" in EXPECTED


def test_a_window_that_crosses_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = parse("Fri 22:00-02:00")
    assert allows(friday_night, datetime(2026, 12, 5, 1, 0))  # Saturday 01:00
    assert not allows(friday_night, datetime(2026, 12, 6, 1, 0))  # Sunday 01:00
    assert not allows(friday_night, datetime(2026, 12, 4, 21, 59))
    assert next_change(friday_night, datetime(2026, 12, 4, 12, 0)) == datetime(2026, 12, 4, 22)


def test_an_empty_schedule_is_always() -> None:
    assert allows((), datetime(2026, 12, 2)) and next_change((), datetime(2026, 12, 2)) is None


@given(schedules)
def test_what_is_shown_reads_back_the_same(schedule: tuple[Window, ...]) -> None:
    assert parse(shown(schedule) if schedule else "") == schedule


@given(schedules, moments)
def test_the_next_change_is_a_change_and_nothing_changes_before_it(
        schedule: tuple[Window, ...], now: datetime) -> None:
    change = next_change(schedule, now)
    if change is None:
        assert all(allows(schedule, now + timedelta(hours=h)) == allows(schedule, now)
                   for h in range(0, 24 * 7, 5))
        return
    assert change > now
    assert allows(schedule, change) != allows(schedule, now)
    assert allows(schedule, change - timedelta(minutes=1)) == allows(schedule, now) or (
        change - timedelta(minutes=1) <= now)

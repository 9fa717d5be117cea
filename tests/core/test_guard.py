"""The hardware guard's hysteresis, for any readings at any times (hypothesis), and the
budgets in the rules' one decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.guard import (
    COOL_FOR,
    HOT_FOR,
    MIN_HOLD,
    DayUse,
    Watch,
    busy_seconds,
    midnight_after,
    resume_temperature,
    watch,
)
from ghubai_tray.core.rules import Act, Memory, Rule, Signals, decide
from ghubai_tray.core.settings import Settings

START = datetime(2026, 12, 5, 20, 0, tzinfo=timezone(timedelta(hours=1)))
LIMIT, RESUME = 85.0, 75.0
READING = st.one_of(st.none(), st.floats(min_value=60, max_value=95, allow_nan=False),
                    st.sampled_from([74.0, 75.0, 76.0, 84.0, 85.0, 86.0]))
STEPS = st.lists(st.tuples(st.floats(min_value=0.1, max_value=40), READING), max_size=120)


def _run(steps: Sequence[tuple[float, float | None]]) -> list[tuple[datetime, float | None, Watch]]:
    """Each look's time, reading and the guard's state after it."""
    state, now, seen = Watch(), START, []
    for gap, reading in steps:
        now += timedelta(seconds=gap)
        state = watch(state, reading, LIMIT, RESUME, now)
        seen.append((now, reading, state))
    return seen


@given(STEPS)
def test_at_most_one_hold_and_resume_every_two_minutes(
        steps: list[tuple[float, float | None]]) -> None:
    seen = _run(steps)
    starts = [now for (now, _, state), before in zip(seen, [None, *seen], strict=False)
              if state.holding and (before is None or not before[2].holding)]
    assert all(b - a >= timedelta(minutes=2) for a, b in zip(starts, starts[1:], strict=False))


@given(STEPS)
def test_never_a_hold_without_readings_over_the_limit_for_ten_seconds(
        steps: list[tuple[float, float | None]]) -> None:
    seen = _run(steps)
    for i, (now, _, state) in enumerate(seen):
        if not state.holding or (i and seen[i - 1][2].holding):
            continue
        # the looks that led to the hold: all over the limit, the first 10 s before it
        run = []
        for at, reading, _ in reversed(seen[:i + 1]):
            if reading is None or reading < LIMIT:
                break
            run.append(at)
        assert run and now - run[-1] >= HOT_FOR


@given(STEPS, st.floats(min_value=0.5, max_value=20))
def test_always_a_resume_once_it_has_been_cool_long_enough(
        steps: list[tuple[float, float | None]], gap: float) -> None:
    seen = _run(steps)
    state, now = (seen[-1][2], seen[-1][0]) if seen else (Watch(), START)
    cool_since = now
    for _ in range(int((MIN_HOLD + COOL_FOR).total_seconds() / gap) + 2):
        now += timedelta(seconds=gap)
        state = watch(state, 70.0, LIMIT, RESUME, now)
    assert not state.holding and now - cool_since <= MIN_HOLD + COOL_FOR + timedelta(
        seconds=2 * gap)


def test_hovering_around_the_limit_holds_once() -> None:
    steps = [(2.0, 84.0 if i % 2 else 86.0) for i in range(600)]  # 20 minutes of 84<->86
    seen = _run(steps)
    changes = sum(a[2].holding != b[2].holding for a, b in zip(seen, seen[1:], strict=False))
    assert changes == 0  # 84 and 86 alternate: never ten seconds over the limit
    steps = [(2.0, 86.0 if (i // 10) % 2 else 84.0) for i in range(600)]  # 20 s each
    seen = _run(steps)
    changes = sum(a[2].holding != b[2].holding for a, b in zip(seen, seen[1:], strict=False))
    assert changes == 1  # held once: never cool enough (75 °C) to resume


def test_the_resume_temperature_defaults_to_ten_degrees_under() -> None:
    assert resume_temperature(85, 0) == 75 and resume_temperature(85, 80) == 80
    assert resume_temperature(85, 90) == 75  # above the maximum: not a resume level


def test_a_budget_holds_until_midnight_and_lets_go_on_the_new_day() -> None:
    settings = Settings(daily_energy_kwh=0.5, daily_gpu_hours=2.0)
    late = START.replace(hour=23, minute=10)
    under = decide(settings, Signals(late, energy_today_kwh=0.49, gpu_hours_today=1.0))
    assert under.act is Act.SHARE
    used = decide(settings, Signals(late, energy_today_kwh=0.5, gpu_hours_today=1.0))
    assert (used.act, used.rule, used.until) == (Act.FINISH_THEN_PAUSE, Rule.ENERGY_BUDGET,
                                                 midnight_after(late))
    assert used.detail == "today's energy budget is used (0.50 kWh)"
    hours = decide(settings, Signals(late, energy_today_kwh=None, gpu_hours_today=2.5))
    assert hours.rule is Rule.GPU_TIME_BUDGET and hours.detail == (
        "today's GPU-time budget is used (2 h)")
    unmeasured = decide(settings, Signals(late, energy_today_kwh=None, gpu_hours_today=0))
    assert unmeasured.act is Act.SHARE  # no reading: the energy budget never holds
    next_day = decide(settings, Signals(midnight_after(late), energy_today_kwh=0.0,
                                        gpu_hours_today=0.0))
    assert next_day.act is Act.SHARE


def test_the_heat_guard_in_the_decision_and_share_anyway() -> None:
    settings = Settings(max_gpu_temp=85)
    memory, now = Memory(), START
    for _ in range(6):  # 86 °C, looked at every 2 s: held at the 10 s look
        decision = decide(settings, Signals(now, gpu_temp_c=86.0), memory)
        memory, now = decision.memory, now + timedelta(seconds=2)
    assert (decision.act, decision.rule) == (Act.FINISH_THEN_PAUSE, Rule.GPU_HEAT)
    assert decision.detail == "GPU at 86 °C (resumes at 75 °C or below)"
    anyway = decide(settings, Signals(now, gpu_temp_c=86.0), memory,
                    overridden_until=now + timedelta(hours=1))
    assert anyway.act is Act.SHARE and anyway.memory.guards[Rule.GPU_HEAT].holding
    off = decide(Settings(), Signals(now, gpu_temp_c=99.0), memory)
    assert off.act is Act.SHARE  # the guard switched off lets go at once


def test_a_days_use_and_the_gpus_busy_time() -> None:
    use = DayUse().add("2026-12-05", 12.5, 30.0).add("2026-12-05", None, 10.0)
    assert (use.kwh, use.gpu_s) == (0.0125, 40.0)
    assert use.on("2026-12-06") == DayUse("2026-12-06") and use.on("2026-12-05") is use
    assert DayUse().add("2026-12-05", None, 5.0).kwh is None  # nothing measured
    assert busy_seconds([(0, 10), (5, 15), (20, 25), (21, 22)]) == 20.0
    assert busy_seconds([]) == 0.0

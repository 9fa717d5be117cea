"""The hardware guard: a limit on a GPU reading (temperature, power), held with hysteresis.

Pure. A limit that only stopped, or that let go the moment the reading dipped, would
flap: a GPU hovering at its limit would be held and released every few seconds, the
hub would see the models come and go, and the fans would never settle. So:

- a hold begins only once every reading for :data:`HOT_FOR` has been at or above the
  limit (a reading over it is needed: nothing else starts a hold);
- it ends only once every reading for :data:`COOL_FOR` has been at or below the resume
  level, and not before :data:`MIN_HOLD` after it began; so a GPU hovering around its
  limit is held and released at most once every two minutes;
- a reading that cannot be had while held counts as clear ("cannot tell" is never a
  reason to pause), so a driver that goes away never holds sharing for ever.

:func:`watch` is one step: the state before, a reading, the time; the state after.
Budgets (today's energy, today's GPU time) need no hysteresis: they hold until midnight,
when the day's totals start again from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

HOT_FOR = timedelta(seconds=10)
COOL_FOR = timedelta(seconds=60)
MIN_HOLD = timedelta(seconds=120)
RESUME_BELOW = 10.0  # °C: the default resume temperature is this much under the maximum
POWER_RESUME = 0.9  # the power guard resumes at this share of its maximum


@dataclass(frozen=True)
class Watch:
    """One guard's memory: since when the reading has been over the limit (not held yet),
    since when sharing is held, and since when the reading has been clear (held)."""

    over_since: datetime | None = None
    held_since: datetime | None = None
    clear_since: datetime | None = None

    @property
    def holding(self) -> bool:
        return self.held_since is not None


def watch(state: Watch, reading: float | None, limit: float, resume: float,
          now: datetime) -> Watch:
    """The guard after seeing ``reading`` at ``now`` (readings come in time order)."""
    if state.held_since is None:
        if reading is None or reading < limit:
            return Watch()
        over = state.over_since or now
        if now - over >= HOT_FOR:
            return Watch(held_since=now)
        return Watch(over_since=over)
    if reading is not None and reading > resume:
        return Watch(held_since=state.held_since)
    clear = state.clear_since or now
    if now - clear >= COOL_FOR and now - state.held_since >= MIN_HOLD:
        return Watch()
    return Watch(held_since=state.held_since, clear_since=clear)


def next_look(state: Watch, now: datetime) -> datetime | None:
    """When the guard may change with the same reading: the end of the hot or cool wait."""
    if state.over_since is not None:
        return state.over_since + HOT_FOR
    if state.held_since is not None and state.clear_since is not None:
        return max(state.clear_since + COOL_FOR, state.held_since + MIN_HOLD)
    return None


def resume_temperature(maximum: float, resume: float) -> float:
    """The owner's resume temperature if it is below the maximum, else 10 °C below it."""
    return resume if 0 < resume < maximum else maximum - RESUME_BELOW


def midnight_after(now: datetime) -> datetime:
    """The next local midnight: when a day's budget starts again."""
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=now.tzinfo)


@dataclass(frozen=True)
class DayUse:
    """What the hub's requests used of this GPU on one local day: the budgets' figures."""

    day: str = ""  # YYYY-MM-DD
    wh: float = 0.0
    measured: bool = False  # a request that day had its energy measured
    gpu_s: float = 0.0  # the GPU's time serving the hub (shared like the energy)

    def add(self, day: str, wh: float | None, gpu_s: float) -> DayUse:
        """One more request of ``day`` (a new day starts from zero)."""
        base = self if day == self.day else DayUse(day)
        return DayUse(day, base.wh + (wh or 0.0), base.measured or wh is not None,
                      base.gpu_s + gpu_s)

    def on(self, day: str) -> DayUse:
        """The use of ``day``: nothing yet when this is another day's."""
        return self if day == self.day else DayUse(day)

    @property
    def kwh(self) -> float | None:
        """The energy in kWh; None when nothing was measured (no reading on this GPU)."""
        return self.wh / 1000 if self.measured else None

    @property
    def gpu_hours(self) -> float:
        return self.gpu_s / 3600


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """The time at least one of ``spans`` (start, end) covers: the GPU's time serving."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total

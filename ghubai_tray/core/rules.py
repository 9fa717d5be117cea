"""The owner's rules in one decision: from (time, signals, settings) to share or pause, and why.

Pure. Every rule reads one signal the worker gathers (the clock, Ollama's
``/api/ps``, the window in front, the idle time, the power supply, the GPU's
processes) and :func:`decide` turns them into one :class:`Decision`: share,
*finish then pause* (new hub requests are refused, those running finish) or
*pause now* (those running are ended too: a game wants the GPU at once).

Hysteresis, so that a flicker does not flap the registration: a rule holds as
soon as its signal says so and lets go only once the signal has been clear for
its release time (:data:`SETTLE` for the desktop signals, the owner's
``owner_first_hold`` for their own use of Ollama; the schedule is exact). What
that needs from one decision to the next is :class:`Memory`, handed back in
every decision. A signal nobody can read here (``None``: no X display, no
battery, no NVIDIA driver) never holds sharing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from ghubai_tray.core import schedule
from ghubai_tray.core.guard import (
    POWER_RESUME,
    Watch,
    midnight_after,
    next_look,
    resume_temperature,
    watch,
)
from ghubai_tray.core.settings import Settings

SETTLE = timedelta(seconds=30)  # a desktop signal must stay clear this long to let go


class DesktopReadings(Protocol):
    """The desktop's signals (``adapters.desktop_signals.DesktopSignals``): blocking
    calls, made off the worker's loop; ``None``: cannot tell on this computer."""

    def fullscreen(self) -> bool | None: ...

    def idle_seconds(self) -> float | None: ...

    def on_battery(self) -> bool | None: ...

    def gpu_busy(self) -> bool | None: ...


class Rule(Enum):
    """The rules, in the order a reason is chosen when several hold at once."""

    FULLSCREEN = "full-screen app"
    GPU_BUSY = "GPU in use"
    GPU_HEAT = "GPU temperature"
    GPU_POWER = "GPU power"
    OWNER_FIRST = "your use of Ollama"
    AWAY = "you are here"
    BATTERY = "battery"
    ENERGY_BUDGET = "energy budget"
    GPU_TIME_BUDGET = "GPU-time budget"
    SCHEDULE = "schedule"


class Act(Enum):
    SHARE = "share"
    FINISH_THEN_PAUSE = "finish then pause"
    PAUSE_NOW = "pause now"


PAUSES_NOW = frozenset({Rule.FULLSCREEN, Rule.GPU_BUSY})

# What the hub's client reads when a rule refuses its request (never "you").
HUB_WORDS = {
    Rule.SCHEDULE: "its owner's schedule",
    Rule.OWNER_FIRST: "its owner is using {server}",
    Rule.FULLSCREEN: "a full-screen app is running on it",
    Rule.GPU_BUSY: "another program is using its GPU",
    Rule.AWAY: "its owner is using it",
    Rule.BATTERY: "it runs on battery",
    Rule.GPU_HEAT: "its GPU is too hot",
    Rule.GPU_POWER: "its GPU draws more power than its owner allows",
    Rule.ENERGY_BUDGET: "its owner's energy budget for today is used",
    Rule.GPU_TIME_BUDGET: "its owner's GPU-time budget for today is used",
}
GUARDS = (Rule.GPU_HEAT, Rule.GPU_POWER)  # the readings held with hysteresis (core/guard.py)
BUDGETS = (Rule.ENERGY_BUDGET, Rule.GPU_TIME_BUDGET)


def hub_words(held_by: str, server: str = "Ollama") -> str:
    """The refusal's words for a rule named ``held_by`` (a :class:`Rule` value);
    ``server`` names the model server its owner uses."""
    try:
        return HUB_WORDS[Rule(held_by)].format(server=server)
    except ValueError:
        return f"its owner's {held_by}"


@dataclass(frozen=True)
class Signals:
    """What the worker saw at ``now``; ``None``: cannot be known on this computer."""

    now: datetime
    local_use: bool = False  # Ollama served someone on this computer since the last look
    fullscreen: bool | None = None
    gpu_busy: bool | None = None
    idle_seconds: float | None = None
    on_battery: bool | None = None
    gpu_temp_c: float | None = None  # the hottest GPU's temperature
    gpu_power_w: float | None = None  # every GPU's draw, summed
    energy_today_kwh: float | None = None  # what the hub's requests used today (None: unknown)
    gpu_hours_today: float | None = None  # the GPU's time serving the hub today


@dataclass(frozen=True)
class Memory:
    """When each desktop rule's signal last said "hold", and each guard's state (what
    the hysteresis needs)."""

    last_held: Mapping[Rule, datetime] = field(default_factory=dict)
    guards: Mapping[Rule, Watch] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    act: Act
    rule: Rule | None = None  # the rule whose reason is shown
    until: datetime | None = None  # when it lets go by the clock alone, if known
    memory: Memory = Memory()
    next_look: datetime | None = None  # the decision may change then without a new signal
    detail: str | None = None  # the shown rule's reading, in words ("GPU at 86 °C (...)")


def read_desktop(readings: DesktopReadings, settings: Settings, now: datetime,
                 local_use: bool = False) -> Signals:
    """The signals at ``now``, reading from the desktop only what a rule that is on
    needs (blocking: call it off the loop). The worker and ``doctor`` both read so."""
    on = enabled(settings)
    return Signals(now, local_use=local_use,
                   fullscreen=readings.fullscreen() if Rule.FULLSCREEN in on else None,
                   gpu_busy=readings.gpu_busy() if Rule.GPU_BUSY in on else None,
                   idle_seconds=readings.idle_seconds() if Rule.AWAY in on else None,
                   on_battery=readings.on_battery() if Rule.BATTERY in on else None)


def raw_holds(settings: Settings, signals: Signals) -> set[Rule]:
    """The rules whose signal, this moment, says the owner needs the computer."""
    holds: set[Rule] = set()
    if settings.owner_first and signals.local_use:
        holds.add(Rule.OWNER_FIRST)
    if settings.pause_when_fullscreen and signals.fullscreen:
        holds.add(Rule.FULLSCREEN)
    if settings.pause_when_gpu_busy and signals.gpu_busy:
        holds.add(Rule.GPU_BUSY)
    if (settings.share_when_idle_only and signals.idle_seconds is not None
            and signals.idle_seconds < settings.idle_minutes * 60):
        holds.add(Rule.AWAY)
    if settings.pause_on_battery and signals.on_battery:
        holds.add(Rule.BATTERY)
    return holds


def release_after(rule: Rule, settings: Settings) -> timedelta:
    if rule is Rule.OWNER_FIRST:
        return timedelta(seconds=settings.owner_first_hold)
    if rule is Rule.AWAY:
        return timedelta(0)  # the idle time is itself the memory: it only grows
    return SETTLE


def enabled(settings: Settings) -> frozenset[Rule]:
    """The rules the owner has switched on (the schedule: when it has windows)."""
    on = {Rule.OWNER_FIRST: settings.owner_first,
          Rule.FULLSCREEN: settings.pause_when_fullscreen,
          Rule.GPU_BUSY: settings.pause_when_gpu_busy,
          Rule.AWAY: settings.share_when_idle_only,
          Rule.BATTERY: settings.pause_on_battery,
          Rule.GPU_HEAT: settings.max_gpu_temp > 0,
          Rule.GPU_POWER: settings.max_gpu_power > 0,
          Rule.ENERGY_BUDGET: settings.daily_energy_kwh > 0,
          Rule.GPU_TIME_BUDGET: settings.daily_gpu_hours > 0,
          Rule.SCHEDULE: bool(settings.schedule)}
    return frozenset(rule for rule, yes in on.items() if yes)


def decide(settings: Settings, signals: Signals, memory: Memory = Memory(),
           overridden_until: datetime | None = None) -> Decision:
    """Share or pause at ``signals.now``, which rule says so, and until when.

    "Share anyway" (``overridden_until`` in the future) sets every rule aside, but
    the memory still follows the signals, so the rules hold again at once when it
    ends if the owner is still at it. A manual pause is not a rule: the worker
    checks it first and always wins."""
    now = signals.now
    on = enabled(settings)
    last = {rule: when for rule, when in memory.last_held.items() if rule in on}
    for rule in raw_holds(settings, signals):
        last[rule] = now
    holding: dict[Rule, datetime | None] = {}
    looks: list[datetime] = []
    for rule, when in last.items():
        ends = when + release_after(rule, settings)
        if ends > now or when == now:
            holding[rule] = ends if rule is Rule.OWNER_FIRST else None
            looks.append(max(ends, now + timedelta(seconds=1)))
    last = {rule: when for rule, when in last.items() if rule in holding}
    guards = _guards(settings, signals, memory, on, holding, looks)
    change = schedule.next_change(settings.schedule, now)
    if change is not None:
        looks.append(change)
    if settings.schedule and not schedule.allows(settings.schedule, now):
        holding[Rule.SCHEDULE] = change
    kept = Memory(last, guards)
    if overridden_until is not None and overridden_until > now:
        return Decision(Act.SHARE, memory=kept, next_look=min([overridden_until, *looks]))
    next_look = min(looks) if looks else None
    if not holding:
        return Decision(Act.SHARE, memory=kept, next_look=next_look)
    rule = next(r for r in Rule if r in holding)
    act = Act.PAUSE_NOW if PAUSES_NOW & holding.keys() else Act.FINISH_THEN_PAUSE
    return Decision(act, rule, holding[rule], kept, next_look,
                    detail_of(rule, settings, signals))


def limits_of(settings: Settings) -> dict[Rule, tuple[float, float]]:
    """Each guard's (limit, resume level)."""
    return {Rule.GPU_HEAT: (settings.max_gpu_temp, resume_temperature(
                settings.max_gpu_temp, settings.resume_gpu_temp)),
            Rule.GPU_POWER: (settings.max_gpu_power, settings.max_gpu_power * POWER_RESUME)}


def _guards(settings: Settings, signals: Signals, memory: Memory, on: frozenset[Rule],
            holding: dict[Rule, datetime | None], looks: list[datetime]) -> dict[Rule, Watch]:
    """The guards and budgets that hold now (added to ``holding``, their next looks to
    ``looks``); the guards' new states."""
    now = signals.now
    readings = {Rule.GPU_HEAT: signals.gpu_temp_c, Rule.GPU_POWER: signals.gpu_power_w}
    guards = {}
    for rule, (limit, resume) in limits_of(settings).items():
        if rule not in on:
            continue
        guards[rule] = state = watch(memory.guards.get(rule, Watch()), readings[rule], limit,
                                     resume, now)
        if state.holding:
            holding[rule] = None
        if (when := next_look(state, now)) is not None:
            looks.append(max(when, now + timedelta(seconds=1)))
    used = {Rule.ENERGY_BUDGET: (signals.energy_today_kwh, settings.daily_energy_kwh),
            Rule.GPU_TIME_BUDGET: (signals.gpu_hours_today, settings.daily_gpu_hours)}
    for rule, (today, budget) in used.items():
        if rule in on and today is not None and today >= budget:
            holding[rule] = midnight_after(now)
            looks.append(midnight_after(now))
    return guards


def detail_of(rule: Rule, settings: Settings, signals: Signals) -> str | None:
    """The reading behind a guard's or a budget's hold, in the owner's words."""
    limit, resume = limits_of(settings).get(rule, (0.0, 0.0))
    if rule is Rule.GPU_HEAT and signals.gpu_temp_c is not None:
        return (f"GPU at {signals.gpu_temp_c:.0f} °C (resumes at {resume:.0f} °C or below)")
    if rule is Rule.GPU_POWER and signals.gpu_power_w is not None:
        return (f"GPU drawing {signals.gpu_power_w:.0f} W (resumes at {resume:.0f} W or "
                "below)")
    if rule is Rule.ENERGY_BUDGET:
        return f"today's energy budget is used ({settings.daily_energy_kwh:.2f} kWh)"
    if rule is Rule.GPU_TIME_BUDGET:
        return f"today's GPU-time budget is used ({settings.daily_gpu_hours:g} h)"
    return None

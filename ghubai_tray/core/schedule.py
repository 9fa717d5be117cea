"""When the owner lets GhubAi share: local-time windows, e.g. ``Mon-Fri 18:00-23:30, 08:00-09:00``.

Pure. A schedule is a list of windows; each has a start and an end time of day
and, optionally, the weekdays it starts on (a window crossing midnight belongs
to the day it starts: ``Fri 22:00-02:00`` covers Saturday 01:00). An empty
schedule means always. :func:`parse` says what it expected, in words, for a
value it cannot read; :func:`next_change` tells when sharing starts or stops
next, which is what the menu shows ("Paused until 18:00 (schedule)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXPECTED = ("windows like 18:00-23:30, several separated by commas, each optionally after "
            "weekdays like Mon-Fri or Sat,Sun (e.g. 'Mon-Fri 18:00-23:30, Sat-Sun 09:00-23:00')")
_WINDOW = re.compile(r"^(?:(?P<days>[A-Za-z,\-]+)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*"
                     r"(?P<end>\d{1,2}:\d{2})$")


@dataclass(frozen=True)
class Window:
    start: time
    end: time  # equal to start: the whole day
    days: frozenset[int] = frozenset(range(7))  # the weekdays it starts on, Monday = 0

    def __str__(self) -> str:
        days = "" if len(self.days) == 7 else ",".join(DAYS[d].title()
                                                        for d in sorted(self.days)) + " "
        return f"{days}{self.start:%H:%M}-{self.end:%H:%M}"


Schedule = tuple[Window, ...]


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0, 0)
    return time(hours, minutes)  # ValueError beyond 23:59


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise ValueError(part)
        a = DAYS.index(first[:3])
        b = DAYS.index(last[:3]) if last else a
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def parse(raw: object) -> Schedule:
    """The windows in ``raw`` (text, or a TOML list of texts); ValueError saying the form."""
    if isinstance(raw, list | tuple):
        parts = [str(p) for p in raw]
    elif isinstance(raw, str):
        parts = _split(raw)
    else:
        raise ValueError(f"expected {EXPECTED}")
    windows = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        match = _WINDOW.match(part)
        try:
            if match is None:
                raise ValueError(part)
            days = _days(match["days"]) if match["days"] else frozenset(range(7))
            windows.append(Window(_clock(match["start"]), _clock(match["end"]), days))
        except ValueError:
            raise ValueError(f"expected {EXPECTED}, not {part!r}") from None
    return tuple(windows)


def _split(text: str) -> list[str]:
    """Windows are separated by commas, but so are weekdays (``Sat,Sun 09:00-12:00``): a
    comma ends a window only after a time."""
    return re.split(r"(?<=\d),", text)


def shown(schedule: Schedule) -> str:
    return ", ".join(str(w) for w in schedule) or "always"


def _spans(window: Window, day: datetime) -> tuple[datetime, datetime] | None:
    """The window as it starts on ``day``'s date, or None when it does not start that day."""
    if day.weekday() not in window.days:
        return None
    start = day.replace(hour=window.start.hour, minute=window.start.minute, second=0,
                        microsecond=0)
    length = (datetime.combine(day.date(), window.end) - datetime.combine(day.date(),
                                                                           window.start))
    if length <= timedelta(0):
        length += timedelta(days=1)  # crosses midnight (or is the whole day)
    return start, start + length


def _nearby(schedule: Schedule, now: datetime) -> list[tuple[datetime, datetime]]:
    spans = []
    for offset in range(-1, 9):
        day = now + timedelta(days=offset)
        spans += [s for w in schedule if (s := _spans(w, day)) is not None]
    return sorted(spans)


def allows(schedule: Schedule, now: datetime) -> bool:
    """Whether sharing is allowed at ``now`` (always, for an empty schedule)."""
    return not schedule or any(start <= now < end for start, end in _nearby(schedule, now))


def next_change(schedule: Schedule, now: datetime) -> datetime | None:
    """When :func:`allows` changes next (within the coming week); None if it never does."""
    if not schedule:
        return None
    inside = allows(schedule, now)
    edges = sorted({edge for span in _nearby(schedule, now) for edge in span if edge > now})
    for edge in edges:
        if allows(schedule, edge) != inside:
            return edge
    return None

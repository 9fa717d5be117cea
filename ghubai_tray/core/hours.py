"""Hours shared, paused and held: the ledger's record of how the machine stood.

The worker's snapshots say at every moment whether the models are offered to the hub
("shared"), the owner paused ("paused"), one of the owner's rules holds sharing
("held", with the rule's name), or nothing is offered for another reason: the hub or
the model server unreachable, nothing chosen, starting ("not sharing"). The ledger
keeps one row per stretch of one standing on one local day, so that a day's hours
are a sum of its rows; a stretch across midnight is two rows.

Pure: the standing of a snapshot, and a stretch cut into its days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from ghubai_tray.core.state import Snapshot, State

SHARED, PAUSED, HELD, NOT_SHARING = "shared", "paused", "held", "not sharing"
STANDINGS = (SHARED, PAUSED, HELD, NOT_SHARING)


@dataclass(frozen=True)
class Period:
    """One stretch of one standing within one local day."""

    start: str  # ISO 8601 with the offset, to the millisecond
    day: str  # the local date (YYYY-MM-DD)
    seconds: float
    standing: str  # one of STANDINGS
    rule: str = ""  # the rule's name when held ("game mode", "GPU in use", ...)


def standing_of(snap: Snapshot) -> tuple[str, str]:
    """How the machine stands in ``snap``: (standing, rule)."""
    if snap.paused:
        return PAUSED, ""
    if snap.held_by is not None:
        return HELD, snap.held_by
    if snap.connection in (State.CONNECTED, State.REGISTERED) and snap.offered_models:
        return SHARED, ""  # connected and offering models (a hub may never acknowledge)
    return NOT_SHARING, ""


def periods(start: datetime, end: datetime, standing: str, rule: str = "") -> list[Period]:
    """The stretch from ``start`` to ``end`` (aware, local) cut at each local midnight."""
    cut: list[Period] = []
    at = start
    while at < end:
        midnight = datetime.combine(at.date() + timedelta(days=1), time(0), tzinfo=at.tzinfo)
        until = min(end, midnight)
        cut.append(Period(at.isoformat(timespec="milliseconds"), at.date().isoformat(),
                          round((until - at).total_seconds(), 3), standing, rule))
        at = until
    return cut


@dataclass(frozen=True)
class HourTotals:
    """The hours the ledger holds: by day and standing, held by each rule, since install."""

    by_day: dict[str, dict[str, float]] = field(default_factory=dict)  # day -> standing -> h
    held_by: tuple[tuple[str, float], ...] = ()  # (rule, hours), most first
    lifetime: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STANDINGS, 0.0))

    def as_json(self) -> dict[str, object]:
        return {"hours_by_day": [{"day": day, **hours} for day, hours in self.by_day.items()],
                "held_by": [{"rule": rule, "hours": hours} for rule, hours in self.held_by],
                "lifetime_hours": dict(self.lifetime)}

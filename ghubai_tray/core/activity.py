"""Requests and tokens today and since install: the tallies the menu shows.

They are computed from the ledger's rows (:mod:`ghubai_tray.core.ledger`,
``tally_of``): tokens are the server's own output count where its answer gave
one, else the pieces relayed (one token each in Ollama's streams). A pure value;
:mod:`ghubai_tray.adapters.activity_file` reads the file older versions kept them
in, which the ledger carries over once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date


@dataclass(frozen=True)
class Tally:
    requests: int = 0  # served successfully
    failed: int = 0  # failed, cancelled or refused
    tokens: int = 0
    limited: int = 0  # requests the owner's ceilings changed


@dataclass(frozen=True)
class Activity:
    day: str = field(default_factory=lambda: date.today().isoformat())
    today: Tally = field(default_factory=Tally)
    lifetime: Tally = field(default_factory=Tally)


def bump(activity: Activity, today: date, **increments: int) -> Activity:
    """Add to today's and the lifetime tallies, starting a new day when the date changed."""
    day = today.isoformat()
    current = activity.today if activity.day == day else Tally()

    def add(t: Tally) -> Tally:
        return replace(t, **{k: getattr(t, k) + v for k, v in increments.items()})

    return Activity(day, add(current), add(activity.lifetime))


def for_day(activity: Activity, today: date) -> Activity:
    """The ledger as seen on ``today`` (a new day shows zero for today)."""
    return activity if activity.day == today.isoformat() else replace(
        activity, day=today.isoformat(), today=Tally())


def to_json(activity: Activity) -> str:
    return json.dumps(asdict(activity))


def from_json(text: str) -> Activity:
    """The ledger in ``text``; a fresh one when it is damaged (statistics never stop the app)."""
    try:
        raw = json.loads(text)
        return Activity(str(raw["day"]), Tally(**raw["today"]), Tally(**raw["lifetime"]))
    except (ValueError, KeyError, TypeError):
        return Activity()

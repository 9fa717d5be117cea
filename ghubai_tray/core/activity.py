"""Requests and tokens today and since install: a small ledger the worker keeps on disk.

Tokens are counted as the streamed pieces relayed, which for Ollama's streams
is one token each (non-streamed answers count as one piece per fragment).
The ledger is a pure value; loading and saving are the only I/O, both
tolerant: a missing or damaged file starts a fresh ledger rather than
stopping the app over statistics.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import platformdirs

from ghubai_tray.adapters.config import APP_NAME
from ghubai_tray.adapters.owner_only import private_dir


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


def default_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "activity.json"


def load(path: Path) -> Activity:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Activity(str(raw["day"]), Tally(**raw["today"]), Tally(**raw["lifetime"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Activity()


def save(path: Path, activity: Activity) -> None:
    private_dir(path.parent)
    fd, temp = tempfile.mkstemp(prefix=".activity-", dir=path.parent)  # 0600
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(activity), out)
    os.replace(temp, path)

"""Where the activity ledger lives on disk, and its loading and saving (see core.activity)."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from ghubai_tray.adapters.owner_only import write_atomically
from ghubai_tray.core.activity import Activity, from_json, to_json
from ghubai_tray.core.settings import APP_NAME


def default_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "activity.json"


def load(path: Path) -> Activity:
    try:
        return from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return Activity()


def save(path: Path, activity: Activity) -> None:
    write_atomically(path, to_json(activity).encode("utf-8"))

"""Where things are, for tests at any depth of tests/."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Screenshots and logs a run leaves for people to look at (CI uploads the folder).
ARTIFACTS = Path(os.environ.get("GHUBAI_ARTIFACTS", ROOT / "artifacts"))

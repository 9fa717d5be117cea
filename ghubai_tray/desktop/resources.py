"""Finding the artwork in ``assets/``, wherever the app runs from.

Three layouts exist: a PyInstaller bundle (files under ``sys._MEIPASS``), an
installed wheel (``ghubai_tray/assets``, see pyproject.toml) and a source
checkout (``assets/`` beside the package). One resolver serves all three.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PIL import Image


def assets_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # ghubai_tray/
    candidates = [package / "assets", package.parent / "assets"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "assets")
    for candidate in candidates:
        if (candidate / "ghubai-mark.png").is_file():
            return candidate
    raise FileNotFoundError("the GhubAi artwork (assets/ghubai-mark.png) is missing from this "
                            "installation; reinstall GhubAi Tray")


@cache
def mark() -> Image.Image:
    """The GhubAi mark, 512 px RGBA, loaded once."""
    with Image.open(assets_dir() / "ghubai-mark.png") as image:
        return image.convert("RGBA")

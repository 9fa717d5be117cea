"""What the GPU draws now, in watts, where the machine says: AMD cards through Linux's hwmon.

The ``amdgpu`` driver publishes each card's power in its hwmon folder
(``/sys/class/drm/card*/device/hwmon/hwmon*/``, ``name`` reading ``amdgpu``):
``power1_average`` (older kernels and most cards) or ``power1_input``, in
microwatts. Several cards are summed: the model server may use any of them.
Anything else is "not available" (None), never an error: the ledger then leaves the
energy empty and says why. (NVIDIA's reading, through NVML, is the next step of the
ledger's issue: docs/DEVELOPING.md.)
"""

from __future__ import annotations

from pathlib import Path

DRM = Path("/sys/class/drm")
FILES = ("power1_average", "power1_input")


def _microwatts(folder: Path) -> int | None:
    for name in FILES:
        try:
            text = (folder / name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():
            return int(text)
    return None


class HwmonPower:
    """The amdgpu cards' power draw; ``read()`` in watts, None when none says."""

    def __init__(self, root: Path = DRM) -> None:
        self._root = root

    def _folders(self) -> list[Path]:
        found = []
        for name in sorted(self._root.glob("card*/device/hwmon/hwmon*/name")):
            try:
                if name.read_text(encoding="ascii").strip() == "amdgpu":
                    found.append(name.parent)
            except (OSError, UnicodeDecodeError):
                continue
        return found

    def read(self) -> float | None:
        readings = [w for w in map(_microwatts, self._folders()) if w is not None]
        return sum(readings) / 1_000_000 if readings else None

    def source(self) -> str | None:
        """Where the reading comes from, in words (for ``doctor`` and the Activity window,
        which do not show it yet: the ledger's issue's next step)."""
        cards = [f.parents[2].name for f in self._folders() if _microwatts(f) is not None]
        return f"AMD hwmon ({', '.join(cards)})" if cards else None

"""AMD cards' readings through Linux's hwmon files, as the ``amdgpu`` driver publishes them.

Each card's hwmon folder (``/sys/class/drm/card*/device/hwmon/hwmon*/``, its
``name`` reading ``amdgpu``) holds, in the kernel's documented units:
``power1_average`` (older kernels and most cards) or ``power1_input``, and the
limit ``power1_cap``, in microwatts; ``temp1_input`` (the "edge" sensor) in
millidegrees Celsius; ``pwm1`` (0-255) for the fan. The card's own
``gpu_busy_percent`` (in ``device/``) says how busy it is. A file missing or
unreadable is "not available" (None), never an error: the ledger then leaves the
energy empty and the hardware guard does not act on it.
"""

from __future__ import annotations

from pathlib import Path

from ghubai_tray.core.hardware import GpuReading, Readings

DRM = Path("/sys/class/drm")
POWER_FILES = ("power1_average", "power1_input")
SOURCE = "AMD hwmon"


def _number(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _scaled(path: Path, scale: float) -> float | None:
    value = _number(path)
    return None if value is None else value * scale


def _microwatts(folder: Path) -> int | None:
    for name in POWER_FILES:
        value = _number(folder / name)
        if value is not None:
            return value
    return None


class AmdHwmon:
    """The amdgpu cards under ``root`` (``/sys/class/drm``), read anew at every call."""

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

    def readings(self) -> Readings:
        gpus = []
        for folder in self._folders():
            power = _microwatts(folder)
            pwm = _number(folder / "pwm1")
            gpus.append(GpuReading(
                name=f"AMD GPU ({folder.parents[2].name})",
                temperature_c=_scaled(folder / "temp1_input", 0.001),
                power_w=None if power is None else power / 1_000_000,
                power_limit_w=_scaled(folder / "power1_cap", 1e-6),
                fan_percent=None if pwm is None else min(pwm, 255) * 100 / 255,
                busy_percent=_scaled(folder.parents[1] / "gpu_busy_percent", 1.0)))
        return Readings(tuple(gpus), SOURCE if gpus else None)

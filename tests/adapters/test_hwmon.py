"""AMD cards' readings through hwmon, read from a tree laid out as the amdgpu driver lays
out /sys/class/drm (no such card here: the files are what the kernel's documentation
of amdgpu's hwmon interface says: microwatts in power1_average or power1_input and
power1_cap, millidegrees in temp1_input, 0-255 in pwm1, the card's gpu_busy_percent)."""

from __future__ import annotations

from pathlib import Path

from ghubai_tray.adapters.hwmon import AmdHwmon
from ghubai_tray.core.hardware import GpuReading


def card(root: Path, name: str, driver: str = "amdgpu", **files: str) -> Path:
    folder = root / name / "device" / "hwmon" / f"hwmon{len(list(root.glob('*')))}"
    folder.mkdir(parents=True)
    (folder / "name").write_text(f"{driver}\n")
    for file, value in files.items():
        (folder / file).write_text(f"{value}\n")
    return folder


def test_every_amd_cards_draw_is_summed_in_watts(tmp_path: Path) -> None:
    card(tmp_path, "card0", power1_average="125000000")
    card(tmp_path, "card1", power1_input="30500000")  # newer kernels: power1_input only
    card(tmp_path, "card2", driver="nouveau", power1_average="999000000")  # not amdgpu
    found = AmdHwmon(tmp_path).readings()
    assert found.power_w == 155.5
    assert found.source == "AMD hwmon"
    assert [g.name for g in found.gpus] == ["AMD GPU (card0)", "AMD GPU (card1)"]


def test_an_amd_cards_temperature_fan_limit_and_load(tmp_path: Path) -> None:
    folder = card(tmp_path, "card0", power1_average="210000000", power1_cap="300000000",
                  temp1_input="84500", pwm1="153")
    (folder.parents[1] / "gpu_busy_percent").write_text("97\n")
    assert AmdHwmon(tmp_path).readings().gpus == (
        GpuReading("AMD GPU (card0)", 84.5, 210.0, 300.0, 60.0, 97.0),)


def test_without_an_amd_reading_the_draw_is_not_available(tmp_path: Path) -> None:
    assert AmdHwmon(tmp_path).readings().power_w is None
    card(tmp_path, "card0", power1_average="not a number")
    found = AmdHwmon(tmp_path).readings()
    assert found.power_w is None and found.gpus == (GpuReading("AMD GPU (card0)"),)
    assert AmdHwmon(tmp_path / "missing").readings().source is None

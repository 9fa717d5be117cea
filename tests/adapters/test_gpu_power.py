"""AMD cards' power through hwmon, read from a tree laid out as the amdgpu driver lays
out /sys/class/drm (no such card here: the files are what the kernel's documentation
of amdgpu's hwmon interface says, microwatts in power1_average or power1_input)."""

from __future__ import annotations

from pathlib import Path

from ghubai_tray.adapters.gpu_power import HwmonPower


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
    power = HwmonPower(tmp_path)
    assert power.read() == 155.5
    assert power.source() == "AMD hwmon (card0, card1)"


def test_without_an_amd_reading_the_draw_is_not_available(tmp_path: Path) -> None:
    assert HwmonPower(tmp_path).read() is None
    card(tmp_path, "card0", power1_average="not a number")
    assert HwmonPower(tmp_path).read() is None and HwmonPower(tmp_path).source() is None
    assert HwmonPower(tmp_path / "missing").read() is None

"""Another program on the GPU, and each GPU's readings, through a fake NVIDIA driver.

No GPU is here, so ``libnvidia-ml.so.1`` is replaced by tests/data/nvml/fake_nvml.c
(tests/testbed/fake_nvidia.py), built with NVML's entry points, signatures and
structures and found by NVIDIA's own ``pynvml`` in its place; its process lists and
readings come from files the test writes. The processes in them are real: their
names are read from /proc as for any GPU.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghubai_tray.adapters.desktop_signals import DesktopSignals
from ghubai_tray.adapters.gpu_sensors import GpuSensors
from ghubai_tray.adapters.hwmon import AmdHwmon
from ghubai_tray.adapters.nvml import GRAPHICS_BUSY, Nvml
from ghubai_tray.core.hardware import GpuReading
from ghubai_tray.core.state import State
from tests.adapters.test_hwmon import card
from tests.testbed.fake_nvidia import SKIP, FakeNvidia
from tests.worker_bed import running_bed, with_settings

pytestmark = SKIP
MODELS = ("llama3.2:1b", "mistral:7b")


@pytest.fixture
def named(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Real processes named ``ollama`` and ``blender``: /bin/sleep under those names."""
    procs = {}
    for name in ("ollama", "blender"):
        shutil.copy("/bin/sleep", tmp_path / name)
        procs[name] = subprocess.Popen([str(tmp_path / name), "300"])
    yield {name: proc.pid for name, proc in procs.items()}
    for proc in procs.values():
        proc.kill()
        proc.wait()


def test_ollama_alone_on_the_gpu_is_not_busy(nvidia: FakeNvidia,
                                             named: dict[str, int]) -> None:
    nvidia.processes(f"compute {named['ollama']} 4000000000\n")
    nvml = Nvml()
    assert nvml.busy() is False
    nvidia.processes(f"compute {named['ollama']} 4000000000\ncompute {named['blender']} 1\n")
    assert nvml.busy() is True  # another CUDA program
    nvml.close()


def test_a_game_counts_and_the_compositor_does_not(nvidia: FakeNvidia,
                                                   named: dict[str, int]) -> None:
    nvml = Nvml()
    nvidia.processes(f"graphics {named['blender']} {GRAPHICS_BUSY // 8}\n")
    assert nvml.busy() is False  # a compositor's or browser's few hundred MB
    nvidia.processes(f"graphics {named['blender']} na\n")
    assert nvml.busy() is False  # the driver cannot say: no reason to pause
    nvidia.processes(f"graphics {named['blender']} {GRAPHICS_BUSY * 3}\n")
    assert nvml.busy() is True
    nvml.close()


def test_hundreds_of_processes_are_all_listed(nvidia: FakeNvidia,
                                             named: dict[str, int]) -> None:
    ollamas = "".join(f"compute {named['ollama']} 1\n" for _ in range(300))
    nvidia.processes(ollamas)
    assert Nvml().busy() is False  # pynvml asks for the count first: no list is cut
    nvidia.processes(ollamas + f"compute {named['blender']} 1\n")
    assert Nvml().busy() is True


def test_no_driver_is_not_available_and_not_asked_again_at_once(
        nvidia: FakeNvidia, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setenv("FAKE_NVML_FAIL_INIT", "1")  # NVML_ERROR_DRIVER_NOT_LOADED
    failing = Nvml(clock=lambda: now[0])
    assert failing.busy() is None
    assert failing.readings().gpus == () and failing.readings().words().startswith(
        "not available")
    monkeypatch.delenv("FAKE_NVML_FAIL_INIT")
    assert failing.busy() is None  # within RETRY: not asked again
    now[0] = 1000.0
    assert failing.busy() is False  # the driver came (an update, a reboot)
    failing.close()


def test_each_gpus_readings_in_the_units_nvml_gives(nvidia: FakeNvidia) -> None:
    nvidia.read({"name": "NVIDIA GeForce RTX 4090", "temperature": 71, "power_mw": 312500,
                 "limit_mw": 450000, "fan": 63, "util": 98},
                {"name": "NVIDIA GeForce GTX 1060 6GB", "temperature": 45, "power_mw": 9000})
    nvml = Nvml()
    found = nvml.readings()
    assert found.gpus == (
        GpuReading("NVIDIA GeForce RTX 4090", 71.0, 312.5, 450.0, 63.0, 98.0),
        GpuReading("NVIDIA GeForce GTX 1060 6GB", 45.0, 9.0, None, None, None))
    assert found.power_w == 321.5 and found.hottest_c == 71.0
    assert found.words() == ("NVIDIA GeForce RTX 4090: 71 °C, 312 W of 450 W, fan 63 %, "
                             "98 % busy; NVIDIA GeForce GTX 1060 6GB: 45 °C, 9 W "
                             "(NVIDIA NVML)")
    nvidia.read({"name": "Tesla without sensors"})  # the readings change at every call
    assert nvml.readings().gpus == (GpuReading("Tesla without sensors"),)
    assert nvml.readings().power_w is None
    nvml.close()


def test_nvidia_and_amd_cards_are_read_together(nvidia: FakeNvidia, tmp_path: Path) -> None:
    nvidia.read({"name": "NVIDIA RTX A2000", "power_mw": 70000})
    card(tmp_path, "card1", power1_average="30000000", temp1_input="51000")
    sensors = GpuSensors(Nvml(), AmdHwmon(tmp_path))
    assert sensors.power() == 100.0
    assert sensors.read().source == "NVIDIA NVML and AMD hwmon"
    sensors.close()


async def test_the_worker_pauses_while_another_program_uses_the_gpu(
        nvidia: FakeNvidia, named: dict[str, int]) -> None:
    signals = DesktopSignals(nvml=Nvml())
    async with running_bed(settings=with_settings(pause_when_gpu_busy=True), desktop=signals,
                           rules_look=0.1) as bed:
        await bed.registered(*MODELS)
        nvidia.processes(f"compute {named['blender']} 2000000000\n")
        snap = await bed.worker.wait_for(lambda s: s.held_by == "GPU in use", 10, "the hold")
        assert snap.state is State.PAUSED
        await bed.registered()
        nvidia.processes(f"compute {named['ollama']} 2000000000\n")
        await bed.registered(*MODELS, timeout=60)  # clear for SETTLE: sharing again
    signals.close()


def test_doctor_names_the_gpus_and_says_where_energy_is_not_available(
        nvidia: FakeNvidia, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ghubai_tray.doctor import gpu_check

    no_amd = AmdHwmon(tmp_path / "no-cards")
    nvidia.read({"name": "NVIDIA GeForce RTX 3090", "temperature": 66, "power_mw": 280000})
    line = next(gpu_check(GpuSensors(Nvml(), no_amd).read()).lines())
    assert line == ("[info] GPU: NVIDIA GeForce RTX 3090: 66 °C, 280 W (NVIDIA NVML); the "
                    "ledger records each request's share of the energy drawn")
    nvidia.read({"name": "NVIDIA GeForce RTX 3090", "temperature": 66})
    line = next(gpu_check(GpuSensors(Nvml(), no_amd).read()).lines())
    assert line.endswith("(NVIDIA NVML); no card says its power draw: the ledger leaves "
                         "each request's energy empty")
    monkeypatch.setenv("FAKE_NVML_FAIL_INIT", "1")
    line = next(gpu_check(GpuSensors(Nvml(), no_amd).read()).lines())
    assert line == ("[info] GPU: not available (no NVIDIA driver and no AMD card's hwmon "
                    "files): the ledger leaves each request's energy empty")

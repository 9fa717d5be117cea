"""The hardware guard end to end: the worker between the test hub and the Ollama stand-in,
reading a GPU whose readings the test changes, with an injected wall clock moved by the
test (the guard's 10 s, 60 s and 2 minutes are the clock's, not the test's own).

No GPU is here: NVIDIA's readings come from the fake ``libnvidia-ml.so.1`` through
NVIDIA's own pynvml (tests/testbed/fake_nvidia.py), AMD's from a tree laid out as the
``amdgpu`` driver lays out its hwmon files.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ghubai_tray.adapters.gpu_sensors import GpuSensors
from ghubai_tray.adapters.hwmon import AmdHwmon
from ghubai_tray.adapters.ledger_db import Ledger
from ghubai_tray.adapters.nvml import Nvml
from ghubai_tray.core.ledger import Entry
from ghubai_tray.core.state import Snapshot, State
from tests.adapters.test_hwmon import card
from tests.testbed import fake_nvidia
from tests.testbed.ollama import OllamaStandIn
from tests.worker.test_rules import ZONE, Clock
from tests.worker_bed import Bed, error_of, running_bed, with_settings

MODELS = ("llama3.2:1b", "mistral:7b")
EVENING = datetime(2026, 12, 2, 21, 0, tzinfo=ZONE)
FAST = 0.05  # the rules look this often (seconds of the test's own time)


class Gpu:
    """One GPU's temperature and power, from NVIDIA's fake driver or an AMD hwmon tree."""

    def __init__(self, vendor: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.vendor = vendor
        self._drm = folder / "drm"
        self._drm.mkdir()
        self._nvidia = None
        if vendor == "nvidia":
            if fake_nvidia.CANNOT:
                pytest.skip(fake_nvidia.WHY)
            self._nvidia = fake_nvidia.FakeNvidia(folder, monkeypatch)
        else:
            self._hwmon = card(self._drm, "card0")
        self.sensors = GpuSensors(Nvml(), AmdHwmon(self._drm))

    def reads(self, celsius: float, watts: float = 120.0) -> None:
        if self._nvidia is not None:
            self._nvidia.read({"name": "NVIDIA GeForce RTX 4070", "temperature": int(celsius),
                               "power_mw": int(watts * 1000)})
        else:
            (self._hwmon / "temp1_input").write_text(f"{round(celsius * 1000)}\n")
            (self._hwmon / "power1_average").write_text(f"{int(watts * 1_000_000)}\n")


async def _read(bed: Bed, celsius: float) -> Snapshot:
    """Until the rules have looked at the GPU at this temperature."""
    return await bed.worker.wait_for(
        lambda s: s.gpus is not None and s.gpus.hottest_c is not None
        and abs(s.gpus.hottest_c - celsius) < 0.0005, 10, f"{celsius} °C")


async def _refused_words(bed: Bed, request_id: str) -> str:
    node = next(iter(bed.hub.nodes.values()))  # a hub that sends one anyway
    before = len(bed.hub.ignored_chunks)
    await bed.hub.invoke(node.connection_id, "RequestInference", {
        "requestId": request_id, "model": MODELS[0], "endpointUri": "/api/chat",
        "requestBody": json.dumps({"model": MODELS[0], "messages": []})})
    await bed.hub.wait_until(lambda: len(bed.hub.ignored_chunks) > before, 10, "the refusal")
    return error_of(bed.hub.ignored_chunks[-1]["tokenFragment"])


@pytest.mark.parametrize("vendor", ["nvidia", "amd"])
async def test_a_hot_gpu_holds_sharing_and_a_cool_one_shares_again(
        vendor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = Gpu(vendor, tmp_path, monkeypatch)
    gpu.reads(60)
    clock = Clock(EVENING)
    async with running_bed(settings=with_settings(max_gpu_temp=85.0), clock=clock,
                           gpus=gpu.sensors.read, rules_check=FAST, rules_look=FAST) as bed:
        await bed.registered(*MODELS)
        # Each reading differs from the one before, so that waiting for it to be seen
        # waits for a new look of the rules.
        gpu.reads(90)
        await _read(bed, 90)
        clock.now += timedelta(seconds=9)
        gpu.reads(91)
        await _read(bed, 91)  # another look: 9 s over the limit is not yet a hold
        assert bed.worker.snapshot.held_by is None
        clock.now += timedelta(seconds=2)
        gpu.reads(90)
        snap = await bed.worker.wait_for(lambda s: s.held_by == "GPU temperature", 10,
                                         "the hold")
        held_at = time.monotonic()
        assert snap.state is State.PAUSED
        assert snap.held_detail == "GPU at 90 °C (resumes at 75 °C or below)"
        await bed.registered(timeout=2)  # the hub's registration empties within 2 s
        assert time.monotonic() - held_at < 2
        assert await _refused_words(bed, "hot-1") == (
            "this machine is not sharing now (its GPU is too hot)")
        gpu.reads(70)
        await _read(bed, 70)
        clock.now += timedelta(seconds=61)  # cool for a minute, but held for 61 s only
        gpu.reads(71)
        await _read(bed, 71)
        assert bed.worker.snapshot.held_by == "GPU temperature"
        clock.now += timedelta(seconds=60)  # held for two minutes: shared again
        gpu.reads(72)
        await bed.registered(*MODELS, timeout=10)
        assert bed.worker.snapshot.held_by is None
    gpu.sensors.close()


async def test_a_gpu_hovering_at_its_limit_is_held_at_most_once_in_two_minutes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = Gpu("amd", tmp_path, monkeypatch)  # millidegrees: every look's reading differs
    gpu.reads(83)
    clock = Clock(EVENING)
    changes: list[tuple[datetime, str | None]] = []
    async with running_bed(settings=with_settings(max_gpu_temp=85.0, resume_gpu_temp=84.0),
                           clock=clock, gpus=gpu.sensors.read, rules_check=FAST,
                           rules_look=FAST) as bed:
        await bed.registered(*MODELS)

        def seen(snap: Snapshot) -> None:
            if not changes or changes[-1][1] != snap.held_by:
                changes.append((clock.now, snap.held_by))

        bed.worker.subscribe(seen)
        for step in range(240):  # eight minutes, a look every 2 s: 86 for 12 s, 83 for 70 s
            celsius = (86 if step % 41 < 6 else 83) + step / 1000
            gpu.reads(celsius)
            await _read(bed, celsius)
            clock.now += timedelta(seconds=2)
    holds = [at for at, by in changes if by == "GPU temperature"]
    assert 2 <= len(holds) <= 4  # it holds and lets go (83 °C is under 84, its resume), but
    # not every 82 s as the readings would have it: two minutes at least between holds
    assert all(b - a >= timedelta(minutes=2) for a, b in zip(holds, holds[1:], strict=False))
    gpu.sensors.close()


def _earlier_today(path: Path, day: datetime, wh: float) -> None:
    """The ledger of a worker that already served today, and used ``wh``."""
    ledger = Ledger(path)
    ledger.open(day.date())
    ledger.add(Entry(at=(day - timedelta(hours=1)).isoformat(), day=day.date().isoformat(),
                     hub="hub.example.com", model=MODELS[0], endpoint="/api/chat",
                     server="ollama", outcome="served", output_tokens=500, chunks=500,
                     ttft_ms=200.0, duration_ms=600_000.0, energy_wh=wh))
    ledger.close()


async def test_a_used_budget_holds_until_midnight(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """0.4995 kWh used earlier today (in the ledger, read at start); one more request at
    2 kW uses the rest of the 0.5 kWh: held until the injected clock passes midnight."""
    gpu = Gpu("nvidia", tmp_path, monkeypatch)
    gpu.reads(60, watts=2000)
    clock = Clock(EVENING.replace(hour=23, minute=50))
    path = tmp_path / "ledger.sqlite3"
    _earlier_today(path, clock.now, 499.5)
    async with running_bed(settings=with_settings(daily_energy_kwh=0.5), clock=clock,
                           gpus=gpu.sensors.read, ledger_path=path,
                           ollama=OllamaStandIn(token_delay=0.15), rules_check=FAST,
                           rules_look=FAST) as bed:
        await bed.registered(*MODELS)
        assert bed.worker.snapshot.today_use.kwh == pytest.approx(0.4995)
        served = await bed.request("/api/chat", {"model": MODELS[0], "messages": [
            {"role": "user", "content": "hello"}]})
        await served.wait(60)
        snap = await bed.worker.wait_for(lambda s: s.held_by == "energy budget", 10, "the hold")
        assert snap.held_until == datetime(2026, 12, 3, 0, 0, tzinfo=ZONE)
        assert snap.held_detail == "today's energy budget is used (0.50 kWh)"
        await bed.registered()
        assert await _refused_words(bed, "budget-1") == (
            "this machine is not sharing now (its owner's energy budget for today is used)")
        clock.now = datetime(2026, 12, 3, 0, 0, 5, tzinfo=ZONE)
        await bed.registered(*MODELS, timeout=10)
    gpu.sensors.close()


async def test_without_a_driver_nothing_holds_and_doctor_says_not_available(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ghubai_tray.adapters.desktop_signals import DesktopSignals
    from ghubai_tray.core.settings import Settings
    from ghubai_tray.doctor import rules_check

    monkeypatch.setenv("FAKE_NVML_FAIL_INIT", "1")  # (where the fake is loaded at all)
    sensors = GpuSensors(Nvml(), AmdHwmon(tmp_path / "no-cards"))
    clock = Clock(EVENING)
    async with running_bed(settings=with_settings(max_gpu_temp=50.0, max_gpu_power=10.0),
                           clock=clock, gpus=sensors.read, rules_check=FAST,
                           rules_look=FAST) as bed:
        await bed.registered(*MODELS)
        for _ in range(5):
            clock.now += timedelta(seconds=30)
            await bed.worker.wait_for(lambda s: s.gpus is not None and not s.gpus.gpus, 10,
                                      "a look at no GPU")
        assert bed.worker.snapshot.held_by is None
        await bed.registered(*MODELS)
    line = next(rules_check(Settings(max_gpu_temp=50.0), DesktopSignals(),
                            gpus=sensors.read()).lines())
    assert "temperature guard (max 50 °C; not available on this computer: not available " \
        "(no NVIDIA driver and no AMD card's hwmon files))" in line
    sensors.close()

"""Every GPU source on a machine without a GPU (this one, and Windows under Wine): NVIDIA's
pynvml is there and loads, finds no driver, and everything says "not available"."""

from __future__ import annotations

import pytest

from ghubai_tray.adapters.gpu_sensors import GpuSensors
from ghubai_tray.adapters.nvml import Nvml


def test_without_a_driver_every_reading_is_not_available(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml  # the declared dependency, in the Windows lane's packages too

    monkeypatch.delenv("FAKE_NVML_SENSORS", raising=False)
    monkeypatch.delenv("FAKE_NVML_PROCESSES", raising=False)
    with pytest.raises(pynvml.NVMLError):  # its own loader: no libnvidia-ml, no nvml.dll
        pynvml.nvmlInit()
    nvml = Nvml()
    sensors = GpuSensors(nvml)
    assert nvml.busy() is None
    assert sensors.read().gpus == () or sensors.read().source == "AMD hwmon"
    nvml.close()

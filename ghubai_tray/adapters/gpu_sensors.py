"""Every GPU's readings from every source this machine has: NVIDIA's NVML and AMD's hwmon.

One adapter behind the ledger's energy meter, the hardware guard's rules,
``doctor`` and the Activity window, so that they read the same figures. A machine
with neither (an Intel laptop, a virtual machine, Windows with an AMD card) has no
readings: "not available", said as such.
"""

from __future__ import annotations

from ghubai_tray.adapters.hwmon import AmdHwmon
from ghubai_tray.adapters.nvml import Nvml
from ghubai_tray.core.hardware import Readings, combined


class GpuSensors:
    """``read()`` every GPU now; ``power()`` their summed draw in watts (the energy meter's)."""

    def __init__(self, nvml: Nvml | None = None, amd: AmdHwmon | None = None) -> None:
        self._nvml = nvml or Nvml()
        self._amd = amd or AmdHwmon()

    def read(self) -> Readings:
        return combined(self._nvml.readings(), self._amd.readings())

    def power(self) -> float | None:
        return self.read().power_w

    def close(self) -> None:
        self._nvml.close()

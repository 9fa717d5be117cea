"""NVIDIA's GPUs through NVML, read with NVIDIA's own ``nvidia-ml-py`` (``pynvml``).

NVML is the library every NVIDIA driver installs (``libnvidia-ml.so.1``,
``nvml.dll``) and ``nvidia-smi`` reads. Two uses here:

- **Is another program using the GPU?** (the game-mode rule). The process lists
  say which processes hold a context on each GPU. Ollama's own processes (named
  ``ollama...``) and this one are not "another program". A compute process (CUDA:
  another AI tool, a miner, a renderer) always counts; a graphics process counts
  from :data:`GRAPHICS_BUSY` bytes of GPU memory, so that the desktop's compositor
  and a browser do not, and a game does. Where the driver cannot say a graphics
  process's memory (Windows under WDDM often cannot), graphics processes count for
  nothing: "cannot tell" is never a reason to pause.
- **What each GPU reads** (the ledger's energy, the hardware guard): temperature,
  power draw and limit, fan, utilisation, each None where the card does not say.

``pynvml`` is imported the first time NVML is asked (it is 8,000 lines; a machine
without an NVIDIA driver never needs it). No driver, or NVML failing: ``None``
("not available"), and the driver is not asked again for :data:`RETRY` seconds.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ghubai_tray.core.hardware import GpuReading, Readings

log = logging.getLogger(__name__)

GRAPHICS_BUSY = 1024**3  # a game holds gigabytes; a compositor or a browser much less
RETRY = 300.0
SOURCE = "NVIDIA NVML"


def process_name(pid: int) -> str | None:
    """The executable's name of ``pid``; None when it cannot be read (gone, not ours)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return _windows_process_name(pid)
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _windows_process_name(pid: int) -> str | None:  # pragma: no cover - Windows only
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        size = ctypes.c_ulong(1024)
        buffer = ctypes.create_unicode_buffer(size.value)
        if not kernel32.QueryFullProcessImageNameW(handle, 0, buffer, ctypes.byref(size)):
            return None
        return os.path.basename(buffer.value)
    finally:
        kernel32.CloseHandle(handle)


def is_ollamas_or_ours(pid: int, name: str | None) -> bool:
    return pid == os.getpid() or (name or "").casefold().startswith("ollama")


class Nvml:
    """One initialised NVML, asked again after :data:`RETRY` when it failed.

    One lock: the rules' thread and the energy sampler both ask it."""

    def __init__(self, name_of: Callable[[int], str | None] = process_name,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._name_of = name_of
        self._clock = clock
        self._nvml: ModuleType | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def _ready(self) -> ModuleType | None:
        if self._nvml is not None:
            return self._nvml
        if self._failed_at is not None and self._clock() - self._failed_at < RETRY:
            return None
        try:
            import pynvml  # noqa: PLC0415 - only where NVML is asked, see the module's words

            pynvml.nvmlInit()
        except Exception as exc:  # pynvml.NVMLError, or the import itself failing
            log.debug("NVML is not available: %s", exc)
            self._failed_at = self._clock()
            return None
        module: ModuleType = pynvml
        self._nvml = module
        return module

    def _asking(self, question: Callable[[ModuleType], Any]) -> Any:
        with self._lock:
            nvml = self._ready()
            if nvml is None:
                return None
            try:
                return question(nvml)
            except nvml.NVMLError as exc:
                log.debug("NVML failed: %s", exc)
                self._shut(nvml)
                self._failed_at = self._clock()
                return None

    def busy(self) -> bool | None:
        """Whether a program other than Ollama uses an NVIDIA GPU now."""
        result: bool | None = self._asking(self._busy)
        return result

    def readings(self) -> Readings:
        """Every NVIDIA GPU's readings now; no GPUs where NVML is not available."""
        result: Readings | None = self._asking(_readings)
        return result or Readings()

    def _busy(self, nvml: ModuleType) -> bool:
        for index in range(nvml.nvmlDeviceGetCount()):
            device = nvml.nvmlDeviceGetHandleByIndex(index)
            for process in nvml.nvmlDeviceGetComputeRunningProcesses(device):
                if not is_ollamas_or_ours(process.pid, self._name_of(process.pid)):
                    return True
            for process in nvml.nvmlDeviceGetGraphicsRunningProcesses(device):
                used = process.usedGpuMemory  # None: the driver cannot say (WDDM)
                if (used is not None and used >= GRAPHICS_BUSY
                        and not is_ollamas_or_ours(process.pid, self._name_of(process.pid))):
                    return True
        return False

    def _shut(self, nvml: ModuleType) -> None:
        self._nvml = None
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                self._shut(self._nvml)


def _readings(nvml: ModuleType) -> Readings:
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        device = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(device)
        gpus.append(GpuReading(
            name=name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name),
            temperature_c=_figure(nvml, nvml.nvmlDeviceGetTemperature, device,
                                  nvml.NVML_TEMPERATURE_GPU),
            power_w=_figure(nvml, nvml.nvmlDeviceGetPowerUsage, device, scale=0.001),
            power_limit_w=_figure(nvml, nvml.nvmlDeviceGetEnforcedPowerLimit, device,
                                  scale=0.001),
            fan_percent=_figure(nvml, nvml.nvmlDeviceGetFanSpeed, device),
            busy_percent=_figure(nvml, lambda d: nvml.nvmlDeviceGetUtilizationRates(d).gpu,
                                 device)))
    return Readings(tuple(gpus), SOURCE)


def _figure(nvml: ModuleType, read: Callable[..., Any], *args: Any,
            scale: float = 1.0) -> float | None:
    """A figure, or None where this card does not give it (NOT_SUPPORTED, no fan...)."""
    try:
        return float(read(*args)) * scale
    except nvml.NVMLError:
        return None

"""Is another program using the GPU? NVIDIA's NVML, read through ctypes.

NVML is the library every NVIDIA driver installs (``libnvidia-ml.so.1``,
``nvml.dll``) and ``nvidia-smi`` reads; its process lists say which processes
hold a context on each GPU. Ollama's own processes (named ``ollama...``) and
this one are not "another program". A compute process (CUDA: another AI tool,
a miner, a renderer) always counts; a graphics process counts from
:data:`GRAPHICS_BUSY` bytes of GPU memory, so that the desktop's compositor and
a browser do not, and a game does. Where the driver cannot say a graphics
process's memory (Windows under WDDM often cannot), graphics processes count
for nothing: "cannot tell" is never a reason to pause.

No NVIDIA driver, or NVML failing: ``None`` ("not available"), and the library
is not asked again for :data:`RETRY` seconds.
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
from typing import Any

log = logging.getLogger(__name__)

LIBRARY = "nvml.dll" if sys.platform == "win32" else "libnvidia-ml.so.1"
GRAPHICS_BUSY = 1024**3  # a game holds gigabytes; a compositor or a browser much less
RETRY = 300.0
NVML_SUCCESS = 0
NVML_ERROR_INSUFFICIENT_SIZE = 7
NOT_AVAILABLE = 2**64 - 1  # NVML_VALUE_NOT_AVAILABLE for usedGpuMemory
MAX_PROCESSES = 256


class ProcessInfo(ctypes.Structure):
    """``nvmlProcessInfo_t`` as the ``_v3`` (and ``_v2``) process queries fill it."""

    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong),
                ("gpuInstanceId", ctypes.c_uint), ("computeInstanceId", ctypes.c_uint)]


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
    """One loaded NVML, initialised once, asked again after :data:`RETRY` on failure."""

    def __init__(self, library: str = LIBRARY,
                 name_of: Callable[[int], str | None] = process_name,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._library = library
        self._name_of = name_of
        self._clock = clock
        self._lib: Any = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def _ready(self) -> Any:
        if self._lib is not None:
            return self._lib
        if self._failed_at is not None and self._clock() - self._failed_at < RETRY:
            return None
        try:
            lib = ctypes.CDLL(self._library)
            if lib.nvmlInit_v2() != NVML_SUCCESS:
                raise OSError("nvmlInit_v2 failed")
        except (OSError, AttributeError) as exc:
            log.debug("NVML is not available: %s", exc)
            self._failed_at = self._clock()
            return None
        self._lib = lib
        return lib

    def busy(self) -> bool | None:
        """Whether a program other than Ollama uses an NVIDIA GPU now."""
        with self._lock:
            lib = self._ready()
            if lib is None:
                return None
            try:
                return self._busy(lib)
            except (OSError, AttributeError) as exc:
                log.debug("NVML failed: %s", exc)
                self._lib, self._failed_at = None, self._clock()
                return None

    def _busy(self, lib: Any) -> bool | None:
        count = ctypes.c_uint(0)
        if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != NVML_SUCCESS:
            return None
        for index in range(count.value):
            device = ctypes.c_void_p()
            if lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(device)) != NVML_SUCCESS:
                continue
            for pid, _used in _processes(lib, "nvmlDeviceGetComputeRunningProcesses", device):
                if not is_ollamas_or_ours(pid, self._name_of(pid)):
                    return True
            for pid, used in _processes(lib, "nvmlDeviceGetGraphicsRunningProcesses", device):
                if (used != NOT_AVAILABLE and used >= GRAPHICS_BUSY
                        and not is_ollamas_or_ours(pid, self._name_of(pid))):
                    return True
        return False

    def close(self) -> None:
        with self._lock:
            if self._lib is not None:
                self._lib.nvmlShutdown()
                self._lib = None


def _processes(lib: Any, query: str, device: ctypes.c_void_p) -> list[tuple[int, int]]:
    """(pid, bytes of GPU memory) of each process the query lists; the ``_v3`` entry
    point where the driver has it, else ``_v2`` (same structure)."""
    function = getattr(lib, f"{query}_v3", None) or getattr(lib, f"{query}_v2")
    infos = (ProcessInfo * MAX_PROCESSES)()
    count = ctypes.c_uint(MAX_PROCESSES)
    result = function(device, ctypes.byref(count), infos)
    if result == NVML_ERROR_INSUFFICIENT_SIZE:
        return [(0, NOT_AVAILABLE)]  # more than we can list: something else surely runs
    if result != NVML_SUCCESS:
        return []
    return [(int(infos[i].pid), int(infos[i].usedGpuMemory))
            for i in range(min(count.value, MAX_PROCESSES))]

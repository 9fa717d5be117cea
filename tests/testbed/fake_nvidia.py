"""A fake NVIDIA driver for tests: tests/data/nvml/fake_nvml.c, loaded where pynvml looks.

No NVIDIA GPU is here. The fake exports NVML's entry points with NVML's signatures
and structures and is built with the soname ``libnvidia-ml.so.1``; loaded once into
the test process, it is what NVIDIA's own ``pynvml`` finds when it opens
``libnvidia-ml.so.1`` (the dynamic linker matches a loaded library by soname), so
the code under test and pynvml run unchanged. Its readings come from files a test
writes (:class:`FakeNvidia`); without them it answers as a machine with no driver.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).parents[1] / "data" / "nvml" / "fake_nvml.c"
CANNOT = sys.platform == "win32" or not shutil.which("gcc")
WHY = "builds the fake libnvidia-ml.so.1 with gcc (Linux)"
SKIP = pytest.mark.skipif(CANNOT, reason=WHY)
_loaded: list[Path] = []


def load_fake(folder: Path) -> Path:
    """Build the fake (once per test process) and load it in pynvml's way."""
    if _loaded:
        return _loaded[0]
    out = folder / "libnvidia-ml.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wl,-soname,libnvidia-ml.so.1",
                    "-o", str(out), str(SOURCE)], check=True)
    ctypes.CDLL(str(out), mode=ctypes.RTLD_GLOBAL)
    _loaded.append(out)
    return out


class FakeNvidia:
    """The fake driver's readings and processes, as files it reads at every call."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.library = load_fake(folder)
        self.sensors_file = folder / "sensors"
        self.processes_file = folder / "processes"
        self.sensors_file.write_text("")
        self.processes_file.write_text("")
        monkeypatch.setenv("FAKE_NVML_SENSORS", str(self.sensors_file))
        monkeypatch.setenv("FAKE_NVML_PROCESSES", str(self.processes_file))
        monkeypatch.delenv("FAKE_NVML_FAIL_INIT", raising=False)

    def read(self, *gpus: dict[str, object]) -> None:
        """One dict per GPU: name, temperature, power_mw, limit_mw, fan, util."""
        self.sensors_file.write_text("".join(
            f"{index} {key} {value}\n" for index, gpu in enumerate(gpus)
            for key, value in gpu.items()))

    def processes(self, text: str) -> None:
        self.processes_file.write_text(text)

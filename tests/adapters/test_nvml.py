"""Another program on the GPU, as NVML lists it, through a fake NVML.

No GPU is here, so ``libnvidia-ml.so.1`` is replaced by tests/data/nvml/fake_nvml.c,
built with NVML's entry points, signatures and process structure, loaded by the
real ctypes code in its place; its process lists come from a file the test writes.
The processes in them are real: their names are read from /proc as for any GPU.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghubai_tray.adapters.desktop_signals import DesktopSignals
from ghubai_tray.adapters.nvml import GRAPHICS_BUSY, Nvml
from ghubai_tray.core.state import State
from tests.worker_bed import running_bed, with_settings

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not shutil.which("gcc"),
                                reason="builds the fake NVML with gcc (Linux)")
MODELS = ("llama3.2:1b", "mistral:7b")
SOURCE = Path(__file__).parents[1] / "data" / "nvml" / "fake_nvml.c"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nvml") / "libnvidia-ml.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(SOURCE)], check=True)
    return out


@pytest.fixture
def listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "processes"
    path.write_text("")
    monkeypatch.setenv("FAKE_NVML_PROCESSES", str(path))
    return path


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


def test_ollama_alone_on_the_gpu_is_not_busy(library: Path, listing: Path,
                                             named: dict[str, int]) -> None:
    listing.write_text(f"compute {named['ollama']} 4000000000\n")
    nvml = Nvml(str(library))
    assert nvml.busy() is False
    listing.write_text(f"compute {named['ollama']} 4000000000\ncompute {named['blender']} 1\n")
    assert nvml.busy() is True  # another CUDA program
    nvml.close()


def test_a_game_counts_and_the_compositor_does_not(library: Path, listing: Path,
                                                   named: dict[str, int]) -> None:
    nvml = Nvml(str(library))
    listing.write_text(f"graphics {named['blender']} {GRAPHICS_BUSY // 8}\n")
    assert nvml.busy() is False  # a compositor's or browser's few hundred MB
    listing.write_text(f"graphics {named['blender']} na\n")
    assert nvml.busy() is False  # the driver cannot say: no reason to pause
    listing.write_text(f"graphics {named['blender']} {GRAPHICS_BUSY * 3}\n")
    assert nvml.busy() is True
    nvml.close()


def test_more_processes_than_can_be_listed_is_busy(library: Path, listing: Path) -> None:
    listing.write_text("".join(f"compute {1000 + i} 1\n" for i in range(300)))
    assert Nvml(str(library)).busy() is True


def test_no_driver_is_not_available_and_not_asked_again_at_once(
        library: Path, listing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    missing = Nvml("/nonexistent/libnvidia-ml.so.1", clock=lambda: now[0])
    assert missing.busy() is None
    monkeypatch.setenv("FAKE_NVML_FAIL_INIT", "1")
    failing = Nvml(str(library), clock=lambda: now[0])
    assert failing.busy() is None
    monkeypatch.delenv("FAKE_NVML_FAIL_INIT")
    assert failing.busy() is None  # within RETRY: not asked again
    now[0] = 1000.0
    assert failing.busy() is False  # the driver came (an update, a reboot)


async def test_the_worker_pauses_while_another_program_uses_the_gpu(
        library: Path, listing: Path, named: dict[str, int]) -> None:
    signals = DesktopSignals(nvml=Nvml(str(library)))
    async with running_bed(settings=with_settings(pause_when_gpu_busy=True), desktop=signals,
                           rules_look=0.1) as bed:
        await bed.registered(*MODELS)
        listing.write_text(f"compute {named['blender']} 2000000000\n")
        snap = await bed.worker.wait_for(lambda s: s.held_by == "GPU in use", 10, "the hold")
        assert snap.state is State.PAUSED
        await bed.registered()
        listing.write_text(f"compute {named['ollama']} 2000000000\n")
        await bed.registered(*MODELS, timeout=60)  # clear for SETTLE: sharing again
    signals.close()

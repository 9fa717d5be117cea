"""Running ``ghubai-tray`` as a real process, the way people run it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn

SEED_VARIABLES = ("HUB_URL", "PROVIDER_TOKEN", "OLLAMA_LOCAL_URL", "ALLOW_INVALID_CERTS")
WINDOWS = sys.platform == "win32"
CHILD_MARK = "GHUBAI_TEST_CHILD"


def under_wine() -> bool:
    if not WINDOWS:
        return False
    import ctypes

    return hasattr(ctypes.windll.ntdll, "wine_get_version")  # type: ignore[attr-defined,unused-ignore]


# Real Windows: a child with a console group of its own can be sent Ctrl-Break. Not under
# Wine, which delivers Ctrl-C instead (stop_child), and Ctrl-C is off in a new group.
SPAWN_FLAGS: dict[str, Any] = (
    {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined,unused-ignore]
    if WINDOWS and not under_wine() else {})


# What the worker logs when it is asked to stop the way stop_child() asks.
WINDOWS_STOP = "Ctrl-C" if under_wine() else "Ctrl-Break"
STOP_NAME = WINDOWS_STOP if WINDOWS else "SIGTERM"
INTERRUPT_NAME = WINDOWS_STOP if WINDOWS else "SIGINT"


def marked(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` naming one child (start it with ``python_for(env)``) for stop_child()."""
    return {**env, CHILD_MARK: uuid.uuid4().hex}


def python_for(env: Mapping[str, str]) -> list[str]:
    """This Python, with the child's mark in its command line, where Wine shows it to
    the Unix side (``-X`` takes any name; Python ignores those it does not know)."""
    return [sys.executable, "-X", f"{CHILD_MARK}={env[CHILD_MARK]}"]


def stop_child(process: asyncio.subprocess.Process | subprocess.Popen[str] |
               subprocess.Popen[bytes], env: Mapping[str, str], *,
               interrupt: bool = False) -> None:
    """Ask a child to stop as its owner would: SIGTERM (or SIGINT, Ctrl-C in a terminal) on
    Linux; on Windows, which has neither, Ctrl-C or Ctrl-Break in its console.

    Real Windows: Ctrl-Break to the child's console group (it was started with
    SPAWN_FLAGS). Wine 8 cannot generate a console event for a process whose
    handles are pipes, but turns a Unix SIGINT into the CTRL_C_EVENT a console
    gives, through the same console control handler: so under Wine the child's
    Unix process is found by the mark in its command line (``python_for``) and
    sent SIGINT by the Unix ``kill``.
    """
    if not WINDOWS:
        process.send_signal(signal.SIGINT if interrupt else signal.SIGTERM)
    elif not under_wine():
        process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined,unused-ignore]
    else:
        _wine_interrupt(env[CHILD_MARK])


def _wine_interrupt(mark: str) -> None:
    from tests.testbed.wine import unix_pids

    needle = f"{CHILD_MARK}={mark}".encode()
    found = unix_pids(lambda argv: needle in argv, "Z:\\proc")
    assert found, f"no process carries {CHILD_MARK}={mark}"
    # Wine runs a Unix program for CreateProcess on an ELF file; it has no Windows handle.
    os.spawnv(os.P_WAIT, "Z:\\bin\\kill", ["kill", "-INT", *map(str, found)])


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """Our config, logs and session in tmp_path, no keyring session, none of the seed's
    variables."""
    base = {k: v for k, v in os.environ.items()
            if k not in SEED_VARIABLES and not k.startswith(("GHUBAI_", "DBUS_"))}
    base.update(GHUBAI_CONFIG=str(tmp_path / "config" / "config.toml"),
                GHUBAI_LOG_DIR=str(tmp_path / "logs"), HOME=str(tmp_path / "home"),
                XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONUNBUFFERED="1",
                # the session of one test: its workers' single-instance lock is theirs
                XDG_RUNTIME_DIR=str(tmp_path),
                # no test reaches past loopback: a release check finds nothing listening
                GHUBAI_UPDATE_URL="http://127.0.0.1:9/releases")
    return base


def offline_environment(home: Path) -> dict[str, str]:
    """Configured, with a token, but nothing answers at the hub's or Ollama's address
    (port 9, discard): for tests of the app itself rather than of its connections."""
    from tests.worker_bed import TOKEN

    return {**clean_environment(home), "XDG_RUNTIME_DIR": str(home), "PROVIDER_TOKEN": TOKEN,
            "HUB_URL": "http://127.0.0.1:9/gridhub", "OLLAMA_LOCAL_URL": "http://127.0.0.1:9"}


async def cli(*args: str, env: dict[str, str], stdin: bytes = b"",
              timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **SPAWN_FLAGS)
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def tray_app(env: dict[str, str], *args: str, stdout: int = asyncio.subprocess.PIPE,
                   stderr: int = asyncio.subprocess.PIPE
                   ) -> AsyncIterator[asyncio.subprocess.Process]:
    """``ghubai-tray`` (the tray, unless ``args`` say otherwise) as a real process; killed
    at the end if the test has not stopped it, so a failing test leaves no icon behind."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", *args, env=env, stdout=stdout, stderr=stderr)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def counterparts(hub: GridHub, ollama: OllamaStandIn
                       ) -> AsyncIterator[tuple[GridHub, OllamaStandIn]]:
    """The test hub and the Ollama stand-in, started, and stopped at the end."""
    await hub.start()
    await ollama.start()
    try:
        yield hub, ollama
    finally:
        await hub.stop()
        await ollama.stop()


@dataclass
class Headless:
    """A ``ghubai-tray --headless`` process between a test hub and an Ollama stand-in."""

    process: asyncio.subprocess.Process
    hub: GridHub
    ollama: OllamaStandIn
    stderr_path: Path
    env: dict[str, str]  # what it runs with: the CLI reaches it with the same

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@asynccontextmanager
async def headless_worker(tmp_path: Path, *, hub: GridHub | None = None,
                          ollama: OllamaStandIn | None = None, registers: bool = True,
                          environment: dict[str, str] | None = None,
                          **variables: str) -> AsyncIterator[Headless]:
    """Start hub, stand-in and a headless worker (its models registered once this yields,
    or, unless it ``registers``, once it asked the hub); stop all, the worker by SIGTERM
    (Ctrl-C on Windows), at the end. ``environment`` and ``variables`` are added to its
    environment."""
    from tests.worker_bed import TOKEN

    hub = hub or GridHub(tokens=[TOKEN])
    ollama = ollama or OllamaStandIn()
    await hub.start()
    await ollama.start()
    env = marked({**clean_environment(tmp_path), "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
                  "OLLAMA_LOCAL_URL": ollama.url, **(environment or {}), **variables})
    stderr_path = tmp_path / "worker-stderr.txt"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *python_for(env), "-m", "ghubai_tray", "--headless", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, **SPAWN_FLAGS)
    try:
        if registers:
            await hub.wait_until(lambda: any(n.models for n in hub.nodes.values()), 60,
                                 "the headless worker to register its models")
        else:
            await hub.wait_until(lambda: bool(hub.tokens_seen), 60,
                                 "the headless worker to negotiate")
        yield Headless(process, hub, ollama, stderr_path, env)
    finally:
        if process.returncode is None:
            stop_child(process, env)
        await asyncio.wait_for(process.wait(), 30)
        await hub.stop()
        await ollama.stop()


def memory_mb(pid: int) -> tuple[float, float]:
    """A process's peak and current resident memory in MiB (Windows: its working set)."""
    if not WINDOWS:
        fields = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        return (int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024)
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD)] + [
            (name, ctypes.c_size_t) for name in (
                "PeakWorkingSetSize", "WorkingSetSize", "QuotaPeakPagedPoolUsage",
                "QuotaPagedPoolUsage", "QuotaPeakNonPagedPoolUsage", "QuotaNonPagedPoolUsage",
                "PagefileUsage", "PeakPagefileUsage")]

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    psapi = ctypes.WinDLL("psapi", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    handle = kernel32.OpenProcess(0x1000 | 0x0010, False, pid)  # QUERY_LIMITED_INFORMATION|VM_READ
    assert handle, f"cannot open process {pid}"
    try:
        counters = Counters()
        counters.cb = ctypes.sizeof(counters)
        assert psapi.GetProcessMemoryInfo(wintypes.HANDLE(handle), ctypes.byref(counters),
                                          counters.cb), ctypes.get_last_error()  # type: ignore[attr-defined,unused-ignore]
    finally:
        kernel32.CloseHandle(wintypes.HANDLE(handle))
    mib = 1024 * 1024
    return counters.PeakWorkingSetSize / mib, counters.WorkingSetSize / mib

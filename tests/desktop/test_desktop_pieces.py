"""Start at login, single instance, diagnostics, no display: the desktop's small pieces."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ghubai_tray.adapters.autostart import (
    APPROVED_KEY,
    RUN_KEY,
    VALUE_NAME,
    LinuxAutostart,
    WindowsAutostart,
    desktop_entry,
    launch_command,
)
from ghubai_tray.adapters.single_instance import Holder, SingleInstance, lock_path
from ghubai_tray.core import texts
from ghubai_tray.core.settings import Settings
from ghubai_tray.desktop import system
from ghubai_tray.desktop.system import diagnostics
from tests.processes import clean_environment, cli, headless_worker
from tests.worker_bed import TOKEN


def test_autostart_adds_one_file_and_removes_exactly_it(tmp_path: Path) -> None:
    autostart = LinuxAutostart(tmp_path)
    (tmp_path / "autostart").mkdir()
    (tmp_path / "autostart" / "other.desktop").write_text("[Desktop Entry]\n")
    assert not autostart.enabled()
    autostart.set(True)
    assert autostart.enabled()
    text = autostart.path.read_text()
    assert text == desktop_entry(launch_command())
    assert "Exec=" in text and "-m ghubai_tray" in text and "Name=GhubAi Tray" in text
    autostart.set(False)
    assert not autostart.enabled()
    assert sorted(p.name for p in (tmp_path / "autostart").iterdir()) == ["other.desktop"]
    autostart.set(False)  # turning off twice is fine


def test_a_user_disabled_entry_reads_as_off(tmp_path: Path) -> None:
    autostart = LinuxAutostart(tmp_path)
    autostart.set(True)
    autostart.path.write_text(autostart.path.read_text() + "Hidden=true\n")
    assert not autostart.enabled()


async def test_a_second_instance_says_one_runs_and_exits(tmp_path: Path) -> None:
    lock = tmp_path / "ghubai-tray" / "ghubai-tray.lock"  # where XDG_RUNTIME_DIR puts it
    with SingleInstance(lock) as first:
        assert first
        assert not SingleInstance(lock).acquire()
        code, _, err = await cli(env={"XDG_RUNTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
                                      "GHUBAI_CONFIG": str(tmp_path / "c.toml"),
                                      "GHUBAI_LOG_DIR": str(tmp_path / "logs"),
                                      "HOME": str(tmp_path)})
        assert code == 1, err
        assert f"already running in the system tray, process {os.getpid()}, so this one" in err
    with SingleInstance(lock) as again:
        assert again, "the lock is free once the holder is gone"


async def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    # On Windows the path is not used: this is the real Local\\GhubAiTray mutex.
    lock = tmp_path / "l.lock"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, time; from ghubai_tray.adapters.single_instance import "
        "SingleInstance; s = SingleInstance(__import__('pathlib').Path(sys.argv[1])); "
        "print(s.acquire(), flush=True); time.sleep(60)", str(lock),
        stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None
    assert (await holder.stdout.readline()).strip() == b"True"
    assert not SingleInstance(lock).acquire()
    holder.kill()  # like kill -9: no clean-up code runs
    await holder.wait()
    with SingleInstance(lock) as mine:
        assert mine


@pytest.mark.skipif(sys.platform == "win32", reason="a Windows session always has its desktop")
async def test_no_display_suggests_headless(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           "GHUBAI_CONFIG": str(tmp_path / "c.toml"), "GHUBAI_LOG_DIR": str(tmp_path / "l"),
           "PROVIDER_TOKEN": TOKEN}
    code, _, err = await cli(env=env)
    assert code == 1 and texts.NO_DISPLAY in err


def test_diagnostics_hold_what_helps_and_never_the_token(tmp_path: Path) -> None:
    log = tmp_path / "ghubai-tray.log"
    log.write_text("line one\nAuthorization: Bearer abcdef\nlast line\n")
    report = diagnostics(Settings(hub_url="https://hub.example.com/gridhub"),
                         [(datetime(2026, 11, 24, 18, 0), "Sharing 2 models")], log, "gtk")
    assert report.startswith("GhubAi Tray ")
    assert "tray backend: gtk" in report
    assert "  hub_url = https://hub.example.com/gridhub  (default)" in report
    assert "  2026-11-24 18:00:00 Sharing 2 models" in report
    assert "  last line" in report and "abcdef" not in report
    missing = diagnostics(Settings(), [], tmp_path / "none.log", "gtk")
    assert "(cannot read the log:" in missing


@pytest.mark.parametrize("field", ["hub_url", "ollama_url", "max_concurrent_requests"])
def test_diagnostics_list_every_setting(field: str, tmp_path: Path) -> None:
    assert f"  {field} = " in diagnostics(Settings(), [], tmp_path / "x", "xorg")


windows_only = pytest.mark.skipif(sys.platform != "win32", reason="the Run key is Windows'")


@pytest.fixture
def run_key() -> Iterator[None]:
    """The real ``HKCU\\...\\Run`` key (of the Wine lane's fresh prefix), left as found."""
    if sys.platform != "win32":  # (the skip mark; and mypy, which checks on Linux)
        raise AssertionError("Windows only")
    import winreg

    yield
    for key in (RUN_KEY, APPROVED_KEY):
        with contextlib.suppress(OSError), winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
            winreg.DeleteValue(handle, VALUE_NAME)


@windows_only
@pytest.mark.usefixtures("run_key")
def test_start_at_login_writes_exactly_one_run_value_and_removes_it() -> None:
    if sys.platform != "win32":  # (the skip mark; and mypy, which checks on Linux)
        raise AssertionError("Windows only")
    import winreg

    autostart = WindowsAutostart()
    assert not autostart.enabled()
    autostart.set(True)
    assert autostart.enabled()
    with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
        command, kind = winreg.QueryValueEx(key, VALUE_NAME)
    assert kind == winreg.REG_SZ
    assert command == subprocess.list2cmdline(launch_command())
    autostart.set(False)
    assert not autostart.enabled()
    autostart.set(False)  # turning off twice is fine


@windows_only
@pytest.mark.usefixtures("run_key")
def test_an_entry_the_user_disabled_in_task_manager_reads_as_off() -> None:
    if sys.platform != "win32":  # (the skip mark; and mypy, which checks on Linux)
        raise AssertionError("Windows only")
    import winreg

    autostart = WindowsAutostart()
    autostart.set(True)
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, APPROVED_KEY) as key:
        # What Task Manager writes: 0x03 then a FILETIME (disabled); 0x02 is enabled.
        winreg.SetValueEx(key, VALUE_NAME, 0, winreg.REG_BINARY, bytes([3]) + bytes(11))
    assert not autostart.enabled()
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, APPROVED_KEY) as key:
        winreg.SetValueEx(key, VALUE_NAME, 0, winreg.REG_BINARY, bytes([2]) + bytes(11))
    assert autostart.enabled()


@windows_only
def test_copy_diagnostics_puts_the_text_on_the_windows_clipboard() -> None:
    import ctypes
    from ctypes import wintypes

    text = "GhubAi Tray diagnostics: é, 日本, 🙂\nsecond line"
    assert system.copy_text(text)
    user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined,unused-ignore]
    kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined,unused-ignore]
    user32.GetClipboardData.restype = wintypes.HANDLE
    kernel32.GlobalLock.restype = ctypes.c_void_p
    kernel32.GlobalLock.argtypes = (wintypes.HGLOBAL,)
    kernel32.GlobalUnlock.argtypes = (wintypes.HGLOBAL,)
    assert user32.OpenClipboard(None)
    try:
        handle = user32.GetClipboardData(13)  # CF_UNICODETEXT
        assert handle
        pasted = ctypes.wstring_at(kernel32.GlobalLock(handle))
        kernel32.GlobalUnlock(handle)
    finally:
        user32.CloseClipboard()
    assert pasted == text


async def test_one_worker_per_user_whatever_the_mode(tmp_path: Path) -> None:
    async with headless_worker(tmp_path) as run:
        env = {**clean_environment(tmp_path), "PROVIDER_TOKEN": TOKEN,
               "HUB_URL": run.hub.url, "OLLAMA_LOCAL_URL": run.ollama.url}
        for mode in (["--headless"], []):  # a second headless, then a tray
            code, out, err = await cli(*mode, env=env)
            assert code == 1, err
            assert ("already running without a tray (--headless, process "
                    f"{run.process.pid}), so this one does not start") in err
        assert len([n for n in run.hub.nodes.values() if n.models]) == 1, "one worker"


@pytest.mark.skipif(sys.platform == "win32", reason="the lock file is Linux's (Windows: a mutex)")
def test_the_session_folder_keeps_its_modes_and_ours_in_it_is_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$XDG_RUNTIME_DIR is the session's: the worker once chmodded it to 0700 itself."""
    session = tmp_path / "run"
    session.mkdir(mode=0o755)
    session.chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(session))
    with SingleInstance(mode="headless") as first:
        assert first
        assert session.stat().st_mode & 0o777 == 0o755
        assert lock_path().parent == session / "ghubai-tray"
        assert lock_path().parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(sys.platform == "win32", reason="the lock file is Linux's (Windows: a mutex)")
def test_without_a_session_folder_the_lock_is_in_a_private_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = lock_path()
    assert path.is_relative_to(tmp_path / "cache"), "never the world-writable /tmp"
    with SingleInstance(mode="headless") as first:
        assert first
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert SingleInstance(mode="tray").holder() == Holder("headless", os.getpid())

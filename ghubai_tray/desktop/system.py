"""Small desktop chores: open a folder, put text on the clipboard, the diagnostics report.

Each is a best effort with an honest answer: where a platform lacks the tool
(no ``xclip`` or ``wl-copy`` on a minimal Linux), the function says so and the
caller falls back (the diagnostics are also saved to a file and opened).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from ghubai_tray import __version__
from ghubai_tray.adapters.logs import log_dir, redact
from ghubai_tray.adapters.owner_only import child_environment, write_private_text
from ghubai_tray.core.settings import SETTINGS, Settings, shown_setting

LOG_TAIL = 200


def _reaped(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Wait for a helper program on a daemon thread, so it leaves no zombie behind."""
    threading.Thread(target=proc.wait, daemon=True, name="reap-helper").start()
    return proc


def open_path(path: Path | str) -> bool:
    """Show a folder, file or web page in the desktop's own application; False if
    nothing can."""
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            os.startfile(path)  # type: ignore[attr-defined,unused-ignore]
        elif sys.platform == "darwin":  # pragma: no cover
            _reaped(subprocess.Popen(["open", str(path)], start_new_session=True,
                                     env=child_environment()))
        else:
            _reaped(subprocess.Popen(["xdg-open", str(path)], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=child_environment()))
    except OSError:
        return False
    return True


def open_url(url: str) -> bool:
    """A web page in the owner's browser (a release's notes); False if none can open."""
    if not url.startswith(("https://", "http://")):
        return False  # only web pages: the address comes from a feed
    return open_path(url)


@functools.cache
def installed_by_deb() -> bool:
    """This program is the one the ``ghubai-tray`` Debian package installed (an update is
    then installed with apt, and the notice says so)."""
    listed = Path("/var/lib/dpkg/info/ghubai-tray.list")
    try:
        return getattr(sys, "frozen", False) and \
            str(Path(sys.executable).resolve()) in listed.read_text(encoding="utf-8")
    except OSError:
        return False


def share_diagnostics(report: str) -> str:
    """The report saved (owner-only) and on the clipboard, or shown when no clipboard
    takes it; what happened, in words."""
    saved = write_private_text(log_dir() / "diagnostics.txt", report)
    if copy_text(report):
        return f"Diagnostics copied to the clipboard (also saved in {saved})."
    open_path(saved)
    return f"Diagnostics saved in {saved}."


def copy_text(text: str) -> bool:
    """Put ``text`` on the clipboard; False when no clipboard tool is available."""
    if sys.platform == "win32":
        return _copy_windows(text)
    tools = (["wl-copy"], ["xclip", "-selection", "clipboard"], ["xsel", "--clipboard",
                                                                 "--input"])
    command = next((t for t in tools if shutil.which(t[0])), [])
    data = text.encode()
    if not command:
        return False
    try:
        # The tool keeps serving the clipboard after we return (X11 needs an owner).
        proc = _reaped(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        env=child_environment()))
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()
    except OSError:
        return False
    return True


def _copy_windows(text: str) -> bool:
    """The Win32 clipboard itself (CF_UNICODETEXT), not ``clip.exe``: no child process to
    hand an environment to, no console window flashing up, and it works where clip.exe
    is missing (Wine has none)."""
    import ctypes
    from ctypes import wintypes

    user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.GlobalAlloc.restype = wintypes.HGLOBAL
    kernel32.GlobalAlloc.argtypes = (wintypes.UINT, ctypes.c_size_t)
    kernel32.GlobalLock.restype = ctypes.c_void_p
    kernel32.GlobalLock.argtypes = (wintypes.HGLOBAL,)
    kernel32.GlobalUnlock.argtypes = (wintypes.HGLOBAL,)
    kernel32.GlobalFree.argtypes = (wintypes.HGLOBAL,)
    user32.SetClipboardData.restype = wintypes.HANDLE
    user32.SetClipboardData.argtypes = (wintypes.UINT, wintypes.HANDLE)
    data = (text + "\0").encode("utf-16-le")
    for _ in range(10):  # another program may hold the clipboard for a moment
        if user32.OpenClipboard(None):
            break
        time.sleep(0.05)
    else:
        return False
    try:
        user32.EmptyClipboard()
        memory = kernel32.GlobalAlloc(0x0002, len(data))  # GMEM_MOVEABLE
        if not memory:
            return False
        pointer = kernel32.GlobalLock(memory)
        ctypes.memmove(pointer, data, len(data))
        kernel32.GlobalUnlock(memory)
        if not user32.SetClipboardData(13, memory):  # CF_UNICODETEXT; Windows owns it now
            kernel32.GlobalFree(memory)
            return False
        return True
    finally:
        user32.CloseClipboard()


def diagnostics(settings: Settings, history: Iterable[tuple[datetime, str]], log_file: Path | None,
                backend: str) -> str:
    """A report to paste into a support request: versions, settings, states, last log lines.

    The token is never part of it (it is not a setting), and the whole text
    goes through the log redactor as well.
    """
    lines = [f"GhubAi Tray {__version__}", f"Python {platform.python_version()} on "
             f"{platform.platform()}", f"tray backend: {backend}",
             f"frozen: {bool(getattr(sys, 'frozen', False))}", "", "settings:"]
    lines += [f"  {s.key} = {shown_setting(settings, s.key)}  ({settings.source(s.key)})"
              for s in SETTINGS]
    lines += ["", "state history:"]
    lines += [f"  {when:%Y-%m-%d %H:%M:%S} {text}" for when, text in history]
    lines += ["", f"last log lines ({log_file or 'no log file: its folder cannot be written'}):"]
    try:
        tail = [] if log_file is None else log_file.read_text(
            encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL:]
    except OSError as exc:
        tail = [f"(cannot read the log: {exc})"]
    lines += [f"  {line}" for line in tail]
    return redact("\n".join(lines) + "\n")

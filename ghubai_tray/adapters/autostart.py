"""Start at login: an XDG autostart entry on Linux, the ``Run`` key on Windows.

Turning it off removes exactly what turning it on added. On Windows, a user
who disabled the entry in Task Manager has it recorded under
``Explorer\\StartupApproved\\Run``; rewriting the ``Run`` value does not undo
that, so we report it as off and say nothing more (respecting the choice).
The installer's "start at login" page writes the same value, under the same
name, so the app and the installer agree.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

APP_ID = "ghubai-tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
VALUE_NAME = "GhubAi Tray"


def launch_command() -> list[str]:
    """How to start this very installation again (frozen build or Python)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "ghubai_tray"]


def desktop_entry(command: list[str]) -> str:
    return "\n".join([
        "[Desktop Entry]", "Type=Application", "Name=GhubAi Tray",
        "Comment=Share your GPU with a GhubAi hub", f"Exec={shlex.join(command)}",
        "Icon=ghubai-tray", "Terminal=false", "X-GNOME-Autostart-enabled=true",
        "Categories=Network;", ""])


class LinuxAutostart:
    """``~/.config/autostart/ghubai-tray.desktop`` (``$XDG_CONFIG_HOME`` respected)."""

    def __init__(self, config_home: Path | None = None) -> None:
        base = config_home or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        self.path = base / "autostart" / f"{APP_ID}.desktop"

    def enabled(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return False
        return "Hidden=true" not in text.replace(" ", "")

    def set(self, enabled: bool) -> None:
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(desktop_entry(launch_command()), encoding="utf-8")
        else:
            self.path.unlink(missing_ok=True)


class WindowsAutostart:  # pragma: no cover - Windows only; untested here (no Windows machine)
    def enabled(self) -> bool:
        if sys.platform != "win32":
            raise NotImplementedError("the Run key exists on Windows only")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                winreg.QueryValueEx(key, VALUE_NAME)
        except OSError:
            return False
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, APPROVED_KEY) as key:
                data, _ = winreg.QueryValueEx(key, VALUE_NAME)
        except OSError:
            return True
        # First byte 0x02 or 0x06: enabled; 0x03 or 0x07: disabled by the user.
        return not (isinstance(data, bytes) and data and data[0] & 1)

    def set(self, enabled: bool) -> None:
        if sys.platform != "win32":
            raise NotImplementedError("the Run key exists on Windows only")
        import subprocess
        import winreg

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            if enabled:
                winreg.SetValueEx(key, VALUE_NAME, 0, winreg.REG_SZ,
                                  subprocess.list2cmdline(launch_command()))
            else:
                try:
                    winreg.DeleteValue(key, VALUE_NAME)
                except FileNotFoundError:
                    pass


Autostart = LinuxAutostart | WindowsAutostart


def for_this_platform() -> Autostart | None:
    if sys.platform == "win32":
        return WindowsAutostart()
    if sys.platform.startswith("linux"):
        return LinuxAutostart()
    return None

"""What the desktop says about its owner: a full-screen app in front, idle time, battery, GPU.

Each reading answers ``None`` when this computer cannot tell (no X display, a
Wayland session without X, no battery, no NVIDIA driver): the rules treat that as
"nothing holds sharing", and ``doctor`` says "not available" for a rule that is
on. Every call is blocking and cheap (an X round trip, a few small files, a
Win32 call); the worker makes them off its event loop, one look every few
seconds. Nothing here may raise: a desktop that misbehaves is "cannot tell".

- Full screen: on X11 the active window (``_NET_ACTIVE_WINDOW``) has
  ``_NET_WM_STATE_FULLSCREEN`` in its ``_NET_WM_STATE``; on Windows
  ``SHQueryUserNotificationState`` answers busy, Direct3D full screen or
  presentation mode.
- Idle: X11's MIT-SCREEN-SAVER extension (milliseconds since the last input);
  in a Wayland session (or with no X display) GNOME Shell's IdleMonitor over
  D-Bus; Windows ``GetLastInputInfo``.
- Battery: Linux ``/sys/class/power_supply`` (a mains supply online means not on
  battery); Windows ``GetSystemPowerStatus``.
- GPU: NVML's process lists (see :mod:`ghubai_tray.adapters.nvml`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ghubai_tray.adapters.nvml import Nvml

log = logging.getLogger(__name__)
T = TypeVar("T")

POWER_SUPPLY = Path("/sys/class/power_supply")
# SHQueryUserNotificationState: QUNS_BUSY (a full-screen app, or presentation
# settings), QUNS_RUNNING_D3D_FULL_SCREEN, QUNS_PRESENTATION_MODE.
_QUNS_FULL_SCREEN = frozenset({2, 3, 4})


class X11:
    """One X connection for the readings, opened on first use and again after an error
    (the display can go and come back with the session)."""

    def __init__(self, display_name: str | None = None) -> None:
        self._name = display_name
        self._display: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        if self._display is None:
            name = self._name or os.environ.get("DISPLAY")
            if not name or not _may_listen(name):
                return None
            from Xlib import display

            self._display = display.Display(name)
        return self._display

    def _ask(self, question: Any) -> Any:
        with self._lock:
            try:
                d = self._open()
                return None if d is None else question(d)
            except Exception as exc:  # no X, a closed display, a window that just went
                log.debug("X11 reading failed: %s: %s", type(exc).__name__, exc)
                self._close_locked()
                return None

    def _close_locked(self) -> None:
        if self._display is not None:
            try:
                self._display.close()
            except Exception:  # noqa: S110 - closing a broken connection
                pass
            self._display = None

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def fullscreen(self) -> bool | None:
        return self._ask(_fullscreen)  # type: ignore[no-any-return]

    def idle_seconds(self) -> float | None:
        return self._ask(_idle_seconds)  # type: ignore[no-any-return]


def _may_listen(name: str) -> bool:
    """Whether a local display has its socket: python-xlib leaks the sockets of a failed
    connection, and the worker looks every few seconds."""
    host, _, rest = name.partition(":")
    if host and host != "unix":
        return True  # over TCP (an SSH-forwarded display): only trying tells
    number = rest.split(".", 1)[0]
    return number.isdigit() and Path(f"/tmp/.X11-unix/X{number}").exists()


def _fullscreen(d: Any) -> bool | None:
    from Xlib import X
    from Xlib.error import BadWindow

    root = d.screen().root
    active = root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
    if active is None or not len(active.value):
        return None  # no EWMH window manager: nobody says which window is in front
    window_id = int(active.value[0])
    if window_id == 0:
        return False
    try:
        window = d.create_resource_object("window", window_id)
        state = window.get_full_property(d.intern_atom("_NET_WM_STATE"), X.AnyPropertyType)
    except BadWindow:
        return False  # it closed between the two questions
    full = d.intern_atom("_NET_WM_STATE_FULLSCREEN")
    return state is not None and full in list(state.value)


def _idle_seconds(d: Any) -> float | None:
    if not d.has_extension("MIT-SCREEN-SAVER"):
        return None
    from Xlib.ext import screensaver  # noqa: F401 - registers the request on windows

    info = d.screen().root.screensaver_query_info()
    return float(info.idle) / 1000.0


GNOME_IDLE = ("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
              "org.gnome.Mutter.IdleMonitor", "GetIdletime")


def gnome_idle_seconds() -> float | None:
    """GNOME Shell's idle time over the session bus (``GetIdletime``, milliseconds): what
    a Wayland session offers, where X11's screen-saver extension sees only X clients'
    input. None without PyGObject, a session bus or GNOME Shell."""
    try:
        from gi.repository import Gio, GLib
    except Exception:  # PyGObject is the tray menu's optional extra
        return None
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync(*GNOME_IDLE, None, GLib.VariantType("(t)"),
                              Gio.DBusCallFlags.NO_AUTO_START, 1000, None)
        return float(reply.unpack()[0]) / 1000.0
    except Exception as exc:  # GLib.Error: no bus, no such service
        log.debug("GNOME idle time unavailable: %s", exc)
        return None


def linux_on_battery(root: Path = POWER_SUPPLY) -> bool | None:
    """True when a battery discharges and no mains supply is online; None: no supply
    is listed (a container, a desktop without the class)."""
    try:
        supplies = [p for p in root.iterdir() if (p / "type").is_file()]
    except OSError:
        return None
    if not supplies:
        return None
    batteries, mains_online = [], False
    for supply in supplies:
        kind = _read(supply / "type")
        if kind in ("Mains", "USB", "USB_C", "USB_PD"):
            mains_online |= _read(supply / "online") == "1"
        elif kind == "Battery" and _read(supply / "scope") != "Device":  # not a mouse's
            batteries.append(_read(supply / "status"))
    if not batteries:
        return False  # no battery of the computer's own: always on mains
    if mains_online:
        return False
    return any(status == "Discharging" for status in batteries)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


class _PowerStatus(ctypes.Structure):
    _fields_ = [("ACLineStatus", ctypes.c_ubyte), ("BatteryFlag", ctypes.c_ubyte),
                ("BatteryLifePercent", ctypes.c_ubyte), ("SystemStatusFlag", ctypes.c_ubyte),
                ("BatteryLifeTime", ctypes.c_ulong), ("BatteryFullLifeTime", ctypes.c_ulong)]


class _LastInput(ctypes.Structure):
    _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_ulong)]


def windows_on_battery() -> bool | None:  # pragma: no cover - Windows only
    status = _PowerStatus()
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    if not kernel32.GetSystemPowerStatus(ctypes.byref(status)):
        return None
    line, flag = int(status.ACLineStatus), int(status.BatteryFlag)
    if flag == 128:  # no system battery
        return False
    if line == 255:
        return None
    return line == 0


def windows_idle_seconds() -> float | None:  # pragma: no cover - Windows only
    info = _LastInput(ctypes.sizeof(_LastInput), 0)
    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    if not user32.GetLastInputInfo(ctypes.byref(info)):
        return None
    now = ctypes.windll.kernel32.GetTickCount() & 0xFFFFFFFF  # type: ignore[attr-defined]
    return float((now - info.dwTime) & 0xFFFFFFFF) / 1000.0


def windows_fullscreen() -> bool | None:  # pragma: no cover - Windows only
    state = ctypes.c_int(0)
    shell32 = ctypes.windll.shell32  # type: ignore[attr-defined]
    if shell32.SHQueryUserNotificationState(ctypes.byref(state)) != 0:
        return None
    return state.value in _QUNS_FULL_SCREEN


class DesktopSignals:
    """The readings for this platform, one object the worker asks (off its loop)."""

    def __init__(self, power_supply: Path = POWER_SUPPLY, display: str | None = None,
                 nvml: Nvml | None = None) -> None:
        self._x11 = X11(display) if sys.platform != "win32" else None
        self._power_supply = power_supply
        self._nvml = nvml or Nvml()

    def fullscreen(self) -> bool | None:
        if self._x11 is None:  # pragma: no cover - Windows only
            return _guarded(windows_fullscreen)
        return self._x11.fullscreen()

    def idle_seconds(self) -> float | None:
        if self._x11 is None:  # pragma: no cover - Windows only
            return _guarded(windows_idle_seconds)
        if os.environ.get("XDG_SESSION_TYPE") == "wayland" or not os.environ.get("DISPLAY"):
            idle = gnome_idle_seconds()
            if idle is not None:
                return idle
        return self._x11.idle_seconds()

    def on_battery(self) -> bool | None:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            return _guarded(windows_on_battery)
        return linux_on_battery(self._power_supply)

    def gpu_busy(self) -> bool | None:
        return self._nvml.busy()

    def close(self) -> None:
        self._nvml.close()
        if self._x11 is not None:
            self._x11.close()


def _guarded(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except Exception as exc:  # a DLL or entry point missing: cannot tell
        log.debug("desktop reading failed: %s: %s", type(exc).__name__, exc)
        return None

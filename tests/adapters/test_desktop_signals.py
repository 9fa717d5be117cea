"""The desktop's signals read from a real X server with a real window manager.

Xvfb with openbox (an EWMH window manager: it sets ``_NET_ACTIVE_WINDOW`` and
``_NET_WM_STATE``), a real Tk window in another process, made full screen by
``wmctrl`` asking the window manager as any app's "full screen" button does, and
the pointer moved by ``xdotool`` (real X input events, which reset the
MIT-SCREEN-SAVER idle time). The battery reading is checked on small copies of
``/sys/class/power_supply`` trees: sysfs itself cannot be changed here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghubai_tray.adapters.desktop_signals import X11, DesktopSignals, linux_on_battery
from tests.paths import ARTIFACTS
from tests.testbed.desktop import Desktop, desktop_available, real_desktop, wait_for

needs_x = pytest.mark.skipif(
    sys.platform == "win32" or not desktop_available() or not shutil.which("openbox")
    or not shutil.which("wmctrl"), reason="needs Xvfb, openbox and wmctrl (make setup)")

GAME = "import tkinter; t = tkinter.Tk(); t.title('a game'); t.geometry('300x200'); t.mainloop()"


@pytest.fixture
def desk() -> Iterator[Desktop]:
    with real_desktop(ARTIFACTS / "signals", tray_host=False, window_manager=True) as desk:
        yield desk


@pytest.fixture
def game(desk: Desktop) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", GAME], env={**desk.env})
    try:
        wait_for("the game's window", lambda: desk.managed("a game"), 30)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


@needs_x
def test_a_window_made_full_screen_is_seen_and_so_is_its_end(
        desk: Desktop, game: subprocess.Popen[bytes]) -> None:
    x11 = X11(desk.env["DISPLAY"])
    try:
        desk.run("wmctrl", "-a", "a game")  # in front, as a click on it would do
        wait_for("the game in front, not full screen", lambda: x11.fullscreen() is False, 30)
        desk.run("wmctrl", "-r", "a game", "-b", "add,fullscreen")
        wait_for("full screen to be seen", lambda: x11.fullscreen() is True, 30)
        desk.run("wmctrl", "-r", "a game", "-b", "remove,fullscreen")
        wait_for("the end of full screen", lambda: x11.fullscreen() is False, 30)
    finally:
        x11.close()


@needs_x
def test_idle_time_grows_and_input_resets_it(desk: Desktop) -> None:
    x11 = X11(desk.env["DISPLAY"])
    try:
        desk.run("xdotool", "mousemove", "10", "10")
        wait_for("idle time to grow past 1 s", lambda: (x11.idle_seconds() or 0) > 1.0, 30)
        desk.run("xdotool", "mousemove", "200", "200")
        idle = x11.idle_seconds()
        assert idle is not None and idle < 1.0
    finally:
        x11.close()


def test_no_display_cannot_tell_and_does_not_raise() -> None:
    x11 = X11(":250")  # nothing listens there
    assert x11.fullscreen() is None and x11.idle_seconds() is None


def _supply(root: Path, name: str, **files: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in files.items():
        (folder / key).write_text(value + "\n")


def test_battery_from_power_supply_trees(tmp_path: Path) -> None:
    laptop = tmp_path / "laptop"
    _supply(laptop, "AC", type="Mains", online="0")
    _supply(laptop, "BAT0", type="Battery", status="Discharging")
    assert linux_on_battery(laptop) is True
    (laptop / "AC" / "online").write_text("1\n")
    assert linux_on_battery(laptop) is False
    desktop = tmp_path / "desktop"
    _supply(desktop, "hidpp_battery_0", type="Battery", status="Discharging", scope="Device")
    assert linux_on_battery(desktop) is False  # a wireless mouse's battery is not ours
    assert linux_on_battery(tmp_path / "none") is None
    assert DesktopSignals(power_supply=laptop, display=":250").on_battery() is False


@pytest.mark.skipif(sys.platform != "win32", reason="the Win32 calls (the Windows lane, Wine)")
def test_the_win32_readings_answer() -> None:
    """Under Wine these are Wine's own SHQueryUserNotificationState, GetLastInputInfo and
    GetSystemPowerStatus: they answer, nothing is full screen and this machine has no
    battery. What they say for a real full-screen game or a laptop unplugged only real
    Windows can show."""
    signals = DesktopSignals()
    assert signals.fullscreen() is False
    idle = signals.idle_seconds()
    assert idle is not None and idle >= 0
    assert signals.on_battery() is False


ASK_IDLE = ("from ghubai_tray.adapters.desktop_signals import DesktopSignals; "
            "print(DesktopSignals().idle_seconds())")


@pytest.mark.skipif(sys.platform == "win32" or not shutil.which("dbus-daemon"),
                    reason="needs a D-Bus session daemon (make setup)")
def test_in_a_wayland_session_idle_time_comes_from_gnome_over_d_bus(tmp_path: Path) -> None:
    pytest.importorskip("gi")
    bus = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1",
                          "--print-pid=1", "--nopidfile"], capture_output=True, text=True,
                         check=True, timeout=30)
    address, pid = bus.stdout.split()[:2]
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address, "XDG_SESSION_TYPE": "wayland"}
    env.pop("DISPLAY", None)
    monitor = subprocess.Popen([sys.executable, str(Path(__file__).parents[1] / "data" /
                                                    "gnome" / "idle_monitor.py"), "754000"],
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert monitor.stdout is not None and monitor.stdout.readline().strip() == "ready"
        asked = subprocess.run([sys.executable, "-c", ASK_IDLE], env=env, capture_output=True,
                               text=True, timeout=60, check=True)
        assert asked.stdout.strip() == "754.0"
        monitor.terminate()
        monitor.wait(10)
        gone = subprocess.run([sys.executable, "-c", ASK_IDLE], env=env, capture_output=True,
                              text=True, timeout=60, check=True)
        assert gone.stdout.strip() == "None"  # no GNOME Shell, no X display: cannot tell
    finally:
        monitor.kill()
        monitor.wait(10)
        if monitor.stdout is not None:
            monitor.stdout.close()
        os.kill(int(pid), 15)

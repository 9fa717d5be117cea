"""A real desktop for tray tests: Xvfb, a D-Bus session, a tray host, a notification daemon.

Nothing is simulated: the app draws into a real X server, ``trayer`` embeds
its icon through the XEmbed system-tray protocol, ``dunst`` shows its
notifications, and the test drives it like a person would, with the mouse
and keyboard through ``xdotool``. Facts this relies on are in PLATFORM.md:
the icon is a child of trayer's ``panel`` window; a right click opens the
Gtk menu; arrow keys walk it (disabled items and separators are skipped).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ghubai_tray.desktop.menu import Item

TOOLS = ("Xvfb", "trayer", "xdotool", "xwininfo", "import", "dbus-daemon", "dunst")


def desktop_available() -> bool:
    return all(shutil.which(tool) for tool in TOOLS)


def _free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(
                f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number")


_WINDOW = re.compile(r'^\s*(0x[0-9a-f]+) (?:"([^"]*)"|\(has no name\)): \(([^)]*)\)\s+'
                     r"(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)")


@dataclass(frozen=True)
class Window:
    id: str
    name: str
    wm_class: str
    width: int
    height: int
    x: int
    y: int


@dataclass
class Desktop:
    env: dict[str, str]
    artifacts: Path

    def run(self, *args: str) -> str:
        return subprocess.run(list(args), env={**os.environ, **self.env}, text=True,
                              capture_output=True, timeout=30, check=True).stdout

    def windows(self, *, tree: bool = True) -> list[Window]:
        # A window destroyed while xwininfo walks the tree makes it fail (BadWindow): the
        # tree is changing (an app starting or stopping), so walk it again.
        for attempt in range(5):
            try:
                listing = self.run("xwininfo", "-root", "-tree" if tree else "-children")
                break
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
        found = []
        for line in listing.splitlines():
            m = _WINDOW.match(line)
            if m:
                found.append(Window(m[1], m[2] or "", m[3], *map(int, m.groups()[3:])))
        return found

    def tray_icon(self) -> Window | None:
        """Our icon once embedded in trayer's panel at its real size (it starts 1 px wide)."""
        return next((w for w in self.windows() if w.name.startswith("GhubAi —")
                     and w.width > 4 and w.height > 4), None)

    def icon_title(self) -> str:
        icon = self.tray_icon()
        return icon.name if icon else ""

    def open_menu(self) -> None:
        icon = wait_for("the tray icon", self.tray_icon)
        self.close_menus()
        self.run("xdotool", "mousemove", str(icon.x + icon.width // 2),
                 str(icon.y + icon.height // 2))
        self.run("xdotool", "click", "3")
        wait_for("the menu to open", self.menu_open)

    def menu_open(self) -> bool:
        """Whether one of the app's Gtk menus (a top-level popup of its class) is on screen."""
        for window in self.windows(tree=False):
            if '"ghubai-tray"' in window.wm_class and window.width > 80 and window.height > 40:
                info = self.run("xwininfo", "-id", window.id)
                if "IsViewable" in info:
                    return True
        return False

    def close_menus(self) -> None:
        while self.menu_open():
            self.press("Escape")

    def press(self, *keys: str) -> None:
        for key in keys:
            self.run("xdotool", "key", key)
            # Gtk opens submenus after a short delay and drops keys sent before: there is
            # no X event for "submenu ready", so pace the keys like a (fast) person.
            time.sleep(0.2)

    def managed(self, title: str) -> bool:
        """The window manager lists a window of this title (``wmctrl`` can act on it)."""
        listed = subprocess.run(["wmctrl", "-l"], env={**os.environ, **self.env},
                                capture_output=True, text=True, timeout=10)
        return any(line.endswith(f" {title}") for line in listed.stdout.splitlines())

    def screenshot(self, name: str, crop: tuple[int, int, int, int] | None = None) -> Path:
        path = self.artifacts / name
        args = ["import", "-window", "root"]
        if crop:
            args += ["-crop", "{}x{}+{}+{}".format(*crop)]
        self.run(*args, str(path))
        return path


T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll ``probe`` until it answers: X offers no event to wait on for these."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def keys_to(menu: Sequence[Item], path: Sequence[str]) -> list[str]:
    """The key presses that walk an open menu to ``path`` and activate it."""
    keys: list[str] = []
    items = menu
    for depth, text in enumerate(path):
        selectable = [i for i in items if not i.is_separator and i.enabled]
        index = next(n for n, i in enumerate(selectable) if i.text == text)
        keys += ["Down"] * (index + 1) if depth == 0 else ["Down"] * index
        target = selectable[index]
        if target.submenu:
            keys.append("Right")
            items = target.submenu
        else:
            keys.append("Return")
    return keys


@contextlib.contextmanager
def real_desktop(artifacts: Path, extra_env: dict[str, str] | None = None, *,
                 tray_host: bool = True, window_manager: bool = False,
                 notifications: bool = True) -> Iterator[Desktop]:
    """Xvfb + a session bus (unless given one) + trayer + dunst, torn down afterwards;
    ``tray_host=False`` leaves trayer out: a desktop like stock GNOME, with no tray;
    ``window_manager=True`` adds openbox, an EWMH window manager (the active window,
    full screen) for the rules that read them; ``notifications=False``: a bus of its own
    whose notification service fails each time D-Bus starts it, as a broken daemon does."""
    number = _free_display()
    display = f":{number}"
    env = {"DISPLAY": display, **(extra_env or {})}
    children: list[subprocess.Popen[bytes]] = []
    bus_pid: int | None = None

    def start(*command: str) -> None:
        children.append(subprocess.Popen(list(command), env={**os.environ, **env},
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL))

    try:
        # -noreset: an X server resets when its last client leaves, deleting the root
        # window's properties, so a test's setting (Xft.dpi) made before trayer connects
        # was sometimes gone by the time the app looked
        start("Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset")
        wait_for("Xvfb", lambda: Path(f"/tmp/.X11-unix/X{number}").exists())
        if "DBUS_SESSION_BUS_ADDRESS" not in env or not notifications:
            config = (["--config-file", str(_failing_notifications_bus(artifacts))]
                      if not notifications else ["--session"])
            bus = subprocess.run(["dbus-daemon", *config, "--fork", "--print-address=1",
                                  "--print-pid=1", "--nopidfile"], capture_output=True,
                                 text=True, check=True, timeout=30)
            env["DBUS_SESSION_BUS_ADDRESS"], pid = bus.stdout.split()[:2]
            bus_pid = int(pid)
        if window_manager:
            start("openbox", "--sm-disable")
            wait_for("openbox to manage the display", lambda: subprocess.run(
                ["wmctrl", "-m"], env={**os.environ, **env}, capture_output=True,
                timeout=10).returncode == 0, 30)
        if tray_host:
            start("trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                  "--height", "32", "--SetDockType", "true", "--transparent", "false",
                  "--tint", "0xcccccc", "--expand", "true")
        if notifications:
            start("dunst")
            # Until dunst holds its name, an app's first call would make D-Bus start a
            # second one, which crashes on the name the first is taking.
            wait_for("dunst on the session bus", lambda: "true" in subprocess.run(
                ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                 "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                 "string:org.freedesktop.Notifications"], env={**os.environ, **env},
                capture_output=True, text=True, timeout=10).stdout, 30)
        artifacts.mkdir(parents=True, exist_ok=True)
        yield Desktop(env, artifacts)
    finally:
        for proc in reversed(children):
            proc.terminate()
        for proc in reversed(children):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:  # never left running (nor its Popen unreaped:
                proc.kill()                    # a ResourceWarning in a later test)
                proc.wait()
        if bus_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(bus_pid, 15)


def _failing_notifications_bus(artifacts: Path) -> Path:
    """A session bus configuration whose org.freedesktop.Notifications exits at once."""
    folder = artifacts / "failing-bus"
    services = folder / "services"
    services.mkdir(parents=True, exist_ok=True)
    (services / "org.freedesktop.Notifications.service").write_text(
        "[D-BUS Service]\nName=org.freedesktop.Notifications\nExec=/bin/false\n")
    config = folder / "session.conf"
    config.write_text(f"""<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
    return config

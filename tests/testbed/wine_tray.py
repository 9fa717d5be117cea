"""Driving the Windows tray app's icon and Win32 menu under Wine, from X (xdotool): for
the tests of the installed app (tests/test_windows_dist.py, tests/test_windows_update.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tests.testbed.desktop import Desktop, Window, wait_for

T = TypeVar("T")


def icons(desk: Desktop) -> list[Window]:
    """Wine docks each tray icon as an explorer.exe window inside trayer's panel; the icon
    of a tray that has just quit can linger there beside the new one for a while."""
    panel = next((w for w in desk.windows() if w.name == "panel"), None)
    if panel is None:
        return []
    return [w for w in desk.windows() if '"explorer.exe"' in w.wm_class
            and w.width > 4 and w.height > 4 and w.width <= panel.width
            and panel.x <= w.x < panel.x + panel.width and w.y < panel.height]


def icon(desk: Desktop) -> Window | None:
    return next(iter(icons(desk)), None)


def menu_window(desk: Desktop) -> Window | None:
    """The Win32 popup menu: an unnamed top-level window of the app, menu-sized."""
    return next((w for w in desk.windows(tree=False) if '"ghubai-tray.exe"' in w.wm_class
                 and not w.name and w.width > 150 and w.height > 100), None)


def click(desk: Desktop, window: Window, button: str) -> None:
    desk.run("xdotool", "mousemove", str(window.x + window.width // 2),
             str(window.y + window.height // 2))
    time.sleep(0.3)  # Wine's tray forwards a click only once the pointer is in
    desk.run("xdotool", "click", button)


def click_until(desk: Desktop, button: str, what: str, answer: Callable[[], T | None],
                settle: float) -> T:
    """Click until ``answer`` shows, trying each docked icon in turn: a click can be lost
    while Wine's tray settles (after a window of the app closes, say), and a lingering
    icon of an earlier tray answers none. ``settle`` is how long one click may take to
    show its answer before the next is tried; the app opens one Settings window and one
    menu however often it is clicked."""
    attempts = [0]

    def answered() -> T | None:
        if (found := answer()) is None:
            docked = wait_for("the tray icon", lambda: icons(desk))
            click(desk, docked[attempts[0] % len(docked)], button)
            attempts[0] += 1
            deadline = time.monotonic() + settle
            while (found := answer()) is None and time.monotonic() < deadline:
                time.sleep(0.1)
        return found

    return wait_for(what, answered, 90)


def open_menu(desk: Desktop) -> Window:
    return click_until(desk, "3", "the Win32 menu", lambda: menu_window(desk), 2)

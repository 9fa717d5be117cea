"""Tk windows at the desktop's scale: Windows' real DPI, Linux's ``Xft.dpi``.

The Settings and Activity windows are Tk processes of their own; both call
:func:`dpi_aware` before the window exists and :func:`scale_to_desktop` after, so
that their text has the size of every other app's on a 150 % desktop.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tkinter as tk


def dpi_aware() -> None:
    """Windows: draw at the display's real DPI (Tk then scales its fonts to it) rather
    than be stretched, blurred, by the system. Before the window exists; once a process."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import ctypes

        with contextlib.suppress(AttributeError, OSError):
            ctypes.windll.shcore.SetProcessDpiAwareness(1)  # type: ignore[attr-defined]


def scale_to_desktop(root: tk.Tk) -> float | None:
    """Linux: Tk's scaling from the desktop's ``Xft.dpi`` (what GNOME, KDE and Xfce set
    from their scale factor), which Tk itself does not read; the DPI used, or None. Tk's
    named fonts keep the size they were given at the old scaling until set again, so each
    is set again (one sized in pixels, for 96 dpi, scaled)."""
    dpi = xft_dpi()
    if dpi is None:
        return None
    from tkinter import font

    root.tk.call("tk", "scaling", dpi / 72.0)
    for name in font.names(root):
        named = font.nametofont(name, root)
        size = int(named.cget("size"))
        named.configure(size=round(size * dpi / 96.0) if size < 0 else size)
    return dpi


def xft_dpi() -> float | None:
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY"):
        return None
    try:
        from Xlib import Xatom, display

        screen = display.Display()
        try:
            prop = screen.screen().root.get_full_property(
                screen.intern_atom("RESOURCE_MANAGER"), Xatom.STRING)
        finally:
            screen.close()
    except Exception:  # no python-xlib, no display: Tk's own scaling stays
        return None
    text = prop.value.decode("utf-8", "replace") if prop is not None else ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Xft.dpi":
            with contextlib.suppress(ValueError):
                dpi = float(value.strip())
                return dpi if 48 <= dpi <= 480 else None
    return None

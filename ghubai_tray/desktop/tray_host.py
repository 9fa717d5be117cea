"""Is there a tray to show our icon? Asked so that the app never shares invisibly.

A desktop without a tray host (stock GNOME without the AppIndicator extension)
takes the icon without a word and shows nothing: the owner could neither see,
pause nor quit a worker lending their GPU. Two kinds of host exist on Linux:

- a StatusNotifier host (KDE, the GNOME AppIndicator extension, XFCE's and
  others' panels): the session bus has ``org.kde.StatusNotifierWatcher`` with
  ``IsStatusNotifierHostRegistered`` true; pystray's appindicator backend uses it;
- an XEmbed system tray (trayer, older panels): some window owns the X selection
  ``_NET_SYSTEM_TRAY_S<screen>``; the gtk backend (and appindicator's own
  fallback) embeds into it.

Windows always has its notification area. A question we cannot ask (no X
display, no D-Bus) answers None: unknown is not "absent".
"""

from __future__ import annotations

import sys

SNI_WATCHER = "org.kde.StatusNotifierWatcher"


def tray_host_present() -> bool | None:
    """True when a tray can show the icon now, False when none can, None when unknown."""
    if sys.platform == "win32":
        return True
    answers = [_xembed_tray(), _status_notifier_host()]
    if any(answers):
        return True
    # Absent only when both kinds were asked about and neither is there.
    return None if None in answers else False


def _xembed_tray() -> bool | None:
    try:
        from Xlib import X, display
        from Xlib.error import DisplayError
    except ImportError:
        return None
    try:
        screen = display.Display()
    except (DisplayError, OSError, ValueError):  # no X display here
        return None
    try:
        atom = screen.intern_atom(f"_NET_SYSTEM_TRAY_S{screen.get_default_screen()}")
        return bool(screen.get_selection_owner(atom) != X.NONE)
    finally:
        screen.close()


def _status_notifier_host() -> bool | None:
    try:
        import gi

        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
    except (ImportError, ValueError):
        return None
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    except GLib.Error:
        return None  # no session bus
    try:
        reply = bus.call_sync(SNI_WATCHER, "/StatusNotifierWatcher",
                              "org.freedesktop.DBus.Properties", "Get",
                              GLib.Variant("(ss)", (SNI_WATCHER,
                                                    "IsStatusNotifierHostRegistered")),
                              GLib.VariantType("(v)"), Gio.DBusCallFlags.NONE, 2000, None)
    except GLib.Error:
        return False  # no watcher on the bus: no StatusNotifier host
    return bool(reply.unpack()[0])

"""A stand-in for GNOME Shell's idle monitor on a session bus (GNOME Shell cannot run
here): its well-known name, object path, interface and ``GetIdletime`` signature, as
mutter exports them; the idle time (ms) is the first argument."""

import sys
from typing import Any

from gi.repository import Gio, GLib

XML = """<node><interface name="org.gnome.Mutter.IdleMonitor">
<method name="GetIdletime"><arg type="t" direction="out" name="idletime"/></method>
</interface></node>"""
INTERFACE = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]


def call(conn: Any, sender: str, path: str, interface: str, method: str, params: Any,
         invocation: Any) -> None:
    invocation.return_value(GLib.Variant("(t)", (int(sys.argv[1]),)))


def acquired(conn: Any, name: str) -> None:
    conn.register_object("/org/gnome/Mutter/IdleMonitor/Core", INTERFACE, call, None, None)


def owned(conn: Any, name: str) -> None:
    print("ready", flush=True)


Gio.bus_own_name(Gio.BusType.SESSION, "org.gnome.Mutter.IdleMonitor",
                 Gio.BusNameOwnerFlags.NONE, acquired, owned, None)
GLib.MainLoop().run()

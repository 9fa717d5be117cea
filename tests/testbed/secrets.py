"""A real Secret Service (gnome-keyring on a private D-Bus session) for keyring tests.

Nothing is mocked: ``keyring`` finds the Secret Service backend over D-Bus
exactly as on a desktop. The session bus and the keyring daemon are private
to the test run and live in a temporary home, so the developer's own keyring
is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def secret_service_available() -> bool:
    if sys.platform == "win32":
        return True  # the Windows Credential Manager is always there
    return all(shutil.which(t) for t in ("dbus-daemon", "gnome-keyring-daemon"))


@contextmanager
def secret_service() -> Iterator[dict[str, str]]:
    """Yield the environment variables that point a process at the private keyring.

    On Windows there is nothing to start: keyring uses the session's Credential
    Manager, which under Wine belongs to the run's fresh prefix (tests/testbed/wine.py).
    """
    if sys.platform == "win32":
        yield {}
        return
    home = tempfile.mkdtemp(prefix="ghubai-keyring-")
    bus = subprocess.run(
        ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1",
         "--nopidfile"], capture_output=True, text=True, check=True, timeout=30)
    address, pid = bus.stdout.split()[:2]
    env = {"DBUS_SESSION_BUS_ADDRESS": address, "HOME": home,
           "XDG_RUNTIME_DIR": home, "XDG_DATA_HOME": os.path.join(home, "data")}
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **env})
    assert daemon.stdin is not None
    daemon.stdin.write(PASSWORD.encode())
    daemon.stdin.close()
    try:
        _wait_for_service(env)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(10)
        os.kill(int(pid), 15)
        shutil.rmtree(home, ignore_errors=True)


def _wait_for_service(env: dict[str, str], timeout: float = 20.0) -> None:
    """Wait until the daemon owns org.freedesktop.secrets on the bus."""
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run(
            ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
             "string:org.freedesktop.secrets"],
            capture_output=True, text=True, env={**os.environ, **env}, timeout=10)
        if "boolean true" in probe.stdout:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the Secret Service did not start: " + probe.stderr)
        time.sleep(0.05)  # polling a daemon's start-up: there is no event to wait on


PASSWORD = "test-password"  # what secret_service() unlocks its keyring with

_LOCK = """
import secretstorage
connection = secretstorage.dbus_init()
secretstorage.Collection(connection).lock()
"""
# gnome-keyring's own way to unlock without its prompt (which needs a person): the
# interface its tests use, with the password in a plain session.
_UNLOCK = f"""
import secretstorage
from jeepney import DBusAddress, new_method_call
connection = secretstorage.dbus_init()
collection = secretstorage.Collection(connection)
service = DBusAddress("/org/freedesktop/secrets", bus_name="org.freedesktop.secrets",
                      interface="org.freedesktop.Secret.Service")
session = connection.send_and_get_reply(
    new_method_call(service, "OpenSession", "sv", ("plain", ("s", "")))).body[1]
internal = DBusAddress("/org/freedesktop/secrets", bus_name="org.freedesktop.secrets",
                       interface="org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface")
connection.send_and_get_reply(new_method_call(
    internal, "UnlockWithMasterPassword", "o(oayays)",
    (collection.collection_path, (session, b"", {PASSWORD!r}.encode(), "text/plain"))))
assert not collection.is_locked()
"""


def lock_keyring(env: dict[str, str]) -> None:
    """Lock the private keyring, as a session does at an unattended login."""
    subprocess.run([sys.executable, "-c", _LOCK], env={**os.environ, **env}, check=True,
                   timeout=30)


def unlock_keyring(env: dict[str, str]) -> None:
    """Unlock it, as the owner does by typing the password into the desktop's prompt."""
    subprocess.run([sys.executable, "-c", _UNLOCK], env={**os.environ, **env}, check=True,
                   timeout=30)

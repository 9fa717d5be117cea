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
    daemon.stdin.write(b"test-password")
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

"""The provider token: in the OS keyring, one per hub, never anywhere else.

The keyring entry is service ``GhubAi`` with the hub URL's origin as the user
name (``https://hub.example.com``), so each hub keeps its own token and
changing the path of the same hub keeps it. ``PROVIDER_TOKEN`` (the seed's
variable) overrides the keyring when set, for containers and services.

Windows' Credential Manager holds at most 2,560 bytes per entry, stored as
UTF-16, so long tokens (JWTs) fail there with error 1783. Tokens longer than
:data:`PART_SIZE` characters are therefore stored in parts (``origin#1``,
``origin#2``, ...) behind a small header entry, on every platform alike, so
the code path is the one the tests exercise.

Every keyring call may block (a desktop may ask to unlock the keyring, or a
Secret Service may hang): each one runs on a daemon thread of its own and is
given :data:`KEYRING_TIMEOUT` seconds (``GHUBAI_KEYRING_TIMEOUT``), after
which the caller gets a :class:`TokenStoreError` saying so; the worker also
calls these functions through ``asyncio.to_thread``, never on its loop, and
the settings window never on its Tk thread.
When there is no usable keyring at all we say so and what to do; we never
fall back to writing the token into a plain file.

``keyring`` is imported only when a call needs it: loading its backends costs the
process about 16 MB on Linux (the Secret Service's, ``cryptography`` among them),
which is why the long-running worker reads through :mod:`keyring_reader` instead.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from ghubai_tray.core.errors import TokenStoreError

SERVICE = "GhubAi"
KEYRING_TIMEOUT = 20.0  # seconds; an unlock prompt gets that long to be answered
KEYRING_THREAD = "ghubai-keyring"
PART_SIZE = 1000
_PARTS_HEADER = "ghubai-parts:"
MAX_TOKEN_LENGTH = 64 * 1024
NO_KEYRING_ADVICE = (
    "set the token in the PROVIDER_TOKEN environment variable instead, or check that "
    "Windows' Credential Manager service is running" if sys.platform == "win32" else
    "set the token in the PROVIDER_TOKEN environment variable instead, or run a Secret "
    "Service (gnome-keyring, KeePassXC or KWallet) in your desktop session")


class Backend(Protocol):
    """The three calls of the ``keyring`` module we use (injectable for tests)."""

    def get_password(self, service_name: str, username: str) -> str | None: ...

    def set_password(self, service_name: str, username: str, password: str) -> None: ...

    def delete_password(self, service_name: str, username: str) -> None: ...


def default_backend() -> Backend:
    import keyring

    return keyring


def account_for(hub_url: str) -> str:
    """The keyring user name for a hub: its origin (scheme, host, port if not default)."""
    parts = urlsplit(hub_url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{host}{port}"


def _mapped(action: str, exc: Exception) -> TokenStoreError:
    from keyring.errors import KeyringLocked, NoKeyringError

    if isinstance(exc, NoKeyringError):
        return TokenStoreError(f"there is no OS keyring to {action} the token: {NO_KEYRING_ADVICE}")
    if isinstance(exc, KeyringLocked) or "dismissed" in str(exc).lower():
        # Not "cannot be used": the keyring is there, and locked (at an automatic login)
        # or its password prompt was closed; the advice is to unlock it, not to replace it.
        return TokenStoreError(f"the OS keyring is locked, so it could not {action} the token "
                               "(its password prompt was closed, or none could be shown): "
                               "unlock it and try again")
    kind = type(exc).__name__
    return TokenStoreError(f"the OS keyring could not {action} the token ({kind}); "
                           f"is it locked? Otherwise {NO_KEYRING_ADVICE}")


def keyring_timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("GHUBAI_KEYRING_TIMEOUT", KEYRING_TIMEOUT)))
    except ValueError:
        return KEYRING_TIMEOUT


def _call(action: str, fn: object, *args: str) -> object:
    """One keyring call, bounded in time: a hung keyring never hangs the caller."""
    outcome: list[object] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(fn(*args))  # type: ignore[operator]
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=KEYRING_THREAD)
    thread.start()
    timeout = keyring_timeout()
    thread.join(timeout)
    if thread.is_alive():
        raise TokenStoreError(
            f"the OS keyring did not answer within {timeout:g} s when asked to {action} the "
            f"token: is it waiting for you to unlock it? Otherwise {NO_KEYRING_ADVICE}")
    if failure:
        from keyring.errors import KeyringError

        if isinstance(failure[0], KeyringError):
            raise _mapped(action, failure[0]) from None
        raise failure[0]
    return outcome[0]


def _check(token: str) -> str:
    token = token.strip()
    if not token:
        raise TokenStoreError("the token is empty")
    if len(token) > MAX_TOKEN_LENGTH or not token.isprintable() or any(c.isspace() for c in token):
        raise TokenStoreError("that does not look like a token (spaces, line breaks or "
                              "too long); paste it again")
    return token


def load_token(hub_url: str, backend: Backend | None = None) -> str | None:
    """The stored token for this hub, or None; :class:`TokenStoreError` if unreadable."""
    backend = backend or default_backend()
    user = account_for(hub_url)
    stored = _call("read", backend.get_password, SERVICE, user)
    if not isinstance(stored, str):
        return None
    if not stored.startswith(_PARTS_HEADER):
        return stored
    count = int(stored.removeprefix(_PARTS_HEADER))
    parts = [_call("read", backend.get_password, SERVICE, f"{user}#{i}") for i in range(count)]
    if not all(isinstance(p, str) for p in parts):
        raise TokenStoreError("the stored token is incomplete: run 'ghubai-tray token set' again")
    return "".join(p for p in parts if isinstance(p, str))


def store_token(hub_url: str, token: str, backend: Backend | None = None) -> None:
    backend = backend or default_backend()
    token = _check(token)
    user = account_for(hub_url)
    delete_token(hub_url, backend)
    if len(token) <= PART_SIZE:
        _call("store", backend.set_password, SERVICE, user, token)
        return
    parts = [token[i:i + PART_SIZE] for i in range(0, len(token), PART_SIZE)]
    for i, part in enumerate(parts):
        _call("store", backend.set_password, SERVICE, f"{user}#{i}", part)
    _call("store", backend.set_password, SERVICE, user, f"{_PARTS_HEADER}{len(parts)}")


def delete_token(hub_url: str, backend: Backend | None = None) -> bool:
    """Remove this hub's token (and its parts); True if there was one."""
    backend = backend or default_backend()
    user = account_for(hub_url)
    stored = _call("read", backend.get_password, SERVICE, user)
    if not isinstance(stored, str):
        return False
    names = [user]
    if stored.startswith(_PARTS_HEADER):
        names += [f"{user}#{i}" for i in range(int(stored.removeprefix(_PARTS_HEADER)))]
    from keyring.errors import PasswordDeleteError

    def delete_quietly(name: str) -> None:
        try:
            backend.delete_password(SERVICE, name)
        except PasswordDeleteError:
            pass  # a part already gone is what we want

    for name in names:
        _call("remove", delete_quietly, name)
    return True


@dataclass(frozen=True)
class TokenSource:
    """The token the worker should use and where it came from, in words."""

    token: str | None
    where: str


def resolve_token(
    hub_url: str, environ: Mapping[str, str] | None = None, backend: Backend | None = None
) -> TokenSource:
    """``PROVIDER_TOKEN`` if set, else the keyring's token for this hub, else none."""
    environ = os.environ if environ is None else environ
    from_env = environ.get("PROVIDER_TOKEN", "").strip()
    if from_env:
        return TokenSource(from_env, "the PROVIDER_TOKEN variable")
    token = load_token(hub_url, backend)
    if token:
        return TokenSource(token, f"the OS keyring (service {SERVICE}, "
                                  f"account {account_for(hub_url)})")
    return TokenSource(None, "nowhere: no token is set")


def keyring_locked() -> bool | None:
    """Whether the Secret Service's default collection is locked, asked without unlocking
    it (reading a token from a locked one puts the desktop's password prompt up, so the
    worker asks this instead while it waits for the owner to unlock). None where there is
    no such thing to ask: Windows and macOS, no Secret Service, no default collection."""
    if sys.platform != "linux":
        return None
    try:
        import secretstorage
    except ImportError:
        return None

    def ask() -> bool:
        connection = secretstorage.dbus_init()
        try:
            return bool(secretstorage.Collection(connection).is_locked())
        finally:
            connection.close()

    try:
        return bool(_call("check", ask))
    except Exception:  # no service, no default collection, no answer: not known
        return None

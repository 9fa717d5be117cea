"""The control channel: an owner-only local line from ``ghubai-tray status`` to the worker.

Linux: a Unix socket beside the single-instance lock (``$XDG_RUNTIME_DIR``,
which only the user can enter; else an owner-only folder in the cache).
Windows: a named pipe named after the user. On both, the connection is
authenticated with a random key kept in an owner-only file (the standard
library's HMAC challenge, before a byte of a request is read), and requests
and replies are one small JSON object each way: never pickle, which
``multiprocessing.connection`` uses by default and which would run code.

The server runs on a daemon thread of its own and hands each request to a
callback (the composition root's, which decides with
:func:`ghubai_tray.core.control.decide` and submits to the worker).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import platformdirs

from ghubai_tray.adapters.owner_only import private_dir, write_private_text
from ghubai_tray.adapters.single_instance import lock_path
from ghubai_tray.core.settings import APP_NAME

log = logging.getLogger("ghubai_tray.control")

SOCKET_NAME = "ghubai-tray.sock"
KEY_NAME = "control.key"
MAX_MESSAGE = 64 * 1024


def address() -> tuple[str, str]:
    """Where the running worker listens, and the channel's family for multiprocessing."""
    if sys.platform == "win32":
        user = "".join(c for c in os.environ.get("USERNAME", "user") if c.isalnum())
        return rf"\\.\pipe\GhubAiTray-{user or 'user'}", "AF_PIPE"
    return str(lock_path().parent / SOCKET_NAME), "AF_UNIX"


def key_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / KEY_NAME


class ControlServer:
    """Answer control requests with ``handle`` until :meth:`close`."""

    def __init__(self, handle: Callable[[Any], dict[str, Any]]) -> None:
        self._handle = handle
        self._listener: Listener | None = None
        self._address, self._family = address()

    def start(self) -> bool:
        """Listen; False (and a log line) when the channel cannot be opened."""
        key = secrets.token_bytes(32)
        try:
            write_private_text(key_path(), key.hex())
            if self._family == "AF_UNIX":
                private_dir(Path(self._address).parent)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._address)  # a crashed worker's; the lock says we are alone
            self._listener = Listener(self._address, self._family, authkey=key)
        except OSError as exc:
            log.warning("the control channel cannot open (%s): 'ghubai-tray status' and "
                        "the other commands will not reach this worker", exc)
            return False
        if self._family == "AF_UNIX":
            os.chmod(self._address, 0o600)
        threading.Thread(target=self._serve, daemon=True, name="control").start()
        return True

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.close()
        if self._family == "AF_UNIX":
            with contextlib.suppress(OSError):
                os.unlink(self._address)

    def _serve(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn = listener.accept()
            except (AuthenticationError, EOFError, ConnectionError):
                log.warning("refused a control connection that did not know the key")
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True,
                             name="control-request").start()

    def _answer(self, conn: Connection) -> None:
        with conn:
            try:
                raw = conn.recv_bytes(MAX_MESSAGE)
                try:
                    request = json.loads(raw)
                except ValueError:
                    reply: dict[str, Any] = {"ok": False, "error": "the request is not JSON"}
                else:
                    reply = self._handle(request)
                conn.send_bytes(json.dumps(reply).encode("utf-8"))
            except (OSError, EOFError):
                return
            except Exception:  # a bug must not end the channel for the next request
                log.exception("a control request failed")


class NotRunning(Exception):
    """No worker listens for this user."""


def ask(request: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the running worker; its reply. NotRunning when none answers."""
    where, family = address()
    try:
        key = bytes.fromhex(key_path().read_text(encoding="utf-8").strip())
        with Client(where, family, authkey=key) as conn:
            conn.send_bytes(json.dumps(request).encode("utf-8"))
            reply = json.loads(conn.recv_bytes(MAX_MESSAGE))
    except (OSError, EOFError, ValueError, AuthenticationError) as exc:
        raise NotRunning(str(exc)) from None
    if not isinstance(reply, dict):
        raise NotRunning("the answer is not an object")
    return reply

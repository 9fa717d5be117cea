"""The control channel: an owner-only local line from ``ghubai-tray status`` to the worker.

Linux: a Unix socket beside the single-instance lock (``$XDG_RUNTIME_DIR``,
which only the user can enter; else an owner-only folder in the cache).
Windows: a named pipe named after the user, open to that user alone
(:mod:`ghubai_tray.adapters.win_pipe`). On both, the connection is
authenticated with a random key kept in an owner-only file (the standard
library's HMAC challenge, before a byte of a request is read), and requests
and replies are one small JSON object each way: never pickle, which
``multiprocessing.connection`` uses by default and which would run code.

The server runs on a daemon thread of its own and hands each request to a
callback (the composition root's, which decides with
:func:`ghubai_tray.core.control.decide` and submits to the worker).

No connection can jam it. The accept loop only accepts: the key is checked
on each connection's own thread (multiprocessing's ``Listener`` with an
``authkey`` checks it inside ``accept``, so one silent peer stopped every
later command, and one that answered the challenge with 300 bytes ended the
channel until restart). At most :data:`MAX_CONNECTIONS` are served at once,
each within :data:`DEADLINE` seconds and :data:`MAX_MESSAGE` bytes, and the
client gives up after :data:`ASK_TIMEOUT` seconds with a plain message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import (
    Client,
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
)
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
MAX_CONNECTIONS = 8  # served at once; more are closed at once (the owner types one at a time)
DEADLINE = 5.0  # seconds one connection may take, key check included
ASK_TIMEOUT = 10.0  # seconds the CLI waits for the worker's answer


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
        self._key = b""
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def start(self) -> bool:
        """Listen; False (and a log line) when the channel cannot be opened."""
        self._key = secrets.token_bytes(32)
        try:
            write_private_text(key_path(), self._key.hex())
            if self._family == "AF_UNIX":
                private_dir(Path(self._address).parent)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._address)  # a crashed worker's; the lock says we are alone
            # no authkey here: the key is checked on each connection's own thread
            self._listener = _listener(self._address, self._family)
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
            except OSError as exc:
                if self._listener is None:
                    return  # closed
                log.warning("a control connection failed as it was accepted: %s", exc)
                continue
            if not self._slots.acquire(blocking=False):
                log.warning("refused a control connection: %d are being served already",
                            MAX_CONNECTIONS)
                conn.close()
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True,
                             name="control-request").start()

    def _answer(self, conn: Connection) -> None:
        """One connection: the key and the request within :data:`DEADLINE` (what the
        peer controls), then the worker's answer, however long deciding it takes."""
        try:
            with conn:
                with _deadline(conn, DEADLINE):
                    try:
                        deliver_challenge(conn, self._key)
                    except (AuthenticationError, OSError, EOFError):
                        log.warning("refused a control connection that did not know the key")
                        return
                    try:
                        raw = conn.recv_bytes(MAX_MESSAGE)
                    except (OSError, EOFError):
                        log.warning("a control connection sent no request in time")
                        return
                reply = self._reply_to(raw)
                with _deadline(conn, DEADLINE), contextlib.suppress(OSError):
                    conn.send_bytes(json.dumps(reply).encode("utf-8"))
        finally:
            self._slots.release()

    def _reply_to(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw)
        except ValueError:
            return {"ok": False, "error": "the request is not JSON"}
        try:
            return self._handle(request)
        except Exception:  # a bug must not leave the owner without an answer
            log.exception("a control request failed")
            return {"ok": False, "error": "the worker could not do this (its log says why)"}


def _listener(where: str, family: str) -> Listener:
    if sys.platform == "win32":  # the pipe's DACL names its owner alone
        from ghubai_tray.adapters.win_pipe import owner_only_listener

        return owner_only_listener(where)
    return Listener(where, family)


@contextlib.contextmanager
def _deadline(conn: Connection, seconds: float) -> Iterator[None]:
    """End ``conn`` after ``seconds``, however its peer behaves (silent, or trickling).

    A Unix socket is shut down from a timer: the thread blocked reading it sees the
    end at once. A Windows pipe is closed, which cancels the read in progress.
    """
    if sys.platform == "win32":
        timer = threading.Timer(seconds, lambda: _quietly(conn.close))
        stop: Callable[[], None] = timer.cancel
    else:
        sock = socket.socket(fileno=os.dup(conn.fileno()))  # the same socket, its own fd
        timer = threading.Timer(seconds, lambda: _quietly(
            lambda: sock.shutdown(socket.SHUT_RDWR)))

        def stop() -> None:
            timer.cancel()
            sock.close()
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        stop()


def _quietly(action: Callable[[], None]) -> None:
    with contextlib.suppress(OSError):
        action()


class NotRunning(Exception):
    """No worker listens for this user."""


class NotAnswering(Exception):
    """A worker listens, but did not answer in time."""


def ask(request: dict[str, Any], timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
    """Send one request to the running worker; its reply.

    NotRunning when none listens; NotAnswering when one does but has not answered
    within ``timeout`` seconds (the exchange runs on a thread of its own, so that no
    read, on any platform, can keep the owner's command waiting).
    """
    outcome: list[dict[str, Any] | BaseException] = []

    def exchange() -> None:
        try:
            outcome.append(_exchange(request))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=exchange, daemon=True, name="control-ask")
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise NotAnswering(f"no answer within {timeout:g} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _exchange(request: dict[str, Any]) -> dict[str, Any]:
    where, family = address()
    try:
        key = bytes.fromhex(key_path().read_text(encoding="utf-8").strip())
        conn = Client(where, family)
    except (OSError, ValueError) as exc:  # nothing listens, or no key was ever written
        raise NotRunning(str(exc)) from None
    try:
        with conn:
            answer_challenge(conn, key)
            conn.send_bytes(json.dumps(request).encode("utf-8"))
            reply = json.loads(conn.recv_bytes(MAX_MESSAGE))
    except (OSError, EOFError, ValueError, AuthenticationError) as exc:
        # something listens: a worker that is busy with other connections, or stuck
        raise NotAnswering(f"the connection ended: {exc or type(exc).__name__}") from None
    if not isinstance(reply, dict):
        raise NotAnswering("the answer is not an object")
    return reply

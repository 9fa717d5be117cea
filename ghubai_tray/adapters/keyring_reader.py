"""The running worker's keyring reads, each in a short-lived process of its own.

Why a process: on Linux, reading the keyring loads the ``keyring`` package's backends
(the Secret Service's pulls in ``secretstorage``, ``jeepney`` and ``cryptography``), about
16 MB that would then stay for the life of a tray that reads its token a handful of
times a day (``bench/RESULTS.md`` has the figures). A child also ends a read that hangs
(a Secret Service stuck behind a prompt): it is killed at its deadline, where a thread
could only be abandoned. The child is this very installation started again with a hidden
flag (:func:`~ghubai_tray.adapters.autostart.launch_command`); it reads the keyring only,
never ``PROVIDER_TOKEN`` (checked here first), and answers one JSON line on its stdout,
a pipe: the token never reaches a log or a file.

On Windows the read stays in the process: Credential Manager's backend is a thin ctypes
binding, and the windowed tray executable has no console streams to answer through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from ghubai_tray.adapters.credentials import (
    TokenSource,
    keyring_locked,
    keyring_timeout,
    resolve_token,
)
from ghubai_tray.core.errors import TokenStoreError

READ_FLAG = "--keyring-read"
LOCKED_FLAG = "--keyring-locked"
START_ALLOWANCE = 15.0  # seconds for the child to start, on top of the keyring's own bound
MAX_ANSWER = 256 * 1024  # a token is at most 64 KiB of characters


def in_child() -> bool:
    return sys.platform != "win32"


def resolve_token_apart(hub_url: str, environ: Mapping[str, str] | None = None) -> TokenSource:
    """As :func:`~ghubai_tray.adapters.credentials.resolve_token`, the keyring read in a child."""
    environ = os.environ if environ is None else environ
    if environ.get("PROVIDER_TOKEN", "").strip() or not in_child():
        return resolve_token(hub_url, environ)
    answer = _ask([READ_FLAG, hub_url], "read")
    if isinstance(answer.get("error"), str):
        raise TokenStoreError(answer["error"])
    token, where = answer.get("token"), answer.get("where")
    if not (token is None or isinstance(token, str)) or not isinstance(where, str):
        raise TokenStoreError("the keyring reader gave an answer this version cannot read")
    return TokenSource(token, where)


def keyring_locked_apart() -> bool | None:
    """As :func:`~ghubai_tray.adapters.credentials.keyring_locked`, asked in a child;
    None (not known) when the child cannot tell."""
    if sys.platform != "linux":
        return None
    try:
        locked = _ask([LOCKED_FLAG], "check").get("locked")
    except TokenStoreError:
        return None
    return locked if isinstance(locked, bool) else None


def _ask(args: list[str], action: str) -> dict[str, Any]:
    from ghubai_tray.adapters.autostart import launch_command

    timeout = keyring_timeout() + START_ALLOWANCE
    try:
        done = subprocess.run([*launch_command(), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TokenStoreError(
            f"the OS keyring did not answer within {timeout:g} s when asked to {action} the "
            "token: is it waiting for you to unlock it?") from None
    except OSError as exc:
        raise TokenStoreError(f"could not start the keyring reader ({exc})") from None
    lines = done.stdout[-MAX_ANSWER:].decode("utf-8", "replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TokenStoreError(f"the keyring reader failed (exit code {done.returncode})"
                              + (f": {detail[-1][:300]}" if detail else ""))
    return answer


def child_main(args: list[str]) -> int:
    """The child's side: one answer, one line."""
    answer: dict[str, object]
    if args[:1] == [LOCKED_FLAG]:
        answer = {"locked": keyring_locked()}
    else:
        try:
            source = resolve_token(args[1], environ={})
            answer = {"token": source.token, "where": source.where}
        except TokenStoreError as exc:
            answer = {"error": str(exc)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0

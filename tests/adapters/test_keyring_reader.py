"""The running worker reads its token in a child process, from a real Secret Service.

The point is what stays out of the worker's process (the keyring's backends, about
16 MB: bench/RESULTS.md), so each read is made by a fresh Python whose modules are then
listed, and the answers must be those of the in-process read, locked keyring included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghubai_tray.adapters.credentials import resolve_token, store_token
from ghubai_tray.adapters.keyring_reader import keyring_locked_apart, resolve_token_apart
from ghubai_tray.core.errors import TokenStoreError
from tests.testbed.secrets import lock_keyring, secret_service_available, unlock_keyring

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32",
                       reason="Windows reads Credential Manager in the process"),
    pytest.mark.skipif(not secret_service_available() and not os.environ.get("CI"),
                       reason="gnome-keyring and dbus are needed (make test installs them)"),
]

HUB = "https://hub.example.com/gridhub"
ROOT = Path(__file__).resolve().parent.parent.parent
HEAVY = ("keyring", "secretstorage", "jeepney", "cryptography")
READ_AND_LIST = f"""
import json, sys
from ghubai_tray.adapters.keyring_reader import keyring_locked_apart, resolve_token_apart
source = resolve_token_apart(sys.argv[1])
locked = keyring_locked_apart()
print(json.dumps([source.token, source.where, locked,
                  sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})]))
"""


@pytest.fixture
def keyring_here(keyring_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in keyring_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PROVIDER_TOKEN", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    return keyring_env


def test_the_token_is_read_apart_and_the_keyring_stays_out_of_the_process(
        keyring_here: dict[str, str]) -> None:
    store_token(HUB, "a-stored-token")
    done = subprocess.run([sys.executable, "-c", READ_AND_LIST, HUB], capture_output=True,
                          text=True, timeout=120, env=os.environ, cwd=ROOT, check=True)
    token, where, locked, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert token == "a-stored-token"
    assert where == resolve_token(HUB, environ={}).where
    assert "the OS keyring (service GhubAi, account https://hub.example.com)" in where
    assert locked is False
    assert loaded == [], f"the reader's process loaded {loaded}"
    assert "a-stored-token" not in done.stderr


def test_no_token_stored_is_none_and_provider_token_wins(
        keyring_here: dict[str, str]) -> None:
    assert resolve_token_apart(HUB) == resolve_token(HUB, environ={})
    assert resolve_token_apart(HUB).token is None
    store_token(HUB, "from-the-keyring")
    source = resolve_token_apart(HUB, environ={"PROVIDER_TOKEN": " from-the-variable "})
    assert (source.token, source.where) == ("from-the-variable", "the PROVIDER_TOKEN variable")


@pytest.mark.skipif(sys.platform != "linux", reason="locks a Secret Service collection")
def test_a_locked_keyring_is_told_apart_and_read_once_unlocked(
        keyring_here: dict[str, str]) -> None:
    store_token(HUB, "token-a")
    lock_keyring(keyring_here)
    assert keyring_locked_apart() is True
    with pytest.raises(TokenStoreError, match="the OS keyring is locked, so it could not read "
                                              "the token .*unlock it and try again"):
        resolve_token_apart(HUB)
    assert keyring_locked_apart() is True, "asking did not unlock it (nor prompt)"
    unlock_keyring(keyring_here)
    assert keyring_locked_apart() is False
    assert resolve_token_apart(HUB).token == "token-a"


def test_a_hanging_keyring_is_an_error_in_words(
        keyring_here: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A Secret Service stuck behind a prompt cannot be made here; keyring's own backend
    switch selects one that never answers (tests/hanging_keyring.py), in the child."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.hanging_keyring.Hanging")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("GHUBAI_KEYRING_TIMEOUT", "1")
    with pytest.raises(TokenStoreError, match="did not answer within 1 s when asked to read"):
        resolve_token_apart(HUB)


def test_a_reader_that_fails_is_an_error_with_its_last_words(
        keyring_here: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The child started is a Python that dies, in place of this installation (the one
    function replaced: nothing else makes the real reader crash on demand)."""
    monkeypatch.setattr("ghubai_tray.adapters.autostart.launch_command",
                        lambda: [sys.executable, "-c", "import sys; sys.exit('it broke')"])
    with pytest.raises(TokenStoreError, match=r"the keyring reader failed \(exit code 1\): "
                                              "it broke"):
        resolve_token_apart(HUB)
    assert keyring_locked_apart() is None, "a lock nobody could ask about is not known"

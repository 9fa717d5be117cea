"""The control channel's pipe on Windows: its owner's alone, and first or not at all.

Runs in the Windows lane (Windows CPython under Wine). Wine keeps the DACL a pipe is
created with but does not enforce it against other accounts (it has one user), so what
is checked here is the descriptor the pipe gets and that the pipe serves its owner.
"""

from __future__ import annotations

import os
import sys
import threading
from multiprocessing.connection import Client

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="Windows' named pipes")


def test_the_descriptor_names_the_user_and_system_only() -> None:
    from ghubai_tray.adapters.win_pipe import owner_only_sddl, user_sid

    sid = user_sid()
    assert sid.startswith("S-1-5-")
    assert owner_only_sddl() == f"D:P(A;;GA;;;{sid})(A;;GA;;;SY)"
    assert "WD" not in owner_only_sddl() and "AN" not in owner_only_sddl()


def test_the_owner_only_pipe_serves_its_owner_and_cannot_be_made_twice() -> None:
    from ghubai_tray.adapters.win_pipe import owner_only_listener

    address = rf"\\.\pipe\GhubAiTray-test-{os.getpid()}"
    listener = owner_only_listener(address)
    received: list[bytes] = []

    def serve() -> None:
        with listener.accept() as conn:
            received.append(conn.recv_bytes())
            conn.send_bytes(b"pong")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with Client(address, "AF_PIPE") as conn:
            conn.send_bytes(b"ping")
            assert conn.recv_bytes() == b"pong"
        thread.join(10)
        assert received == [b"ping"]
        with pytest.raises(OSError):  # FILE_FLAG_FIRST_PIPE_INSTANCE: no second first
            owner_only_listener(address)
    finally:
        listener.close()

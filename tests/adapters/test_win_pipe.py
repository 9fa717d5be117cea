"""The control channel's pipe on Windows: its owner's alone, and first or not at all.

Runs in the Windows lane (Windows CPython under Wine). Wine has one user, so it cannot
show another account refused, and it lets a second pipe be made with
``FILE_FLAG_FIRST_PIPE_INSTANCE`` while the first exists (measured here), so neither is
asserted: what is checked is the descriptor the pipes get, built from the user's own
SID, and that the owner-only pipe serves its owner. Real Windows enforces both.
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


def test_the_owner_only_pipe_serves_its_owner() -> None:
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
    finally:
        listener.close()

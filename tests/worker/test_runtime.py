"""The worker's plumbing: its loop leaves stuck blocking calls behind, and only those."""

from __future__ import annotations

import asyncio
import threading
import time

from ghubai_tray.worker.runtime import blocking_calls_pending, run_in_new_loop


def test_a_clean_stop_never_reports_a_blocking_call_still_waiting() -> None:
    async def quick_calls() -> None:
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.001) for _ in range(4)))

    for _ in range(20):  # the pool's idle threads once made this true one time in three
        run_in_new_loop(quick_calls())
        assert not blocking_calls_pending()


def test_a_call_that_really_hangs_is_left_behind_and_reported() -> None:
    release = threading.Event()
    started = threading.Event()

    def hanging_keyring() -> None:
        started.set()
        release.wait(30)

    async def stop_while_it_hangs() -> None:
        asyncio.get_running_loop().run_in_executor(None, hanging_keyring)
        await asyncio.to_thread(started.wait, 10)

    try:
        run_in_new_loop(stop_while_it_hangs())  # returns although the call still runs
        assert blocking_calls_pending(settle=0.2)
    finally:
        release.set()
    assert not blocking_calls_pending()

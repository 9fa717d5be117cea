"""What every part of the worker leans on: its event loop, side jobs, loops that restart.

Nothing here knows about the hub or Ollama; it is the plumbing that lets each
collaborator be written as plain ``async`` code and still never stop for good.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("ghubai_tray.worker")

BLOCKING_THREAD_PREFIX = "ghubai-blocking"
SUPERVISOR_CAP = 30.0  # longest wait before a failed loop starts again


def run_in_new_loop(coro: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` without waiting, at the end, for blocking calls still in progress.

    A keyring call can hang on an unlock prompt nobody answers; ``asyncio.run``
    would then wait for its thread forever at shutdown. Our blocking calls run
    on a pool of daemon-like threads we leave behind instead (see
    :func:`blocking_calls_pending`), so stopping never depends on them.
    """
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix=BLOCKING_THREAD_PREFIX)
    loop.set_default_executor(executor)
    try:
        loop.run_until_complete(coro)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        loop.close()


def blocking_calls_pending(settle: float = 1.0) -> bool:
    """True while a blocking call (keyring, file) of a finished worker still runs.

    The pool's idle threads end a moment after the loop closes (the shutdown wakes
    them): each gets up to ``settle`` seconds in all, so that only a call really still
    running counts. Without that, a clean stop said "a keyring call is still waiting"
    one time in three."""
    deadline = time.monotonic() + settle
    for thread in threading.enumerate():
        if thread.name.startswith(BLOCKING_THREAD_PREFIX):
            thread.join(max(0.0, deadline - time.monotonic()))
    return any(t.name.startswith(BLOCKING_THREAD_PREFIX) and t.is_alive()
               for t in threading.enumerate())


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` up to ``timeout`` seconds; True if it was set.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11,
    ``wait_for`` loses a cancellation that arrives as the event is set
    (bpo-42130), which left a loop waiting forever during shutdown.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


class SideJobs:
    """Small tasks started and forgotten (a final to send, a GPU to free): kept referenced
    until done, so the loop cannot drop them, and cancelled together when the worker stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start ``coro``; raises RuntimeError (and closes it) when no loop runs."""
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            raise
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> list[asyncio.Task[None]]:
        """Cancel every job; the tasks, for the caller to gather."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks


class Problems:
    """Log a recurring problem once per change, not once per poll or per attempt."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def log(self, topic: str, level: int, message: str) -> None:
        if self._last.get(topic) != message:
            self._last[topic] = message
            log.log(level, "%s", message)

    def solved(self, topic: str) -> None:
        """The next message on ``topic`` is logged, even if it repeats the last one."""
        self._last.pop(topic, None)


async def supervised(name: str, loop: Callable[[], Coroutine[Any, Any, None]],
                     tell_owner: Callable[[str], None]) -> None:
    """Keep a long-lived loop running: a bug is logged with its traceback, the owner is
    told, and the loop starts again after a pause that grows with repeated failures."""
    failures = 0
    while True:
        try:
            await loop()
            return
        except Exception:
            failures += 1
            log.exception("the %s loop failed (%d time(s)); starting it again", name, failures)
            tell_owner(f"part of GhubAi Tray ({name}) failed and was restarted; "
                       "the details are in the log")
            await asyncio.sleep(min(SUPERVISOR_CAP, 0.5 * 2 ** (failures - 1)))


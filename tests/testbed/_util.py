"""Small pieces every test-bed server shares: waiting on state, running in a thread, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from aiohttp import web

T = TypeVar("T")


class Observable:
    """State that tests wait on: every change pulses a condition, nobody sleeps blindly.

    Waiting on the event (with a generous timeout) rather than ``sleep`` keeps the
    tests free of timing luck: they go as fast as the machine allows and fail with
    a message naming what never happened.
    """

    def __init__(self) -> None:
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def notify(self) -> None:
        """Wake every waiter; safe to call from sync code on the loop's thread."""
        cond = self._condition()

        async def _pulse() -> None:
            async with cond:
                cond.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(_pulse())

    async def wait_until(
        self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition"
    ) -> T:
        """Return the predicate's first truthy value, or fail after ``timeout`` seconds."""
        cond = self._condition()
        deadline = time.monotonic() + timeout
        async with cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
                # Re-check at least every 0.5 s: a few changes (a socket closing) do
                # not go through notify(). asyncio.timeout, not wait_for: on Python 3.11
                # wait_for can lose a cancellation that arrives as the wait ends
                # (bpo-42130), and a cancelled waiter then loops on for ever (it hung
                # make soak's shutdown once).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, 0.5)):
                        await cond.wait()


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (0: any free port); return the runner and the port.

    ``reuse_address`` lets a restarted server take its old port back at once,
    which is what the hub's restart fault needs.
    """
    # No access log: it would print every URL, and ours carry the token in the query.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    await site.start()
    if port == 0:
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        port = int(sockets[0].getsockname()[1])
    return runner, port


class Server(Protocol):
    """What ``run_main`` and ``ThreadedServer`` need of a test-bed server."""

    @property
    def url(self) -> str: ...

    async def start(self) -> str: ...

    async def stop(self) -> None: ...


def run_main(
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    build: Callable[[argparse.Namespace], Server],
    argv: list[str] | None = None,
) -> int:
    """Shared ``python -m tests.testbed.X`` entry: start, print the URL, run until interrupted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    server = build(args)

    async def _main() -> None:
        stop = asyncio.Event()
        on_stop_signals(stop.set)
        url = await server.start()
        print(url, flush=True)
        await stop.wait()
        await server.stop()

    asyncio.run(_main())
    return 0


def on_stop_signals(callback: Callable[[], None]) -> None:
    """Call ``callback`` on the running loop at SIGINT or SIGTERM (Windows: Ctrl-C and
    Ctrl-Break, which asyncio cannot watch there, so Python's own handlers hand them over)."""
    loop = asyncio.get_running_loop()
    if sys.platform == "win32":
        for sig in (signal.SIGINT, signal.SIGBREAK):  # type: ignore[attr-defined,unused-ignore]
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(callback))
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, callback)


def main_guard(fn: Callable[[], int]) -> None:
    """Exit with the function's code; keeps each testbed ``__main__`` to one line."""
    sys.exit(fn())


def cache_dir() -> Path:
    """Where built test tools are kept between runs, outside the checkout (as make's CACHE)."""
    base = os.environ.get("GHUBAI_CACHE") or os.path.join(
        os.environ.get("HOME", "/tmp"), ".cache", "ghubai-tray")
    return Path(base)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SubprocessServer:
    """A server run as a child process with a private temporary folder, on ``host:port``.

    Subclasses set ``proc``, ``_tmp`` and ``log_path`` in ``start_sync()``; stopping is the
    same for all: SIGTERM, ``stop_wait`` seconds, then SIGKILL, and the folder removed.
    """

    stop_wait = 10.0

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start_sync(self) -> str:
        raise NotImplementedError

    def stop_sync(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def start(self) -> str:
        return await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)


class LoopbackServer:
    """An aiohttp app of the test bed's on a loopback port; a subclass builds it in
    :meth:`_app`. ``start()`` gives the URL; ``stop()`` is safe to call twice."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> str:
        self._runner, self.port = await serve(self._app(), self.host, self.port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

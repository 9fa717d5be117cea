"""A running worker between the test hub and the Ollama stand-in, for the worker tests."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.adapters.hub import HubConnection
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Stop
from ghubai_tray.worker import BACKOFF_FIRST, Worker
from tests.testbed.hub import GridHub, HubRequest
from tests.testbed.ollama import OllamaStandIn

TOKEN = "tok-3f9a1c77e2b54d0c8e61aa42"  # the suite greps every log for this


@dataclass
class Bed:
    hub: GridHub
    ollama: OllamaStandIn
    worker: Worker
    token: list[str | None]  # what the token provider answers; tests may change it

    async def registered(self, *models: str, timeout: float = 15.0) -> None:
        """Wait until the hub's registry holds exactly ``models`` for our machine."""
        want = tuple(models)

        def ok() -> bool:
            return any(n.machine_name == "test-node" and n.models == want
                       for n in self.hub.nodes.values())

        await self.hub.wait_until(ok, timeout, f"the hub to hold {want}")

    async def request(self, endpoint: str, body: dict[str, Any] | str,
                      model: str = "llama3.2:1b", target: str = "RequestInference") -> HubRequest:
        return await self.hub.dispatch(model, endpoint, body, target)

    def finals(self) -> list[dict[str, Any]]:
        """Every final chunk the hub received, known request or not."""
        chunks = [c for r in self.hub.requests.values() for c in r.chunks]
        return [c for c in chunks + self.hub.ignored_chunks if c.get("isFinal")]


@asynccontextmanager
async def running_bed(
    *, settings: Callable[[Settings], Settings] | None = None,
    hub: GridHub | None = None, ollama: OllamaStandIn | None = None,
    token: str | None = TOKEN, server_timeout: float = 30.0, ollama_url: str | None = None,
    persist: Callable[[dict[str, Any]], None] | None = None, ledger_path: Path | None = None,
    **options: Any,
) -> AsyncIterator[Bed]:
    """Hub, Ollama stand-in and worker; ``ollama_url`` points the worker elsewhere.

    After a drop the bed's worker retries within half a second, not anywhere in the 10 s a
    restarted hub's fleet is spread over: many tests drop the hub, and the spread itself is
    tested on the default (tests/worker/test_worker_reconnect.py)."""
    options.setdefault("reconnect_spread", BACKOFF_FIRST)
    hub = hub or GridHub(tokens=[TOKEN])
    ollama = ollama or OllamaStandIn()
    await hub.start()
    await ollama.start()
    base = Settings(hub_url=hub.url, ollama_url=ollama_url or ollama.url, machine_name="test-node",
                    idle_timeout=10.0, total_timeout=60.0)
    holder: list[str | None] = [token]
    connector = functools.partial(HubConnection.open, server_timeout=server_timeout,
                                  keepalive_interval=min(15.0, server_timeout / 2))
    worker = Worker(settings(base) if settings else base,
                    lambda url: TokenSource(holder[0], "the test"),
                    connector=connector, poll_interval=0.2, persist=persist,
                    ledger_path=ledger_path, **options)
    task = asyncio.create_task(worker.run())
    bed = Bed(hub, ollama, worker, holder)
    try:
        yield bed
    finally:
        if not task.done():
            worker.submit(Stop(grace=2.0))
            await asyncio.wait_for(task, 20)
        await hub.stop()
        await ollama.stop()


def error_of(fragment: str) -> str:
    """The message of a failed request's final fragment: an OpenAI error object for /v1
    requests, Ollama's {"error": ...} for native ones (each client parses its own)."""
    error = json.loads(fragment)["error"]
    return str(error["message"] if isinstance(error, dict) else error)


async def failure_of(request: HubRequest, timeout: float = 30.0) -> str:
    """Wait for the request's final and return its error message (AssertionError if none)."""
    await request.wait(timeout)
    fragment = request.chunks[-1]["tokenFragment"]
    assert fragment, "the request was served, not failed"
    return error_of(fragment)


def with_settings(**changes: Any) -> Callable[[Settings], Settings]:
    return lambda s: replace(s, **changes)

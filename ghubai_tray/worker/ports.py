"""What the worker needs from the outside world, as it needs it.

The adapters (:mod:`ghubai_tray.adapters.hub`, :mod:`ghubai_tray.adapters.ollama`)
satisfy these; the worker's collaborators are written against them only, so a
test bed or another transport can stand in, and no HTTP or WebSocket library
reaches past the adapters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from ghubai_tray.adapters.hub import Invocation, Malformed
from ghubai_tray.core.framing import Done, Failed, Framer
from ghubai_tray.core.ledger import Entry
from ghubai_tray.core.local_use import Used, loaded_by_worker, model_key, used_models
from ghubai_tray.core.server_kinds import ServerIdentity, ServerKind
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Snapshot
from ghubai_tray.core.tags import LocalModel

log = logging.getLogger("ghubai_tray.worker")


class Telemetry(Protocol):
    """The operators' telemetry (adapters/telemetry.py), when they asked for it."""

    def start(self) -> None: ...

    def shutdown(self) -> None: ...

    def instrument(self, client: Any) -> None: ...

    def traced(self, request_id: str, model: str, endpoint: str,
               work: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None]: ...

    def record(self, entry: Entry) -> None: ...

    def seen(self, snap: Snapshot) -> None: ...


class Ollama(Protocol):
    """A model server: Ollama, or another one behind an adapter of its kind."""

    base_url: str
    name: str

    @property
    def http(self) -> Any:
        """The HTTP client its calls go through (the telemetry instruments it)."""

    async def tags(self) -> tuple[LocalModel, ...]: ...

    async def identify(self) -> ServerIdentity | None: ...

    async def loaded_models(self) -> list[str]: ...

    async def loaded_expiries(self) -> dict[str, str] | None: ...

    async def unload(self, model: str) -> bool: ...

    async def busy_slots(self) -> int | None: ...

    def note_use(self, model: str) -> None: ...

    async def hub_loaded(self) -> list[str] | None: ...

    async def relay(self, path: str, body: bytes,
                    sink: Callable[[list[str]], Awaitable[None]], *, idle_timeout: float,
                    total_timeout: float, accepted: Callable[[], None] | None = None,
                    reframe: Callable[[Framer], Framer] | None = None) -> Done | Failed: ...

    async def aclose(self) -> None: ...


class HubLink(Protocol):
    """One open connection to the hub (a new one per attempt)."""

    host: str

    @property
    def closed(self) -> bool: ...

    async def invoke(self, target: str, *arguments: Any) -> None: ...

    async def invoke_each(self, target: str, arguments: list[Any]) -> None: ...

    def messages(self) -> AsyncIterator[Invocation | Malformed]: ...

    async def close(self) -> None: ...


class Connector(Protocol):
    def __call__(self, url: str, token: str | None, *, ssl_context: Any,
                 max_message_bytes: int) -> Awaitable[HubLink]: ...


LOOK_FIRST_WAIT = 1.0


def _read_end(task: asyncio.Future[None]) -> None:
    """A look that outlived its wait: its end read, its failure logged."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("owner first's look before a request failed: %s", exc)


class Use:
    """One call of the worker's on a model; ``accept()`` once Ollama has taken it."""

    def __init__(self) -> None:
        self.accepted = False

    def accept(self) -> None:
        self.accepted = True


ServerFactory = Callable[[Settings, ServerKind], Ollama]


class OllamaLink:
    """The model server's client for the current settings, shared by discovery, the
    requests and the GPU freeing; replaced (the old one closed later) when its URL or
    TLS changes, or when discovery finds another kind of server there."""

    def __init__(self, factory: ServerFactory, settings: Settings) -> None:
        self._factory = factory
        self._settings = settings
        self._kind = ServerKind.OLLAMA
        self._for = (settings.ollama_url, settings.allow_invalid_certs)
        self.client = factory(settings, self._kind)
        self._active: Counter[str] = Counter()
        self._touched: dict[str, set[float | None]] = {}
        self._last: dict[str, float | None] = {}  # model key -> its last use's expiry
        self._wall: Callable[[], float] = time.time
        # Owner first's look at the server (set by the rules while that rule is on): made
        # before each hub request reaches it, so that the owner's use since the last
        # request is seen before this one moves the model's expiry over it.
        self.look_first: Callable[[], Awaitable[None]] | None = None

    async def before_use(self) -> None:
        """Owner first's look before a hub request, for at most :data:`LOOK_FIRST_WAIT`
        seconds (a slow server delays no request for longer; the look goes on)."""
        if self.look_first is None:
            return
        look = asyncio.ensure_future(self.look_first())
        try:  # asyncio.timeout, not wait_for: on 3.11 that can lose the request's cancel
            async with asyncio.timeout(LOOK_FIRST_WAIT):
                await asyncio.shield(look)
        except TimeoutError:
            pass
        except Exception:  # the look's failure must not fail the request
            log.exception("owner first's look before a request failed")
        finally:
            if not look.done():  # it goes on; its end is read when it comes
                look.add_done_callback(_read_end)

    @contextmanager
    def using(self, model: str, keep_alive: float | None = None) -> Iterator[Use]:
        """Around every call of the worker's that can load a model or move its expiry
        (a hub request, an unload), so that owner-first can tell its use from the
        owner's: Ollama's ``/api/ps`` does not say who used a model.

        While the call runs, the model counts as the worker's. Once it ends, it
        counts only if Ollama accepted the call (``Use.accept``), with the expiry
        that ``keep_alive`` (seconds; None: Ollama's default) leaves from then.
        """
        key = model_key(model)
        use = Use()
        self.client.note_use(model)
        self._active[key] += 1
        try:
            yield use
        finally:
            self._active[key] -= 1
            if use.accepted:  # Ollama moves the expiry when a request it took ends
                expected = None if keep_alive is None else self._wall() + keep_alive
                self._touched.setdefault(key, set()).add(expected)
                self._last[key] = expected

    def take_used(self) -> tuple[Used, Used]:
        """The uses of the worker's that ended since the last call, with the expiries they
        leave, and the models it uses now (whose expiries are not known yet)."""
        running = used_models(m for m, n in self._active.items() if n > 0)
        ended = {key: frozenset(expiries) for key, expiries in self._touched.items()}
        self._touched = {}
        return ended, running

    def running(self) -> int:
        """The worker's calls on the server in progress now."""
        return sum(self._active.values())

    def loaded_by_worker(self, loaded: Mapping[str, str]) -> list[str]:
        """Of the models in memory (``/api/ps``), those the worker's use left there."""
        return loaded_by_worker(loaded, self._last)

    def retarget(self, settings: Settings) -> Ollama | None:
        """Point at ``settings``' server; the old client to close, or None if unchanged."""
        wanted = (settings.ollama_url, settings.allow_invalid_certs)
        self._settings = settings
        if wanted == self._for:
            return None
        old, self._for = self.client, wanted
        self.client = self._factory(settings, self._kind)
        return old

    def serve_as(self, kind: ServerKind) -> Ollama | None:
        """Speak to the server as ``kind`` (discovery found it at the address); the old
        client to close, or None if it already does."""
        if kind is self._kind:
            return None
        old, self._kind = self.client, kind
        self.client = self._factory(self._settings, kind)
        return old

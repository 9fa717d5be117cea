"""What the worker needs from the outside world, as it needs it.

The adapters (:mod:`ghubai_tray.adapters.hub`, :mod:`ghubai_tray.adapters.ollama`)
satisfy these; the worker's collaborators are written against them only, so a
test bed or another transport can stand in, and no HTTP or WebSocket library
reaches past the adapters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ghubai_tray.adapters.hub import Invocation, Malformed
from ghubai_tray.core.framing import Done, Failed
from ghubai_tray.core.local_use import model_key
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.tags import LocalModel


class Ollama(Protocol):
    base_url: str

    async def tags(self) -> tuple[LocalModel, ...]: ...

    async def loaded_models(self) -> list[str]: ...

    async def loaded_expiries(self) -> dict[str, str] | None: ...

    async def unload(self, model: str) -> bool: ...

    async def relay(self, path: str, body: bytes,
                    sink: Callable[[list[str]], Awaitable[None]], *, idle_timeout: float,
                    total_timeout: float) -> Done | Failed: ...

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


class OllamaLink:
    """The Ollama client for the current settings, shared by discovery, the requests and
    the GPU freeing; replaced (the old one closed later) when its URL or TLS changes."""

    def __init__(self, factory: Callable[[Settings], Ollama], settings: Settings) -> None:
        self._factory = factory
        self._for = (settings.ollama_url, settings.allow_invalid_certs)
        self.client = factory(settings)
        self._active: Counter[str] = Counter()
        self._touched: set[str] = set()

    @contextmanager
    def using(self, model: str) -> Iterator[None]:
        """Around every call of the worker's that can load a model or move its expiry
        (a hub request, an unload), so that owner-first can tell its use from the
        owner's: Ollama's ``/api/ps`` does not say who used a model."""
        key = model_key(model)
        self._active[key] += 1
        self._touched.add(key)
        try:
            yield
        finally:
            self._active[key] -= 1
            self._touched.add(key)  # Ollama moves the expiry when a request ends

    def take_used(self) -> frozenset[str]:
        """The models the worker used since the last call, or uses now."""
        used = self._touched | {m for m, n in self._active.items() if n > 0}
        self._touched = set()
        return frozenset(used)

    def retarget(self, settings: Settings) -> Ollama | None:
        """Point at ``settings``' Ollama; the old client to close, or None if unchanged."""
        wanted = (settings.ollama_url, settings.allow_invalid_certs)
        if wanted == self._for:
            return None
        old, self.client, self._for = self.client, self._factory(settings), wanted
        return old

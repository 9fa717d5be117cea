"""What the worker needs from the outside world, as it needs it.

The adapters (:mod:`ghubai_tray.adapters.hub`, :mod:`ghubai_tray.adapters.ollama`)
satisfy these; the worker's collaborators are written against them only, so a
test bed or another transport can stand in, and no HTTP or WebSocket library
reaches past the adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from ghubai_tray.adapters.hub import Invocation, Malformed
from ghubai_tray.core.framing import Done, Failed
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.tags import LocalModel


class Ollama(Protocol):
    base_url: str

    async def tags(self) -> tuple[LocalModel, ...]: ...

    async def loaded_models(self) -> list[str]: ...

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

    def retarget(self, settings: Settings) -> Ollama | None:
        """Point at ``settings``' Ollama; the old client to close, or None if unchanged."""
        wanted = (settings.ollama_url, settings.allow_invalid_certs)
        if wanted == self._for:
            return None
        old, self.client, self._for = self.client, self._factory(settings), wanted
        return old

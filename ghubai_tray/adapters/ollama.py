"""HTTP to the local Ollama: the model list, and inference requests streamed back.

httpx is the one HTTP client here. Inference responses are read as raw bytes
as they arrive (``aiter_raw``) so the framers in :mod:`ghubai_tray.core.framing`
see every event the moment Ollama writes it. httpx's read timeout is the idle
timeout between chunks; the total time is bounded by the caller. Closing the
response (leaving the ``async with``, or cancellation) closes the HTTP
request, which is how Ollama learns to stop generating and free the GPU.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from ghubai_tray.core.errors import OllamaAnswerError, OllamaUnreachable
from ghubai_tray.core.framing import status_error
from ghubai_tray.core.tags import LocalModel, parse_tags

TAGS_TIMEOUT = 5.0
MAX_TAGS_BYTES = 8 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024


class OllamaClient:
    """One connection pool to Ollama; build with the base URL and the TLS context."""

    def __init__(self, base_url: str, verify: ssl.SSLContext | bool = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url, verify=verify, transport=transport, trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=8),
            headers={"User-Agent": "GhubAi-Tray"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def tags(self) -> tuple[LocalModel, ...]:
        """The models Ollama has; OllamaUnreachable, OllamaAnswerError or TagsParseError."""
        try:
            async with self._client.stream("GET", "/api/tags", timeout=TAGS_TIMEOUT) as response:
                body = await read_limited(response, MAX_TAGS_BYTES)
        except httpx.HTTPError as exc:
            raise OllamaUnreachable(unreachable_reason(exc, self.base_url)) from None
        if response.status_code != 200:
            raise OllamaAnswerError(status_error(response.status_code, body))
        return parse_tags(body)

    async def loaded_models(self) -> list[str]:
        """Models Ollama holds in memory now (``/api/ps``); empty when it cannot tell."""
        try:
            response = await self._client.get("/api/ps", timeout=TAGS_TIMEOUT)
            models = response.json().get("models") or []
            return [m["name"] for m in models
                    if isinstance(m, dict) and isinstance(m.get("name"), str)]
        except (httpx.HTTPError, ValueError, AttributeError):
            return []

    async def unload(self, model: str) -> bool:
        """Ask Ollama to free ``model``'s memory now (``keep_alive: 0``, no prompt)."""
        try:
            response = await self._client.post(
                "/api/generate", json={"model": model, "keep_alive": 0}, timeout=30.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    @asynccontextmanager
    async def post_stream(self, path: str, body: bytes, idle_timeout: float
                          ) -> AsyncIterator[httpx.Response]:
        """POST ``body`` to ``path`` and yield the response with its body still unread."""
        timeout = httpx.Timeout(connect=10.0, read=idle_timeout, write=30.0, pool=None)
        async with self._client.stream(
            "POST", path, content=body, timeout=timeout,
            headers={"Content-Type": "application/json"},
        ) as response:
            yield response


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) > limit:
            break
    return bytes(data[:limit])


def unreachable_reason(exc: httpx.HTTPError, base_url: str) -> str:
    """Why Ollama could not be reached, in words an owner can act on."""
    if isinstance(exc, httpx.ConnectError):
        return f"Ollama is not reachable at {base_url}: is it running?"
    if isinstance(exc, httpx.TimeoutException):
        return f"Ollama at {base_url} did not answer in time"
    return f"the connection to Ollama at {base_url} failed ({type(exc).__name__})"

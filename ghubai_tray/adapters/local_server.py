"""HTTP to a local model server: who it is, and inference requests streamed back.

httpx is the one HTTP client here, and it stops at the adapters: callers get
our own errors (:mod:`ghubai_tray.core.errors`) or, for inference,
:meth:`LocalServerClient.relay`, which hands complete events to a sink and always
ends in exactly one :class:`~ghubai_tray.core.framing.Done` or
:class:`~ghubai_tray.core.framing.Failed`, whatever the network does. Each kind of
server has its adapter on this base: :mod:`ghubai_tray.adapters.ollama` and
:mod:`ghubai_tray.adapters.openai_server`.

Inference responses are read as raw bytes as they arrive (``aiter_raw``) so
the framers in :mod:`ghubai_tray.core.framing` see every event the moment
the server writes it. httpx's read timeout is the idle timeout between chunks;
the total time is bounded by :meth:`LocalServerClient.relay`'s own clock. Closing
the response (leaving the ``async with``, or cancellation) closes the HTTP
request, which is how the server learns to stop generating and free the GPU.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from ghubai_tray.adapters.http_body import body_within
from ghubai_tray.core.errors import OllamaAnswerError, OllamaUnreachable
from ghubai_tray.core.framing import (
    Done,
    Failed,
    Frame,
    Framer,
    Relay,
    framer_for,
    status_error,
)
from ghubai_tray.core.server_kinds import PROBES, ServerIdentity, identify

Sink = Callable[[list[str]], Awaitable[None]]
"""Where the relay sends the texts of the events one read completed (in order)."""

PROBE_TIMEOUT = 3.0
MAX_PROBE_BYTES = 256 * 1024
MAX_ERROR_BODY = 64 * 1024


class LocalServerClient:
    """One connection pool to a model server; build with the base URL and the TLS context.

    ``name`` is how the owner knows the server, in every message about it."""

    name = "the model server"

    def __init__(self, base_url: str, verify: ssl.SSLContext | bool = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url, verify=verify, transport=transport, trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=8),
            headers={"User-Agent": "GhubAi-Tray"})

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client every call goes through (the operators' telemetry instruments it)."""
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, limit: int, timeout: float) -> tuple[int, bytes]:
        """``GET path``: its status and at most ``limit`` bytes of its body; httpx's
        error when the server cannot be reached."""
        async with self._client.stream("GET", path, timeout=timeout) as response:
            return response.status_code, await read_limited(response, limit)

    async def _get_ok(self, path: str, limit: int, timeout: float) -> bytes | None:
        """The body of a 200 answer; None for anything else (refused, away)."""
        try:
            status, body = await self._get(path, limit, timeout)
        except httpx.HTTPError:
            return None
        return body if status == 200 else None

    async def _listing(self, path: str, limit: int, timeout: float) -> bytes:
        """A model list's body; OllamaUnreachable or OllamaAnswerError, in the words of
        the server's own name."""
        try:
            status, body = await self._get(path, limit, timeout)
        except httpx.HTTPError as exc:
            raise OllamaUnreachable(unreachable_reason(exc, self.base_url, self.name)) from None
        if status != 200:
            raise OllamaAnswerError(status_error(status, body, self.name))
        return body

    async def identify(self) -> ServerIdentity | None:
        """Which server answers here (core/server_kinds.py): all its probes at once (one
        round trip, not five, before the first model list), then the most specific
        answer; None when none answers as a known kind does."""
        answers = await asyncio.gather(*(self._probe(path) for path in PROBES))
        return identify(dict(zip(PROBES, answers, strict=True)))

    async def _probe(self, path: str) -> object:
        """``GET path``'s JSON, or None for anything else (refused, away, not JSON)."""
        try:
            async with self._client.stream("GET", path, timeout=PROBE_TIMEOUT) as response:
                if response.status_code != 200:
                    return None
                body = await body_within(response, MAX_PROBE_BYTES, lambda: ValueError(path))
            return json.loads(body)
        except (httpx.HTTPError, ValueError, RecursionError):
            return None

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


    async def relay(self, path: str, body: bytes, sink: Sink, *, idle_timeout: float,
                    total_timeout: float, accepted: Callable[[], None] | None = None,
                    reframe: Callable[[Framer], Framer] | None = None) -> Done | Failed:
        """POST ``body`` and feed the answer's events to ``sink``; how the answer ended.

        The one place an inference answer is read, and so the one place its
        errors are ordered (as Ollama's ``api/client.go`` has one ``stream``):
        an error status first, then the events as framed, then the clocks, then
        the network. Two clocks bound it: the whole request (``total_timeout``)
        and progress (``idle_timeout``), which only a complete event resets, so an
        "Ollama" that trickles a byte at a time cannot hold a slot for the full
        hour. Whatever ``sink`` raises goes to the caller unchanged (the hub
        connection is gone); nothing of httpx does. ``accepted`` is called once
        Ollama answers with a success status: it has taken the request, and its
        model's expiry moves when the request ends (owner first reads that).
        ``reframe`` wraps the framer of the answer's content type: a ``/v1`` request
        served through the native API has its answer written back in OpenAI's shape.
        """
        loop = asyncio.get_running_loop()
        total = asyncio.timeout(total_timeout)
        progress = asyncio.timeout(idle_timeout)
        try:
            async with total, progress, self.post_stream(path, body, idle_timeout) as response:
                if response.status_code >= 300:
                    answer = await read_limited(response, MAX_ERROR_BODY)
                    return Failed(status_error(response.status_code, answer, self.name))
                if accepted is not None:
                    accepted()
                framer = (reframe or _as_is)(framer_for(response.headers.get("content-type")))
                async for data in response.aiter_raw():
                    frames = framer.feed(data)
                    if (end := await _deliver(frames, sink)) is not None:
                        return end
                    if frames:
                        progress.reschedule(loop.time() + idle_timeout)
                if (end := await _deliver(framer.finish(), sink)) is not None:
                    return end
        except TimeoutError:
            if progress.expired():
                return Failed(no_progress(idle_timeout, self.name))
            return Failed(f"the request took longer than {total_timeout:g} s")
        except httpx.ReadTimeout:
            return Failed(no_progress(idle_timeout, self.name))
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return Failed(f"{self.name} closed the connection before the answer was "
                          "complete")
        except httpx.HTTPError as exc:
            return Failed(unreachable_reason(exc, self.base_url, self.name))
        return Failed(f"{self.name}'s answer ended unexpectedly")


def _as_is(framer: Framer) -> Framer:
    return framer


async def _deliver(frames: list[Frame], sink: Sink) -> Done | Failed | None:
    """Send what one read produced; the end, once the answer is over.

    Events that arrived together go out together (one sink call, one WebSocket
    frame): under load, one system call per event was the relay's largest
    cost (profiled).
    """
    texts = [f.text for f in frames if isinstance(f, Relay)]
    if texts:
        await sink(texts)
    for frame in frames:
        if isinstance(frame, Done | Failed):
            return frame
    return None


def no_progress(seconds: float, name: str = "Ollama") -> str:
    return f"{name} sent no complete part of the answer for {seconds:g} s"


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) > limit:
            break
    return bytes(data[:limit])


def unreachable_reason(exc: httpx.HTTPError, base_url: str, name: str = "Ollama") -> str:
    """Why the server could not be reached, in words an owner can act on."""
    if isinstance(exc, httpx.ConnectError):
        return f"{name} is not reachable at {base_url}: is it running?"
    if isinstance(exc, httpx.TimeoutException):
        return f"{name} at {base_url} did not answer in time"
    return f"the connection to {name} at {base_url} failed ({type(exc).__name__})"

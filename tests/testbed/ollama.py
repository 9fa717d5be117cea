"""An Ollama stand-in that sends the bytes Ollama sends.

Byte-level fidelity matters because the worker's framing keys on it: native
streams are ``application/x-ndjson`` with one compact Go-marshalled object per
line and *no* blank lines; ``/v1`` streams are ``text/event-stream`` with
``data: {...}\\n\\n`` events and ``data: [DONE]``; errors are ``{"error": "..."}``
(native, via gin's ``c.JSON``: no trailing newline) or
``{"error": {"message", "type", "param", "code"}}`` (``/v1``, via
``json.Encoder``: trailing newline). Field order follows Ollama's Go structs
(``api/types.go``, ``openai/openai.go``); strings are escaped as Go escapes them
(``<``, ``>``, ``&`` as ``\\u003c`` ...).

Generation is deterministic: the answer is ``reply_tokens``, ending there as a
model ends at end-of-sequence, and cut at the requested length
(``options.num_predict`` natively, ``max_tokens`` on ``/v1``) as Ollama cuts
one, paced by ``token_delay``. (The worker always asks for a length now, the
owner's ceiling, so the answer's own end must be the stand-in's, as a model's.)
A client that disconnects mid-stream cancels the generation, as Ollama does;
that is recorded in ``cancellations``.

Every request is recorded, so a test can prove that a management endpoint
(pull, push, create, copy, delete, blobs, show) was never reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.testbed._util import Observable, main_guard, run_main, serve

OLLAMA_VERSION = "0.12.6"
BUSY = "server busy, please try again.  maximum pending requests exceeded"
MANAGEMENT_PATHS = ("/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete",
                    "/api/blobs", "/api/show")
DEFAULT_REPLY = ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering",
                 "."]


def go_json(obj: Any) -> str:
    """Marshal like Go's encoding/json: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # These characters can only occur inside JSON strings, so replacing them in
    # the whole text is exactly Go's string escaping.
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def go_time(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds, trailing zeros trimmed, UTC: Go's time.Time JSON form."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    fraction = f"{frac:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


GO_ZERO_TIME = "0001-01-01T00:00:00Z"
INFERENCE_PATHS = frozenset({"/api/chat", "/api/generate", "/api/embed", "/api/embeddings",
                             "/v1/chat/completions", "/v1/completions", "/v1/embeddings"})


def keep_alive_ns(value: Any) -> int:
    """Ollama's keep_alive: seconds as a number, or a Go duration like "5m"; 5 minutes
    when absent; negative: for ever (here: a year)."""
    seconds: float = 300.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value:
        units = {"s": 1, "m": 60, "h": 3600}
        try:
            seconds = float(value[:-1]) * units[value[-1]] if value[-1] in units else float(value)
        except ValueError:
            pass
    if seconds < 0:
        seconds = 365 * 86400.0
    return int(seconds * 1_000_000_000)


class TagsShape(enum.Enum):
    """The ``/api/tags`` shapes the worker must accept (seed README) or reject."""

    OBJECT = "object"  # real Ollama: {"models": [{...}]}
    BARE_OBJECTS = "bare-objects"  # [{"name": ...}, ...]
    STRINGS = "strings"  # ["a", "b"]
    HTML = "html"  # a proxy's error page
    GARBAGE = "garbage"  # not JSON at all


class Fault(enum.Enum):
    """Failures of the inference endpoints, as Ollama produces them."""

    NONE = "none"
    BUSY = "busy"  # 503 with Ollama's exact text
    INTERNAL = "internal"  # 500 {"error": ...}
    BAD_REQUEST = "bad-request"  # 400 {"error": ...}
    MID_STREAM = "mid-stream"  # 200, then an {"error"} line after fault_after tokens
    HTML = "html"  # 200 text/html, as a captive portal or proxy would answer
    GARBAGE = "garbage"  # 200 with bytes that are neither JSON nor SSE
    DISCONNECT = "disconnect"  # the connection dies after fault_after tokens
    TRICKLE = "trickle"  # 200, then native lines one byte every trickle_delay seconds


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str = "llama"
    parameter_size: str = "1.2B"
    quantization_level: str = "Q8_0"
    size: int = 1_321_098_329
    remote_model: str | None = None  # cloud models (newer Ollama) carry remote_model/host

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {"parent_model": "", "format": "gguf", "family": self.family,
                "families": [self.family], "parameter_size": self.parameter_size,
                "quantization_level": self.quantization_level}

    def tag(self, modified_at: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "model": self.name}
        if self.remote_model is not None:
            entry["remote_model"] = self.remote_model
            entry["remote_host"] = "https://ollama.com:443"
        entry.update({"modified_at": modified_at, "size": self.size, "digest": self.digest,
                      "details": self.details()})
        return entry


class _ClientGone(ConnectionResetError):
    """The client vanished and the cancellation is already recorded."""


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: bytes


@dataclass
class _Generation:
    model: str
    tokens: list[str]
    prompt_tokens: int
    started_ns: int = field(default_factory=time.monotonic_ns)

    def metrics(self) -> dict[str, int]:
        total = max(time.monotonic_ns() - self.started_ns, 1)
        return {"total_duration": total, "load_duration": 1_334_875,
                "prompt_eval_count": self.prompt_tokens, "prompt_eval_duration": 342_546,
                "eval_count": len(self.tokens), "eval_duration": max(total - 1_677_421, 1)}


def _owner(name: str) -> str:
    """Ollama's ``model.ParseName(name).Namespace``: ``library`` unless namespaced."""
    parts = name.split(":")[0].split("/")
    return parts[-2] if len(parts) >= 2 else "library"


class OllamaStandIn(Observable):
    """Start with ``await ollama.start()``; ``ollama.url`` is its base URL."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: list[ModelInfo] | None = None,
        tags_shape: TagsShape = TagsShape.OBJECT,
        token_delay: float = 0.0,
        reply_tokens: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.models = models if models is not None else [
            ModelInfo("llama3.2:1b"), ModelInfo("mistral:7b", parameter_size="7.2B",
                                                quantization_level="Q4_0", size=4_113_301_824)]
        self.tags_shape = tags_shape
        self.token_delay = token_delay
        self.reply_tokens = reply_tokens or list(DEFAULT_REPLY)
        self.fault = Fault.NONE
        self.fault_after = 2
        self.trickle_delay = 0.2
        self.requests: list[Recorded] = []
        self.cancellations: list[str] = []  # paths whose generation the client abandoned
        self.completed: list[str] = []
        # time.perf_counter() after each write of each streamed response, for the
        # benchmarks: a chunk's latency is its arrival minus when it left here.
        self.stream_writes: list[list[float]] = []
        self.loaded: dict[str, float] = {}
        # Each loaded model's expiry (ns): Ollama sets it when a request on the model
        # ends (its keep-alive from then), and leaves it alone while one runs; a model
        # still loading for its first request shows Go's zero time.
        self.expires: dict[str, int] = {}
        self.unloads: list[str] = []
        self.active = 0
        self.ps_delay = 0.0  # seconds /api/ps takes to answer (a server that is slow to)
        self._modified_at = go_time()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def management_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(MANAGEMENT_PATHS)]

    async def start(self) -> str:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_get("/", self._root)
        r.add_get("/api/version", self._version)
        r.add_get("/api/tags", self._tags)
        r.add_get("/api/ps", self._ps)
        r.add_post("/api/chat", self._chat)
        r.add_post("/api/generate", self._generate)
        r.add_post("/api/embed", self._embed)
        r.add_post("/api/embeddings", self._embeddings)
        r.add_get("/v1/models", self._v1_models)
        r.add_post("/v1/chat/completions", self._v1_chat)
        r.add_post("/v1/completions", self._v1_completions)
        r.add_post("/v1/embeddings", self._v1_embeddings)
        for path in ("/api/pull", "/api/push", "/api/create", "/api/copy", "/api/show"):
            r.add_post(path, self._management)
        r.add_delete("/api/delete", self._management)
        r.add_route("*", "/api/blobs/{digest}", self._management)
        self._runner, self.port = await serve(app, self.host, self.port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- plumbing --------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        self.requests.append(Recorded(request.method, request.path, body))
        self.notify()
        status = 200  # a generation the client left had answered 200 already
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
        except ConnectionResetError:
            # The client went away mid-generation (already recorded as a
            # cancellation); there is nobody left to answer.
            return web.Response(status=499)
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self._request_ended(request.path, body, status)
        return response

    def _request_ended(self, path: str, raw: bytes, status: int) -> None:
        """Like Ollama's scheduler: the model's expiry moves to now + keep-alive, for a
        request it took. One it refused (an error status here: the stand-in checks
        everything before it "loads") moves nothing, as the real Ollama's refusals
        before scheduling a runner (``{"input": 5}`` on /api/embed) do not."""
        if path not in INFERENCE_PATHS or status >= 300:
            return
        try:
            body = json.loads(raw)
            model = self._find(body["model"])
        except (ValueError, KeyError, TypeError):
            return
        if model is not None and model.name in self.loaded:
            self.expires[model.name] = time.time_ns() + keep_alive_ns(body.get("keep_alive"))
            self.notify()

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        # gin's c.JSON: compact, no trailing newline, charset in the content type.
        return web.Response(status=status, body=go_json(obj).encode(),
                            content_type="application/json", charset="utf-8")

    @staticmethod
    def _encoded(obj: Any, status: int = 200) -> web.Response:
        # Go's json.NewEncoder(w).Encode: as above plus a newline (the /v1 writers).
        return web.Response(status=status, body=(go_json(obj) + "\n").encode(),
                            content_type="application/json")

    def _v1_error(self, status: int, message: str) -> web.Response:
        etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return self._encoded(
            {"error": {"message": message, "type": etype, "param": None, "code": None}}, status)

    def _find(self, name: str) -> ModelInfo | None:
        wanted = name if ":" in name else f"{name}:latest"
        return next((m for m in self.models if m.name in (name, wanted)), None)

    async def _body(self, request: web.Request) -> dict[str, Any] | str:
        """The JSON body, or the error text Ollama would give for it."""
        raw = await request.read()
        if not raw:
            return "missing request body"
        try:
            body = json.loads(raw)
        except ValueError:
            first = raw.decode(errors="replace").lstrip()[:1]
            return f"invalid character '{first}' looking for beginning of value"
        if not isinstance(body, dict):
            return "json: cannot unmarshal array into Go value of type api.ChatRequest"
        return body

    def _fault_response(self, v1: bool) -> web.StreamResponse | None:
        if self.fault is Fault.BUSY:
            return self._v1_error(503, BUSY) if v1 else self._json({"error": BUSY}, 503)
        if self.fault is Fault.INTERNAL:
            msg = "llama runner process has terminated: exit status 2"
            return self._v1_error(500, msg) if v1 else self._json({"error": msg}, 500)
        if self.fault is Fault.BAD_REQUEST:
            msg = "invalid options: num_ctx"
            return self._v1_error(400, msg) if v1 else self._json({"error": msg}, 400)
        if self.fault is Fault.HTML:
            return web.Response(text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                                content_type="text/html")
        if self.fault is Fault.GARBAGE:
            return web.Response(body=bytes(range(256)) * 4, content_type="application/octet-stream")
        return None

    def _generation(self, model: str, limit: Any, prompt: str) -> _Generation:
        count = len(self.reply_tokens)
        if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
            count = min(count, int(limit))
        tokens = self.reply_tokens[:count]
        found = self._find(model)
        self.loaded[found.name if found is not None else model] = time.time()
        return _Generation(model, tokens, max(1, len(prompt.split())))

    async def _paced(self, request: web.Request, gen: _Generation) -> AsyncIterator[str]:
        """Yield tokens at the configured pace; stop when the client went away."""
        for i, token in enumerate(gen.tokens):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            if request.transport is None or request.transport.is_closing():
                self._cancelled(request)
                raise _ClientGone
            if self.fault is Fault.DISCONNECT and i == self.fault_after:
                request.transport.abort()
                self._cancelled(request)
                raise _ClientGone
            yield token

    def _cancelled(self, request: web.Request) -> None:
        self.cancellations.append(request.path)
        self.notify()

    async def _stream(
        self, request: web.Request, content_type: str, lines: AsyncIterator[str]
    ) -> web.StreamResponse:
        """Write lines as they come; a vanished client cancels, as in Ollama."""
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        self.active += 1
        writes: list[float] = []
        self.stream_writes.append(writes)
        try:
            async for line in lines:
                await response.write(line.encode())
                writes.append(time.perf_counter())
            self.completed.append(request.path)
        except _ClientGone:
            raise  # already recorded where it was noticed
        except ConnectionResetError:
            self._cancelled(request)
            raise
        except asyncio.CancelledError:
            self._cancelled(request)
            raise
        finally:
            self.active -= 1
            self.notify()
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    # -- simple endpoints ------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        return self._json({"version": OLLAMA_VERSION})

    async def _tags(self, request: web.Request) -> web.Response:
        shape = self.tags_shape
        if shape is TagsShape.OBJECT:
            return self._json({"models": [m.tag(self._modified_at) for m in self.models]})
        if shape is TagsShape.BARE_OBJECTS:
            return self._json([{"name": m.name} for m in self.models])
        if shape is TagsShape.STRINGS:
            return self._json([m.name for m in self.models])
        if shape is TagsShape.HTML:
            return web.Response(text="<!DOCTYPE html><html><body>Sign in</body></html>",
                                content_type="text/html")
        return web.Response(body=b"\x00\xffnot json{", content_type="text/plain")

    async def _ps(self, request: web.Request) -> web.Response:
        if self.ps_delay:
            await asyncio.sleep(self.ps_delay)  # the slow server the test asked for
        running = [
            {"name": m.name, "model": m.name, "size": m.size, "digest": m.digest,
             "details": m.details(),
             "expires_at": go_time(self.expires[m.name]) if m.name in self.expires
             else GO_ZERO_TIME, "size_vram": m.size}
            for m in self.models if m.name in self.loaded
        ]
        return self._json({"models": running})

    async def _v1_models(self, request: web.Request) -> web.Response:
        created = int(time.time())
        return self._encoded({"object": "list", "data": [
            {"id": m.name, "object": "model", "created": created, "owned_by": _owner(m.name)}
            for m in self.models]})

    async def _management(self, request: web.Request) -> web.Response:
        # Reaching here at all is what the tests look for; answer like Ollama would.
        return self._json({"status": "success"})

    # -- native inference ------------------------------------------------

    async def _native_preamble(
        self, request: web.Request
    ) -> tuple[dict[str, Any], ModelInfo] | web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, str):
            return self._json({"error": body}, 400)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return self._json({"error": "model is required"}, 400)
        model = self._find(name)
        if model is None:
            return self._json({"error": f"model '{name}' not found"}, 404)
        fault = self._fault_response(v1=False)
        if fault is not None:
            return fault
        return body, model

    def _unload_or_load(self, body: dict[str, Any], name: str) -> str:
        if body.get("keep_alive") in (0, "0", "0s", "0m"):
            self.loaded.pop(name, None)
            self.expires.pop(name, None)
            self.unloads.append(name)
            self.notify()
            return "unload"
        self.loaded[name] = time.time()
        return "load"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        pre = await self._native_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, model = pre
        messages = body.get("messages") or []
        name = body["model"]
        if not messages:
            reason = self._unload_or_load(body, model.name)
            return self._json({"model": name, "created_at": go_time(),
                               "message": {"role": "assistant", "content": ""},
                               "done": True, "done_reason": reason})
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        gen = self._generation(name, (body.get("options") or {}).get("num_predict"), prompt)

        def final(content: str) -> dict[str, Any]:
            return {"model": name, "created_at": go_time(),
                    "message": {"role": "assistant", "content": content},
                    "done": True, "done_reason": "stop", **gen.metrics()}

        def partial(token: str) -> dict[str, Any]:
            return {"model": name, "created_at": go_time(),
                    "message": {"role": "assistant", "content": token}, "done": False}

        return await self._native_answer(request, body, gen, partial, final)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        pre = await self._native_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, model = pre
        name = body["model"]
        prompt = body.get("prompt")
        if not prompt:
            reason = self._unload_or_load(body, model.name)
            return self._json({"model": name, "created_at": go_time(), "response": "",
                               "done": True, "done_reason": reason})
        gen = self._generation(name, (body.get("options") or {}).get("num_predict"), str(prompt))
        context = list(range(1, gen.prompt_tokens + len(gen.tokens) + 1))

        def final(text: str) -> dict[str, Any]:
            return {"model": name, "created_at": go_time(), "response": text, "done": True,
                    "done_reason": "stop", "context": context, **gen.metrics()}

        def partial(token: str) -> dict[str, Any]:
            return {"model": name, "created_at": go_time(), "response": token, "done": False}

        return await self._native_answer(request, body, gen, partial, final)

    async def _native_answer(
        self, request: web.Request, body: dict[str, Any], gen: _Generation,
        partial: Callable[[str], dict[str, Any]], final: Callable[[str], dict[str, Any]],
    ) -> web.StreamResponse:
        """One object (``stream: false``) or NDJSON: a line per token, then the final one."""
        if body.get("stream") is False:
            text = "".join([t async for t in self._paced(request, gen)])
            return self._json(final(text))

        async def lines() -> AsyncIterator[str]:
            i = 0
            async for token in self._paced(request, gen):
                if self.fault is Fault.MID_STREAM and i == self.fault_after:
                    yield go_json({"error": "an error was encountered while running the model: "
                                            "unexpected EOF"}) + "\n"
                    return
                line = go_json(partial(token)) + "\n"
                if self.fault is Fault.TRICKLE:
                    for char in line:  # always some progress in bytes, never a whole line
                        await asyncio.sleep(self.trickle_delay)
                        yield char
                else:
                    yield line
                i += 1
            yield go_json(final("")) + "\n"

        return await self._stream(request, "application/x-ndjson", lines())

    @staticmethod
    def _vector(text: str, dims: int = 8) -> list[float]:
        rng = random.Random(hashlib.sha256(text.encode()).digest())
        return [round(rng.uniform(-0.1, 0.1), 6) for _ in range(dims)]

    def _inputs(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(v) for v in value]
        return []

    async def _embed(self, request: web.Request) -> web.StreamResponse:
        pre = await self._native_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, _ = pre
        inputs = self._inputs(body.get("input"))
        return self._json({"model": body["model"],
                           "embeddings": [self._vector(t) for t in inputs],
                           "total_duration": 14_143_917, "load_duration": 1_019_500,
                           "prompt_eval_count": sum(len(t.split()) for t in inputs)})

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        pre = await self._native_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, _ = pre
        return self._json({"embedding": self._vector(str(body.get("prompt", "")))})

    # -- OpenAI-compatible inference ---------------------------------------

    async def _v1_preamble(
        self, request: web.Request
    ) -> tuple[dict[str, Any], str] | web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, str):
            return self._v1_error(400, body)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return self._v1_error(400, "model is required")
        if self._find(name) is None:
            return self._v1_error(404, f"model '{name}' not found")
        fault = self._fault_response(v1=True)
        if fault is not None:
            return fault
        return body, name

    def _usage(self, gen: _Generation) -> dict[str, int]:
        return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": len(gen.tokens),
                "total_tokens": gen.prompt_tokens + len(gen.tokens)}

    async def _v1_chat(self, request: web.Request) -> web.StreamResponse:
        pre = await self._v1_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, name = pre
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._v1_error(400, "[] is too short - 'messages'")
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        gen = self._generation(name, body.get("max_tokens"), prompt)
        cid, created = f"chatcmpl-{random.randrange(999)}", int(time.time())

        if not body.get("stream"):
            text = "".join([t async for t in self._paced(request, gen)])
            return self._encoded({
                "id": cid, "object": "chat.completion", "created": created, "model": name,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": self._usage(gen)})

        def chunk(content: str, finish: str | None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": name, "system_fingerprint": "fp_ollama",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                                 "finish_reason": finish}]}

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[str]:
            i = 0
            async for token in self._paced(request, gen):
                if self.fault is Fault.MID_STREAM and i == self.fault_after:
                    return  # a /v1 stream that fails simply ends, without [DONE]
                yield f"data: {go_json(chunk(token, None))}\n\n"
                i += 1
            last = chunk("", "stop")
            yield f"data: {go_json(last)}\n\n"
            if include_usage:
                last["choices"] = []
                last["usage"] = self._usage(gen)
                yield f"data: {go_json(last)}\n\n"
            yield "data: [DONE]\n\n"

        return await self._stream(request, "text/event-stream", events())

    async def _v1_completions(self, request: web.Request) -> web.StreamResponse:
        pre = await self._v1_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, name = pre
        gen = self._generation(name, body.get("max_tokens"), str(body.get("prompt", "")))
        cid, created = f"cmpl-{random.randrange(999)}", int(time.time())

        if not body.get("stream"):
            text = "".join([t async for t in self._paced(request, gen)])
            return self._encoded({
                "id": cid, "object": "text_completion", "created": created, "model": name,
                "system_fingerprint": "fp_ollama",
                "choices": [{"text": text, "index": 0, "finish_reason": "stop"}],
                "usage": self._usage(gen)})

        def chunk(text: str, finish: str | None) -> dict[str, Any]:
            return {"id": cid, "object": "text_completion", "created": int(time.time()),
                    "choices": [{"text": text, "index": 0, "finish_reason": finish}],
                    "model": name, "system_fingerprint": "fp_ollama"}

        async def events() -> AsyncIterator[str]:
            i = 0
            async for token in self._paced(request, gen):
                if self.fault is Fault.MID_STREAM and i == self.fault_after:
                    return
                yield f"data: {go_json(chunk(token, None))}\n\n"
                i += 1
            yield f"data: {go_json(chunk('', 'stop'))}\n\n"
            yield "data: [DONE]\n\n"

        return await self._stream(request, "text/event-stream", events())

    async def _v1_embeddings(self, request: web.Request) -> web.StreamResponse:
        pre = await self._v1_preamble(request)
        if isinstance(pre, web.StreamResponse):
            return pre
        body, name = pre
        inputs = self._inputs(body.get("input"))
        if not inputs:
            return self._v1_error(400, "invalid input")
        tokens = sum(len(t.split()) for t in inputs)
        return self._encoded({
            "object": "list",
            "data": [{"object": "embedding", "embedding": self._vector(t), "index": i}
                     for i, t in enumerate(inputs)],
            "model": name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _build(args: argparse.Namespace) -> OllamaStandIn:
    return OllamaStandIn(host=args.host, port=args.port, token_delay=args.token_delay,
                         tags_shape=TagsShape(args.tags_shape))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-delay", type=float, default=0.05,
                        help="seconds between streamed tokens")
    parser.add_argument("--tags-shape", choices=[s.value for s in TagsShape],
                        default=TagsShape.OBJECT.value)


def main(argv: list[str] | None = None) -> int:
    return run_main("Ollama stand-in", _add_arguments, _build, argv)


if __name__ == "__main__":
    main_guard(main)

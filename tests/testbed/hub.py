"""A GhubAi hub for tests: ASP.NET Core SignalR's wire protocol, GridHub's behaviour.

Written from the SignalR specs (TransportProtocols.md, HubProtocol.md) and the
contract in the project's PROTOCOL notes, *not* from pysignalr, so that our
client and this server cannot share a mistake. Microsoft's own JavaScript client
checks it in ``tests/test_conformance.py``.

What it does, in the order a client meets it:

- ``POST {path}/negotiate``: version 0 (``connectionId`` is the id) and version 1
  (``connectionToken`` is the id); optionally an Azure SignalR style redirect
  (``{url, accessToken}``). Ids are single-use and expire after ``id_ttl``
  seconds unused: the upgrade then answers 404 ``No Connection with that ID``.
- ``GET {path}?id=...`` upgraded to a WebSocket; the JSON handshake
  (``{"protocol":"json","version":1}`` + 0x1E, answered ``{}`` or ``{"error"}``);
  records framed by 0x1E, several per frame allowed both ways.
- Keep-alive: a Ping every ``ping_interval``; a client silent for
  ``client_timeout`` is closed with an error; one incoming message larger than
  ``max_message_size`` bytes (separator included) closes the connection with
  ``Connection closed with an error.`` and ``allowReconnect: true``, as ASP.NET
  Core does.
- GridHub: ``RegisterNode`` (answers ``Registered``), ``StreamInferenceResponse``
  (a channel per request id, completed by the first ``isFinal``; unknown ids
  ignored), the registry (least-loaded node holding the model,
  case-insensitive), and the HTTP API ``GET /v1/models`` and
  ``POST /v1/chat/completions`` (streamed and not).
- Auth by token, Bearer header or ``access_token`` query: optional, required,
  or reject everything.
- Faults on demand: drop sockets, close with or without error/allowReconnect,
  go silent, fail negotiate, restart on the same port.
- Every HTTP request, frame and message is recorded for assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import enum
import json
import os
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.testbed._util import Observable, main_guard, run_main, serve

RS = "\x1e"
RS_BYTE = 0x1E

# SignalR hub message types (HubProtocol.md).
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL_INVOCATION, PING, CLOSE = range(
    1, 8
)

CLOSED_WITH_ERROR = "Connection closed with an error."
NO_CONNECTION = "No Connection with that ID"

TRANSPORTS = [
    {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
    {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
    {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
]


class AuthMode(enum.Enum):
    """How the hub treats the provider token."""

    OPTIONAL = "optional"  # no token is fine; a wrong one is refused
    REQUIRED = "required"  # a known token is needed
    REJECT_ALL = "reject"  # every request gets 401 (a revoked token)
    # GhubAi 44abd00: the token is read from the access_token query only (a bearer header
    # is never looked at) and nothing is refused, since no endpoint has [Authorize].
    GHUBAI = "ghubai"


class Behaviour(enum.Enum):
    """Whose rules the hub follows where hubs differ.

    GHUBAI is the public GhubAi hub (commit 44abd00), read line by line: every
    RegisterNode resets the node's load count; an unknown model is 404
    ``{"error": "no node with model"}``; a request never times out (it ends only
    with a final, from any connection); a non-streamed answer is the fragments
    parsed as JSON and returned with 200 whatever it says, and 500 when it is
    not JSON; a Close message from a client is a protocol error. FORGIVING is
    this test bed's older, kinder hub, kept by name for the tests that need it.
    """

    GHUBAI = "ghubai"
    FORGIVING = "forgiving"


class Breakage(enum.Enum):
    """Deliberate protocol bugs, to prove the conformance test notices them."""

    NONE = "none"
    FRAMING = "framing"  # messages sent without the 0x1E terminator
    HANDSHAKE = "handshake"  # handshake answered with garbage instead of {}
    NEGOTIATE = "negotiate"  # v1 ids keyed by connectionId instead of connectionToken


@dataclass
class HttpRecord:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0  # 0 while the handler runs (a WebSocket, until it closes)
    at: float = field(default_factory=time.monotonic, compare=False)  # when it came


@dataclass(frozen=True)
class FrameRecord:
    connection_id: str
    direction: str  # "in" or "out"
    data: str


@dataclass(frozen=True)
class MessageRecord:
    connection_id: str
    direction: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Registration:
    connection_id: str
    machine_name: str
    models: tuple[str, ...]
    at: float = field(default_factory=time.monotonic, compare=False)  # when it came


@dataclass
class Node:
    connection_id: str
    machine_name: str
    models: tuple[str, ...]
    active: int = 0

    def serves(self, model: str) -> bool:
        return any(m.casefold() == model.casefold() for m in self.models)


@dataclass
class HubRequest:
    """One request the hub routed to a worker, and the chunks that came back."""

    request_id: str
    target: str
    model: str
    endpoint_uri: str
    body: str
    connection_id: str
    fragments: list[str] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    @property
    def text(self) -> str:
        return "".join(self.fragments)

    async def wait(self, timeout: float | None = 30.0) -> str:
        """Wait for the final chunk and return the concatenated fragments."""
        try:  # asyncio.timeout rather than wait_for, which can lose a cancellation on 3.11
            async with asyncio.timeout(timeout):
                await self.done.wait()
        except TimeoutError:
            raise AssertionError(
                f"request {self.request_id} got no final chunk within {timeout}s "
                f"({len(self.chunks)} chunks so far)"
            ) from None
        return self.text

    async def stream(self) -> AsyncIterator[str]:
        """Yield fragments as they arrive, until the final chunk."""
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


@dataclass
class _Connection:
    id: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    last_received: float = field(default_factory=time.monotonic)
    handshake_done: bool = False
    closed: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _new_id() -> str:
    # ASP.NET Core ids: 16 random bytes, base64url without padding (22 chars).
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def _ci_get(obj: dict[str, Any], name: str) -> Any:
    """Read a property the way ASP.NET does: names match case-insensitively."""
    for key, value in obj.items():
        if key.casefold() == name.casefold():
            return value
    return None


class ProtocolError(Exception):
    """A message the server cannot accept; ends the connection like ASP.NET Core."""


class GridHub(Observable):
    """The test hub. Start with ``await hub.start()``; ``hub.url`` is the hub URL."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/gridhub",
        tokens: Iterable[str] = (),
        auth: AuthMode = AuthMode.OPTIONAL,
        ping_interval: float = 15.0,
        client_timeout: float = 30.0,
        handshake_timeout: float = 15.0,
        id_ttl: float = 15.0,
        max_message_size: int = 32 * 1024,
        redirect: bool = False,
        redirect_to: str | None = None,
        negotiate_error: str | None = None,
        request_timeout: float | None = None,
        behaviour: Behaviour = Behaviour.GHUBAI,
        breakage: Breakage = Breakage.NONE,
        tls: ssl.SSLContext | None = None,
        https_redirection: bool = False,
    ) -> None:
        super().__init__()
        self.host, self.port, self.path = host, port, path.rstrip("/")
        self.tokens = set(tokens)
        self.auth = auth
        self.ping_interval = ping_interval
        self.client_timeout = client_timeout
        self.handshake_timeout = handshake_timeout
        self.id_ttl = id_ttl
        self.max_message_size = max_message_size
        self.redirect = redirect
        # A negotiate answer sending the client to another hub, without a token of its own
        # (the hostile-hub tests: our token must not follow it there).
        self.redirect_to = redirect_to
        # A negotiate answer {"error": ...}; "{token}" in it echoes the client's token back.
        self.negotiate_error = negotiate_error
        self.behaviour = behaviour
        # GhubAi has no request timeout; the forgiving hub gives up after 300 s.
        self.request_timeout = request_timeout if request_timeout is not None else (
            None if behaviour is Behaviour.GHUBAI else 300.0)
        self.breakage = breakage
        self.tls = tls
        # ASP.NET's UseHttpsRedirection: a plain-http listener beside the TLS one that
        # answers every request with 307 to the same path and query on https (http_url).
        self.https_redirection = https_redirection
        if https_redirection and tls is None:
            raise ValueError("https_redirection needs tls")
        self.http_port = 0
        self._http_runner: web.AppRunner | None = None
        self.tokens_seen: list[str | None] = []  # the token each negotiate carried, as read
        self.silent = False
        self._reading = asyncio.Event()  # cleared: the hub stops reading what workers send
        self._reading.set()
        # Fault: the next N negotiates fail with this status (N None: until cleared).
        self._negotiate_failure: tuple[int, int | None] | None = None
        self._runner: web.AppRunner | None = None
        self._pending: dict[str, tuple[str, float]] = {}  # id -> (connection id, issued at)
        self._used: set[str] = set()
        self._redirect_tokens: set[str] = set()
        self.connections: dict[str, _Connection] = {}
        self.nodes: dict[str, Node] = {}
        self.requests: dict[str, HubRequest] = {}
        self.http: list[HttpRecord] = []
        self.frames: list[FrameRecord] = []
        self.messages: list[MessageRecord] = []
        self.registrations: list[Registration] = []
        self.ignored_chunks: list[dict[str, Any]] = []
        self.binding_errors: list[str] = []
        self.closes: list[tuple[str, str]] = []  # (connection id, why)
        self.client_closes: list[tuple[str, int]] = []  # (connection id, WebSocket close code)

    # -- lifecycle -------------------------------------------------------

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}{self.path}"

    async def start(self) -> str:
        app = web.Application(middlewares=[self._record_middleware])
        app.router.add_post(f"{self.path}/negotiate", self._negotiate)
        app.router.add_get(self.path, self._websocket)
        app.router.add_post("/azure/client/negotiate", self._negotiate)
        app.router.add_get("/azure/client/", self._websocket)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        self._runner, self.port = await serve(app, self.host, self.port, self.tls)
        if self.https_redirection and self._http_runner is None:
            front = web.Application(middlewares=[self._record_middleware])
            front.router.add_route("*", "/{tail:.*}", self._to_https)
            self._http_runner, self.http_port = await serve(front, self.host, self.http_port)
        return self.url

    @property
    def http_url(self) -> str:
        """The plain-http address that UseHttpsRedirection sends on to ``url``."""
        return f"http://{self.host}:{self.http_port}{self.path}"

    async def _to_https(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{self.base}{request.path_qs}")

    async def stop(self) -> None:
        """Stop like a killed process: sockets dropped, nothing said."""
        await self.drop_connections()
        for runner in (self._runner, self._http_runner):
            if runner is not None:
                await runner.cleanup()
        self._runner = self._http_runner = None
        for req in self.requests.values():
            if not req.done.is_set():
                req.queue.put_nowait(None)

    async def restart(self) -> None:
        """Stop and start again on the same port; ids issued before are forgotten."""
        await self.stop()
        self._pending.clear()
        self.nodes.clear()
        await self.start()
        self.notify()

    # -- faults ----------------------------------------------------------

    async def drop_connections(self) -> None:
        """Abort every socket with no Close message and no WebSocket close frame."""
        for conn in list(self.connections.values()):
            conn.closed = True
            self.closes.append((conn.id, "dropped"))
            if conn.transport is not None:
                conn.transport.abort()
            for task in conn.tasks:
                task.cancel()
        self.notify()

    async def close_connections(
        self, error: str | None = None, allow_reconnect: bool | None = None
    ) -> None:
        """Send a Close message (with the given fields) and close every connection."""
        msg: dict[str, Any] = {"type": CLOSE}
        if error is not None:
            msg["error"] = error
        if allow_reconnect is not None:
            msg["allowReconnect"] = allow_reconnect
        for conn in list(self.connections.values()):
            await self._close(conn, msg, "closed by test")

    def stop_reading(self, stop: bool = True) -> None:
        """Stop (or resume) reading what workers send, so their sends back up."""
        if stop:
            self._reading.clear()
        else:
            self._reading.set()

    def go_silent(self, silent: bool = True) -> None:
        """Stop sending anything (pings included); WebSocket pings are still answered."""
        self.silent = silent

    def fail_negotiate(self, status: int, times: int | None = None) -> None:
        """Make the next ``times`` negotiates (all, if None) fail with ``status``."""
        self._negotiate_failure = (status, times)

    def clear_faults(self) -> None:
        self._negotiate_failure = None
        self.silent = False
        self._reading = asyncio.Event()  # cleared: the hub stops reading what workers send
        self._reading.set()

    # -- HTTP plumbing ---------------------------------------------------

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        # Recorded on entry: a WebSocket handler only returns when the socket closes.
        record = HttpRecord(
            request.method, request.path, dict(request.query), dict(request.headers)
        )
        self.http.append(record)
        self.notify()
        try:
            response: web.StreamResponse = await handler(request)
            record.status = response.status
            return response
        except web.HTTPException as exc:
            record.status = exc.status
            raise

    def _token_of(self, request: web.Request) -> str | None:
        if self.auth is AuthMode.GHUBAI:
            return request.query.get("access_token")
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.query.get("access_token")

    def _authorized(self, request: web.Request) -> bool:
        token = self._token_of(request)
        if request.path.startswith("/azure/"):
            return token in self._redirect_tokens
        if self.auth is AuthMode.REJECT_ALL:
            return False
        if self.auth is AuthMode.GHUBAI:
            return True
        if token is None:
            return self.auth is AuthMode.OPTIONAL
        return token in self.tokens

    async def _negotiate(self, request: web.Request) -> web.Response:
        if self._negotiate_failure is not None:
            status, times = self._negotiate_failure
            if times is not None:
                self._negotiate_failure = (status, times - 1) if times > 1 else None
            return web.Response(status=status, text=f"negotiate failure injected ({status})")
        self.tokens_seen.append(self._token_of(request))
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        if self.redirect_to is not None:
            return web.json_response({"url": self.redirect_to})
        if self.negotiate_error is not None:
            token = self._token_of(request) or ""
            return web.json_response({"error": self.negotiate_error.replace("{token}", token)})
        if self.redirect and not request.path.startswith("/azure/"):
            access_token = _new_id()
            self._redirect_tokens.add(access_token)
            return web.json_response(
                {"url": f"{self.base}/azure/client/?hub=gridhub", "accessToken": access_token}
            )
        try:
            version = int(request.query.get("negotiateVersion", "0"))
        except ValueError:
            version = 0
        connection_id = _new_id()
        body: dict[str, Any] = {"negotiateVersion": min(version, 1), "connectionId": connection_id}
        key = connection_id
        if version >= 1:
            token = _new_id()
            body["connectionToken"] = token
            # The deliberate bug keeps v1 ids under the connectionId (a v0/v1 mix-up):
            # the client then upgrades with the token and meets a 404.
            key = connection_id if self.breakage is Breakage.NEGOTIATE else token
        body["availableTransports"] = TRANSPORTS
        self._pending[key] = (connection_id, time.monotonic())
        return web.json_response(body)

    def _claim_id(self, key: str | None) -> str | None:
        """Single use, and only within ``id_ttl`` of negotiate; None means 404."""
        if key is None:
            return _new_id()  # skipNegotiation: ASP.NET creates a connection
        entry = self._pending.pop(key, None)
        if entry is None or key in self._used:
            return None
        self._used.add(key)
        connection_id, issued = entry
        if time.monotonic() - issued > self.id_ttl:
            return None
        return connection_id

    # -- WebSocket -------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        connection_id = self._claim_id(request.query.get("id"))
        if connection_id is None:
            return web.Response(status=404, text=NO_CONNECTION)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="WebSocket upgrade expected")
        await ws.prepare(request)
        transport = request.transport
        conn = _Connection(
            connection_id, ws, transport if isinstance(transport, asyncio.Transport) else None
        )
        self.connections[connection_id] = conn
        self.notify()
        conn.tasks = [
            asyncio.create_task(self._ping_loop(conn)),
            asyncio.create_task(self._timeout_loop(conn)),
        ]
        try:
            await self._receive_loop(conn)
        finally:
            for task in conn.tasks:
                task.cancel()
            self.connections.pop(connection_id, None)
            self.nodes.pop(connection_id, None)
            conn.closed = True
            self.notify()
        return ws

    async def _receive_loop(self, conn: _Connection) -> None:
        buffer = bytearray()
        handshake_deadline = time.monotonic() + self.handshake_timeout
        while not conn.closed:
            timeout = None
            if not conn.handshake_done:
                timeout = max(0.0, handshake_deadline - time.monotonic())
            await self._reading.wait()
            try:
                msg = await conn.ws.receive(timeout=timeout)
            except TimeoutError:
                await self._handshake_reply(conn, {"error": "Handshake was canceled."})
                return
            if msg.type == WSMsgType.TEXT:
                data = msg.data.encode()
            elif msg.type == WSMsgType.BINARY:
                data = msg.data
            else:
                if msg.type == WSMsgType.CLOSE:
                    self.client_closes.append((conn.id, int(msg.data)))
                return  # CLOSE, CLOSED, ERROR
            conn.last_received = time.monotonic()
            self.frames.append(FrameRecord(conn.id, "in", data.decode(errors="replace")))
            buffer += data
            try:
                for record in self._split_records(buffer):
                    await self._handle_record(conn, record)
                    if conn.closed:
                        return
            except ProtocolError as exc:
                await self._close(
                    conn,
                    {"type": CLOSE, "error": CLOSED_WITH_ERROR, "allowReconnect": True},
                    str(exc),
                )
                return

    def _split_records(self, buffer: bytearray) -> list[bytes]:
        """Take complete records off the buffer, enforcing the receive limit.

        ASP.NET Core parses at most ``MaximumReceiveMessageSize`` bytes at a time:
        a record whose terminator is not within that window is an error, so the
        limit counts the 0x1E.
        """
        records: list[bytes] = []
        while True:
            idx = buffer.find(RS_BYTE)
            if idx == -1:
                if len(buffer) >= self.max_message_size:
                    raise ProtocolError(
                        f"The maximum message size of {self.max_message_size}B was exceeded."
                    )
                return records
            if idx + 1 > self.max_message_size:
                raise ProtocolError(
                    f"The maximum message size of {self.max_message_size}B was exceeded."
                )
            records.append(bytes(buffer[:idx]))
            del buffer[: idx + 1]

    async def _handle_record(self, conn: _Connection, record: bytes) -> None:
        try:
            message = json.loads(record)
        except ValueError as exc:
            if not conn.handshake_done:
                await self._handshake_reply(conn, {
                    "error": f"An unexpected error occurred during connection handshake. {exc}"})
                return
            raise ProtocolError(f"invalid JSON: {exc}") from exc
        if not isinstance(message, dict):
            if not conn.handshake_done:
                await self._handshake_reply(conn, {"error": "Handshake request is not an object."})
                return
            raise ProtocolError("message is not a JSON object")
        self.messages.append(MessageRecord(conn.id, "in", message))
        self.notify()
        if not conn.handshake_done:
            await self._handshake(conn, message)
            return
        mtype = message.get("type")
        if mtype == INVOCATION:
            await self._invocation(conn, message)
        elif mtype in (PING, STREAM_ITEM, COMPLETION, CANCEL_INVOCATION, STREAM_INVOCATION):
            return  # we never invoke the client with an id; pings need no answer
        elif mtype == CLOSE and self.behaviour is Behaviour.GHUBAI:
            # ASP.NET accepts a Close only from a server: from a client it is an error.
            raise ProtocolError("a client sent a Close message")
        elif mtype == CLOSE:
            conn.closed = True
            self.closes.append((conn.id, "client sent Close"))
            await conn.ws.close()
        else:
            raise ProtocolError(f"Unknown message type: {mtype!r}")

    async def _handshake(self, conn: _Connection, message: dict[str, Any]) -> None:
        protocol, version = message.get("protocol"), message.get("version")
        if not isinstance(protocol, str) or not isinstance(version, int):
            await self._handshake_reply(
                conn,
                {"error": "An unexpected error occurred during connection handshake. "
                 "InvalidDataException: Missing required property 'protocol' or 'version'."},
            )
        elif protocol != "json":
            await self._handshake_reply(
                conn, {"error": f"The protocol '{protocol}' is not supported."}
            )
        elif version > 1:
            await self._handshake_reply(
                conn,
                {"error": f"The server does not support version {version} of the "
                 f"'{protocol}' protocol."},
            )
        else:
            conn.handshake_done = True
            if self.breakage is Breakage.HANDSHAKE:
                await self._send_raw(conn, '{"handshake":')
            else:
                await self._send_raw(conn, "{}" + RS)
            self.notify()

    async def _handshake_reply(self, conn: _Connection, error: dict[str, str]) -> None:
        await self._send_raw(conn, json.dumps(error) + RS)
        conn.closed = True
        self.closes.append((conn.id, f"handshake: {error['error']}"))
        await conn.ws.close()

    async def _invocation(self, conn: _Connection, message: dict[str, Any]) -> None:
        target = message.get("target")
        arguments = message.get("arguments")
        invocation_id = message.get("invocationId")
        if not isinstance(target, str) or not isinstance(arguments, list):
            raise ProtocolError("invocation without target or arguments")
        method = {"registernode": self._register_node,
                  "streaminferenceresponse": self._stream_inference_response}.get(target.casefold())
        error: str | None = None
        if method is None:
            error = (f"Failed to invoke '{target}' due to an error on the server. "
                     "HubException: Method does not exist.")
        elif len(arguments) != 1 or not isinstance(arguments[0], dict):
            error = (f"Failed to invoke '{target}' due to an error on the server. "
                     f"InvalidDataException: Invocation provides {len(arguments)} argument(s) "
                     "but target expects 1.")
        else:
            try:
                await method(conn, arguments[0])
            except (TypeError, ValueError) as exc:
                error = f"An unexpected error occurred invoking '{target}' on the server. {exc}"
        if error is not None:
            self.binding_errors.append(error)
            self.notify()
        if isinstance(invocation_id, str):
            completion: dict[str, Any] = {"type": COMPLETION, "invocationId": invocation_id}
            if error is not None:
                completion["error"] = error
            await self._send(conn, completion)

    async def _register_node(self, conn: _Connection, arg: dict[str, Any]) -> None:
        machine = _ci_get(arg, "machineName")
        models = _ci_get(arg, "availableModels")
        if models is None:
            models = []
        if not isinstance(machine, str) or not isinstance(models, list) or not all(
            isinstance(m, str) for m in models
        ):
            raise TypeError("NodeRegistration has the wrong shape")
        node = self.nodes.get(conn.id)
        if node is None:
            node = self.nodes[conn.id] = Node(conn.id, machine, tuple(models))
        else:
            node.machine_name, node.models = machine, tuple(models)
            if self.behaviour is Behaviour.GHUBAI:
                node.active = 0  # GhubAi's NodeRegistry.Register starts the load over
        self.registrations.append(Registration(conn.id, machine, tuple(models)))
        await self._send(conn, {"type": INVOCATION, "target": "Registered", "arguments": []})
        self.notify()

    async def _stream_inference_response(self, conn: _Connection, arg: dict[str, Any]) -> None:
        request_id = _ci_get(arg, "requestId")
        fragment = _ci_get(arg, "tokenFragment")
        is_final = _ci_get(arg, "isFinal")
        if not isinstance(request_id, str):
            raise TypeError("InferenceChunk.requestId must be a string")
        req = self.requests.get(request_id)
        if req is None or req.done.is_set():
            self.ignored_chunks.append(arg)
            self.notify()
            return
        req.chunks.append(arg)
        if isinstance(fragment, str) and fragment:
            req.fragments.append(fragment)
            req.queue.put_nowait(fragment)
        if is_final is True:
            self._finish(req)
        self.notify()

    def _finish(self, req: HubRequest) -> None:
        req.done.set()
        req.queue.put_nowait(None)
        node = self.nodes.get(req.connection_id)
        if node is not None and node.active > 0:
            node.active -= 1

    # -- sending ---------------------------------------------------------

    async def _send_raw(self, conn: _Connection, text: str) -> None:
        if conn.closed or conn.ws.closed:
            return
        self.frames.append(FrameRecord(conn.id, "out", text))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(text)

    async def _send(self, conn: _Connection, *messages: dict[str, Any]) -> None:
        """Send messages in one frame (several records per frame is legal)."""
        if self.silent:
            return
        terminator = "" if self.breakage is Breakage.FRAMING else RS
        text = "".join(json.dumps(m, separators=(",", ":")) + terminator for m in messages)
        for m in messages:
            self.messages.append(MessageRecord(conn.id, "out", m))
        await self._send_raw(conn, text)

    async def send_raw(self, connection_id: str, text: str) -> None:
        """Inject an arbitrary frame (fuzzing and malformed-message tests)."""
        await self._send_raw(self.connections[connection_id], text)

    async def invoke(self, connection_id: str, target: str, *arguments: Any) -> None:
        """Invoke a client method without an invocation id (how GridHub calls workers)."""
        await self._send(
            self.connections[connection_id],
            {"type": INVOCATION, "target": target, "arguments": list(arguments)},
        )

    async def _close(self, conn: _Connection, message: dict[str, Any], why: str) -> None:
        if conn.closed:
            return
        if not self.silent:
            await self._send_raw(conn, json.dumps(message, separators=(",", ":")) + RS)
            self.messages.append(MessageRecord(conn.id, "out", message))
        conn.closed = True
        self.closes.append((conn.id, why))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.close()
        self.notify()

    async def _ping_loop(self, conn: _Connection) -> None:
        while not conn.closed:
            await asyncio.sleep(self.ping_interval)
            if conn.handshake_done and not self.silent:
                await self._send(conn, {"type": PING})

    async def _timeout_loop(self, conn: _Connection) -> None:
        step = min(1.0, self.client_timeout / 4)
        while not conn.closed:
            await asyncio.sleep(step)
            if self.silent:
                continue
            if time.monotonic() - conn.last_received > self.client_timeout:
                await self._close(
                    conn,
                    {"type": CLOSE, "error": CLOSED_WITH_ERROR, "allowReconnect": True},
                    "client timeout",
                )

    # -- routing ---------------------------------------------------------

    def node_for(self, model: str) -> Node | None:
        """GridHub's choice: the least-loaded node whose list holds the model."""
        candidates = [n for n in self.nodes.values() if n.serves(model)]
        return min(candidates, key=lambda n: n.active, default=None)

    def models(self) -> list[str]:
        seen: dict[str, str] = {}
        for node in self.nodes.values():
            for m in node.models:
                seen.setdefault(m.casefold(), m)
        return list(seen.values())

    async def dispatch(
        self,
        model: str,
        endpoint_uri: str,
        body: str | dict[str, Any],
        target: str = "RequestInference",
        request_id: str | None = None,
    ) -> HubRequest:
        """Route a request to a node, as the hub's HTTP front does; AssertionError if none."""
        node = self.node_for(model)
        if node is None:
            raise AssertionError(f"no node serves {model!r}; registry: {self.nodes}")
        body_text = body if isinstance(body, str) else json.dumps(body)
        req = HubRequest(
            request_id or uuid.uuid4().hex, target, model, endpoint_uri, body_text,
            node.connection_id,
        )
        self.requests[req.request_id] = req
        node.active += 1
        await self.invoke(
            node.connection_id,
            target,
            {"requestId": req.request_id, "model": model, "endpointUri": endpoint_uri,
             "requestBody": body_text},
        )
        return req

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list",
             "data": [{"id": m, "object": "model", "created": 0, "owned_by": "ghubai"}
                      for m in self.models()]}
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            return _openai_error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _openai_error(400, "The request needs a 'model'.")
        model = body["model"]
        ghubai = self.behaviour is Behaviour.GHUBAI
        if self.node_for(model) is None:
            if ghubai:
                return web.json_response({"error": "no node with model"}, status=404)
            return _openai_error(503, f"No provider is serving the model '{model}'.")
        req = await self.dispatch(model, "/v1/chat/completions", raw, target="RequestOpenAI")
        if body.get("stream") is True:
            return await self._relay_stream(request, req)
        try:
            text = await req.wait(self.request_timeout)
        except AssertionError:
            return _openai_error(504, "The provider did not answer in time.")
        if ghubai:  # Ok(JsonDocument.Parse(fragments)), a JsonException becomes a 500
            try:
                return web.json_response(json.loads(text))
            except ValueError as exc:
                return web.json_response({"error": f"JsonException: {exc}"}, status=500)
        if text.startswith("[error]"):
            return _openai_error(502, text)
        try:
            answer = json.loads(text)
        except ValueError:
            return _openai_error(502, "The provider's answer is not valid JSON.")
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            # A worker's OpenAI error object: this forgiving hub answers it as an error.
            return _openai_error(502, str(answer["error"].get("message")))
        return web.json_response(answer)

    async def _relay_stream(self, request: web.Request, req: HubRequest) -> web.StreamResponse:
        """Re-wrap fragments as SSE the way GridHub does: each non-empty line one event."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        deadline = None if self.request_timeout is None else time.monotonic() + self.request_timeout
        iterator = req.stream().__aiter__()
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                async with asyncio.timeout(remaining):
                    fragment = await iterator.__anext__()
            except (StopAsyncIteration, TimeoutError):
                break
            for line in fragment.split("\n"):
                if not line.strip():
                    continue
                if line.startswith("data:"):
                    line = line[5:].lstrip()
                await response.write(f"data: {line}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _openai_error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "server_error" if status >= 500
                   else "invalid_request_error"}},
        status=status,
    )


def _build(args: argparse.Namespace) -> GridHub:
    tokens = [args.token] if args.token else []
    auth = AuthMode(args.auth) if args.auth else (
        AuthMode.REQUIRED if tokens else AuthMode.OPTIONAL)
    return GridHub(host=args.host, port=args.port, tokens=tokens, auth=auth,
                   ping_interval=args.ping_interval, redirect=args.redirect,
                   negotiate_error=args.negotiate_error)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="provider token the hub accepts (then required)")
    parser.add_argument("--auth", choices=[m.value for m in AuthMode], help="auth mode")
    parser.add_argument("--ping-interval", type=float, default=15.0)
    parser.add_argument("--redirect", action="store_true", help="Azure-style negotiate redirect")
    parser.add_argument("--negotiate-error", default=None,
                        help="answer negotiate with this error ({token} echoes the token)")


def main(argv: list[str] | None = None) -> int:
    return run_main("Test GhubAi hub (SignalR)", _add_arguments, _build, argv)


if __name__ == "__main__":
    main_guard(main)

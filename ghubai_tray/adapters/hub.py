"""One connection to the hub: negotiate, WebSocket, handshake, messages, keep-alive, close.

pysignalr 1.3.3 gives us the hub protocol's message types and encoder, which
are sound, but its client and transport have the defects listed in
docs/PROTOCOL.md (token missing from the first requests, headers copied into every
invocation, retry counters never reset, stale ids retried, handlers blocking
the receive loop, no server timeout, no clean stop, ``run()`` ending for good
on many errors, ``send()`` waiting 10 s when disconnected). So this module
keeps pysignalr's ``JSONProtocol`` and message dataclasses and replaces the
client and transport with one small connection object per attempt, over httpx
(negotiate) and websockets (the WebSocket), which the worker loads anyway
(aiohttp, pysignalr's own choice, would add 10 MB to the tray's memory):

- it negotiates afresh every time, sending the token both as
  ``Authorization: Bearer`` and as the ``access_token`` query parameter from
  the very first request (the .NET client sends the header, the hub's own
  handler reads only the query);
- it never puts headers into invocations (``InvocationMessage.headers`` stays
  None, so pysignalr's encoder leaves the field out);
- it decodes messages tolerantly: an unknown field or type is skipped and
  reported, never fatal;
- it treats 30 s without a byte from the server as a dead connection, and
  sends a Ping after 15 s without sending anything;
- it holds at most ``max_message_bytes`` of one incoming message, scanning
  each received piece once, and at most one message beyond the one it reads
  (websockets' ``max_queue``); a negotiate answer is at most 64 KiB;
- it sends the token only to the configured origin (see
  :func:`token_for_redirect`), and names the host it really connected to;
- ``close()`` closes the WebSocket with code 1000 and sends no SignalR Close
  (ASP.NET treats a client's Close as a protocol error);
- ``send()`` on a closed connection fails at once.

Reconnection, backoff and what to do with messages belong to the supervisor
in :mod:`ghubai_tray.worker.worker`; this module knows one connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import orjson
from pysignalr.messages import (
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    Message,
    PingMessage,
)
from pysignalr.protocol.json import JSONProtocol
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode

from ghubai_tray.adapters.http_body import body_within
from ghubai_tray.core.errors import (
    AuthRejected,
    HubClosed,
    HubError,
    HubUnreachable,
    NoHubHere,
    SecureConnectionFailed,
    TokenNeeded,
    one_line,
)
from ghubai_tray.core.json_shape import ShapeLimits, ShapeRefused, check_shape

log = logging.getLogger(__name__)
# The token travels in the negotiate URL's query and the upgrade's Authorization header
# (the hub reads one or the other), and both libraries log them: httpx every request's
# URL at INFO, websockets every header at DEBUG. Neither may reach a log at any level.
logging.getLogger("httpx").setLevel(logging.WARNING)
_quiet_ws = logging.getLogger("ghubai_tray.adapters.hub.websocket")
_quiet_ws.setLevel(logging.WARNING)

RS = "\x1e"
SERVER_TIMEOUT = 30.0  # ASP.NET's default: twice the server's 15 s keep-alive
KEEPALIVE_INTERVAL = 15.0  # ASP.NET's default client keep-alive
CONNECT_TIMEOUT = 15.0  # negotiate, upgrade and handshake, each
MAX_REDIRECTS = 10  # Azure SignalR redirects once; more is a loop
CLOSE_TIMEOUT = 5.0  # for the hub to answer our close
MAX_NEGOTIATE_BYTES = 64 * 1024  # a negotiate answer is a few hundred bytes
# What one record from the hub may build when parsed: a request is one small object
# (its body travels as a string), so this is far past any real record and far below
# what 80 MB of '[],' would build (1.9 GB).
RECORD_SHAPE = ShapeLimits(values=65_536, depth=64)
MAX_MESSAGE_BYTES = 32 * 1024  # the hub's default MaximumReceiveMessageSize, separator included
DEFAULT_INCOMING_LIMIT = 3 * 30_000_000 + 64 * 1024  # incoming_limit() of the default body
_protocol = JSONProtocol()


# -- pure parts ----------------------------------------------------------


@dataclass(frozen=True)
class Negotiated:
    """Where to open the WebSocket: the URL, the connection id, and the token for it."""

    url: str
    connection_id: str
    access_token: str | None  # ours at the configured origin, a redirect's own, or none


@dataclass(frozen=True)
class Redirect:
    url: str
    access_token: str | None


@dataclass(frozen=True)
class Invocation:
    """The hub calls a method of ours: the one kind of message the worker acts on.

    The connection yields this, not pysignalr's type, so that nothing past this
    module depends on pysignalr."""

    target: str
    arguments: Any  # as the hub sent it: validated by whoever handles the target


@dataclass(frozen=True)
class Malformed:
    """A record that is not a message we can read; the text says why."""

    reason: str


def incoming_limit(max_request_body: int) -> int:
    """The largest message accepted from the hub, for a given request-body limit.

    The body travels as a JSON string inside the message, escaped by the
    hub's serializer: System.Text.Json writes every non-ASCII character as
    ``\\uXXXX``, so a body grows up to three times (two-byte characters;
    emoji as surrogate pairs). A body over the limit is still refused with
    a final; only what no body limit can explain closes the connection.
    """
    return 3 * max_request_body + 64 * 1024


def with_query(url: str, **params: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def negotiate_url(url: str, token: str | None) -> str:
    """``{url}/negotiate?...&negotiateVersion=1&access_token=...``, keeping the URL's query."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/negotiate"
    return with_query(urlunsplit(parts._replace(path=path)), negotiateVersion="1",
                      access_token=token)


def websocket_url(url: str, connection_id: str, token: str | None) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return with_query(urlunsplit(parts._replace(scheme=scheme)), id=connection_id,
                      access_token=token)


def parse_negotiate(body: Any, url: str, access_token: str | None) -> Negotiated | Redirect:
    """Read a negotiate answer (v0, v1 or an Azure redirect); HubError when unusable."""
    if not isinstance(body, dict):
        raise HubUnreachable("the hub's negotiate answer is not a JSON object")
    if isinstance(body.get("error"), str):
        raise HubUnreachable(f"the hub refused the connection: {one_line(body['error'], 200)}")
    if isinstance(body.get("url"), str):
        token = body.get("accessToken")
        return Redirect(body["url"], token if isinstance(token, str) else None)
    transports = body.get("availableTransports")
    if isinstance(transports, list) and not any(
        isinstance(t, dict) and t.get("transport") == "WebSockets" for t in transports
    ):
        raise HubUnreachable("the hub does not offer WebSockets")
    version = body.get("negotiateVersion", 0)
    key = "connectionToken" if isinstance(version, int) and version >= 1 else "connectionId"
    connection_id = body.get(key)
    if not isinstance(connection_id, str) or not connection_id:
        raise HubUnreachable(f"the hub's negotiate answer has no {key}")
    return Negotiated(url, connection_id, access_token)


def origin_of(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a URL (ws and wss count as http and https)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return scheme, (parts.hostname or "").lower(), port


def token_for_redirect(configured: str, target: str, redirect_token: str | None,
                       token: str | None) -> str | None:
    """The token to send to a hub's redirect; :class:`HubUnreachable` when it must not be followed.

    The owner's token goes only where the owner sent it: to the configured
    origin (or the same host over https, ASP.NET's ``UseHttpsRedirection``). A
    redirect elsewhere gets the token it brought (Azure SignalR's
    ``accessToken``) or none. Nothing is followed from https down to http.
    """
    scheme, host, _ = origin_of(target)
    if scheme not in ("http", "https") or not host:
        raise HubUnreachable("the hub redirected to an address that is not a web address")
    if origin_of(configured)[0] == "https" and scheme == "http":
        raise HubUnreachable(f"the hub redirected from https to the insecure address {host}; "
                             "refused")
    if redirect_token is not None:
        return redirect_token
    return token if origin_of(target) == origin_of(configured) or _upgrade(configured, target) \
        else None


def hub_text(text: str, *secrets: str | None, limit: int = 200) -> str:
    """A text the hub wrote, fit to show the owner: one line, capped, and without
    the secrets this worker sent (a hub that echoes the token must not get it shown)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return one_line(text, limit)


def _without(exc: HubError, token: str | None) -> HubError:
    """``exc`` with the token taken out of its text (the hub's words are in it)."""
    text = str(exc)
    if not token or token not in text:
        return exc
    return type(exc)(hub_text(text, token, limit=400))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decode_record(record: str) -> Message | Malformed | None:
    """One record (its separator left out, or still at its end) as a pysignalr message;
    None for types we ignore.

    Unlike pysignalr's ``parse_message``, which passes every field to the
    dataclass and so fails on any field it does not know, this reads only
    the fields we use and tolerates everything else. A trailing separator is
    read past rather than cut off: cutting would copy a record of up to 90 MB.
    """
    try:
        check_shape(record, RECORD_SHAPE, "a message")
        obj = _json_in(record)
    except ShapeRefused as exc:
        return Malformed(str(exc))
    except ValueError:
        return Malformed("a message is not JSON")
    except RecursionError:
        return Malformed("a message is nested too deeply")
    if not isinstance(obj, dict):
        return Malformed("a message is not a JSON object")
    kind = obj.get("type")
    if kind == 1:
        target, arguments = obj.get("target"), obj.get("arguments", [])
        if not isinstance(target, str):
            return Malformed("an invocation has no target")
        return InvocationMessage(invocation_id=_text(obj.get("invocationId")), target=target,
                                 arguments=arguments)
    if kind == 6:
        return PingMessage()
    if kind == 7:
        allow = obj.get("allowReconnect")
        return CloseMessage(error=_text(obj.get("error")),
                            allow_reconnect=allow if isinstance(allow, bool) else None)
    if kind == 3:
        return CompletionMessage(invocation_id=str(obj.get("invocationId")),
                                 error=_text(obj.get("error")))
    if isinstance(kind, int) and not isinstance(kind, bool) and kind in (2, 4, 5):
        return None  # streams the worker never starts
    return Malformed(f"a message has an unknown type {str(kind)[:20]!r}")


_decoder = json.JSONDecoder()
_SPACE = " \t\n\r"


def _json_in(record: str) -> Any:
    """``json.loads(record)``, with one record separator allowed at the end."""
    start = len(record) - len(record.lstrip(_SPACE)) if record[:1] in _SPACE else 0
    obj, end = _decoder.raw_decode(record, start)
    if record[end:].strip(_SPACE).removesuffix(RS).strip(_SPACE):
        raise ValueError("extra data after the JSON value")
    return obj


def split_records(buffer: str) -> tuple[list[str], str]:
    """Complete records in ``buffer`` and the incomplete rest."""
    *records, rest = buffer.split(RS)
    return [r for r in records if r], rest


class MessageTooLarge(ValueError):
    """The hub sent more than the incoming limit without a record separator."""


class RecordBuffer:
    """Records out of received text, scanning each piece once and bounding what it holds.

    A hub that sends data without separators could otherwise make every read
    join and rescan everything received so far (quadratic: 19.5 MiB took
    5.9 s of CPU) and grow the buffer without end.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._held = 0

    @property
    def empty(self) -> bool:
        """Nothing of an incomplete record is held."""
        return not self._parts

    def feed(self, data: str) -> list[str]:
        """The records ``data`` completes; :class:`MessageTooLarge` past the limit."""
        if RS not in data:
            self._held += len(data)
            if self._held > self.limit:
                self._parts, self._held = [], 0
                raise MessageTooLarge(self.limit)
            if data:
                self._parts.append(data)
            return []
        first, *middle, rest = data.split(RS)
        if self._held + len(first) > self.limit or any(len(r) > self.limit for r in middle):
            self._parts, self._held = [], 0
            raise MessageTooLarge(self.limit)
        records = ["".join([*self._parts, first]), *middle]
        del data, first, middle  # only the records are held from here
        self._parts, self._held = ([rest] if rest else []), len(rest)
        if self._held > self.limit:
            self._parts, self._held = [], 0
            raise MessageTooLarge(self.limit)
        return [r for r in records if r]


def encode(message: Message) -> str:
    """One record: pysignalr's message, serialised with orjson as pysignalr's
    ``BaseJSONProtocol`` does (several times faster than the stdlib encoder its
    ``JSONProtocol`` uses, which matters at thousands of chunks a second)."""
    return orjson.dumps(message.dump()).decode() + RS


def registration(machine_name: str, models: list[str]) -> tuple[dict[str, Any], int]:
    """The ``RegisterNode`` argument, cut to fit the hub's message limit.

    Returns the argument and how many models had to be left out (0 almost
    always: it takes hundreds of models to reach 32 KiB).
    """
    kept = list(models)
    while True:
        arg = {"machineName": machine_name, "availableModels": kept}
        message = InvocationMessage(invocation_id=None, target="RegisterNode", arguments=[arg])
        if len(encode(message).encode()) <= MAX_MESSAGE_BYTES - 1024 or not kept:
            return arg, len(models) - len(kept)
        kept = kept[: len(kept) * 9 // 10]


def handshake_error(record: str) -> str | None:
    """None when the handshake answer accepts us, else the hub's reason."""
    try:
        obj = json.loads(record)
    except ValueError:
        return "the hub's handshake answer is not JSON"
    if not isinstance(obj, dict):
        return "the hub's handshake answer is not a JSON object"
    error = obj.get("error")
    return None if error is None else f"the hub refused the handshake: {one_line(str(error), 200)}"


# -- the connection ------------------------------------------------------


def host_of(url: str) -> str:
    """``host:port`` of a URL, for messages: never the path or query (the token is there)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _auth_error(url: str, configured: str, token: str | None, sent: str | None) -> AuthRejected:
    """A 401/403 in words that are true of what was sent: a token refused, none set, or
    ours withheld from another address (the hub there never saw it, so it refused nothing)."""
    host = host_of(url)
    if sent:
        return AuthRejected(f"the hub at {host} refused the token")
    if token is None:
        return TokenNeeded(f"the hub at {host} needs a provider token, and none is set: enter "
                           "the one its operator gave you (Settings, or 'ghubai-tray token set')")
    return TokenNeeded(f"the hub at {host} needs a provider token, and ours was not sent: the "
                       f"hub at {host_of(configured)} sent the worker to this other address, "
                       "and the token goes only to the address in Settings")


def _status_error(status: int, where: str, url: str, refused: AuthRejected) -> HubError:
    """Plain words for the owner; the step that failed ("negotiate", "the WebSocket
    upgrade") is protocol jargon, so it goes to the log only."""
    host = host_of(url)
    log.debug("the hub at %s answered HTTP %d on %s", host, status, where)
    if status in (401, 403):
        return refused
    if status == 404 and where == "negotiate":
        return NoHubHere(f"there is no hub at this URL on {host} (HTTP 404): check the path")
    if status == 404:
        return HubUnreachable(f"the hub at {host} forgot the connection before it opened")
    return HubUnreachable(f"the hub at {host} answered with an error (HTTP {status})")


def _causes(exc: BaseException) -> list[BaseException]:
    """The error and what it wraps: httpx and websockets raise their own types ``from``
    the socket's or TLS's error, which is the one that says what happened."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _mapped(exc: BaseException, url: str, refused: AuthRejected) -> HubError:
    """A foreign error in plain words, never with the URL (its query holds the token);
    ``refused`` is what a 401/403 means for what was sent."""
    host = host_of(url)
    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return SecureConnectionFailed(
            f"the certificate of {host} is not trusted by this computer; for a development "
            "hub only, set ALLOW_INVALID_CERTS=1")
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return SecureConnectionFailed(f"the secure connection to {host} failed")
    if any(isinstance(c, socket.gaierror) for c in causes):
        return HubUnreachable(f"the name {urlsplit(url).hostname} cannot be found")
    if isinstance(exc, InvalidStatus):
        return _status_error(exc.response.status_code, "the WebSocket upgrade", url, refused)
    if any(isinstance(c, TimeoutError | httpx.TimeoutException) for c in causes):
        return HubUnreachable(f"the hub at {host} did not answer in time")
    if any(isinstance(c, ConnectionRefusedError | httpx.ConnectError) for c in causes):
        return HubUnreachable(f"nothing answers at {host}")
    return HubUnreachable(f"the connection to {host} failed ({type(exc).__name__})")


class HubConnection:
    """One open, handshaken connection. Use :meth:`open`; iterate :meth:`messages`."""

    def __init__(
        self,
        ws: ClientConnection,
        host: str,
        *,
        server_timeout: float,
        keepalive_interval: float,
        max_message_bytes: int = 0,
    ) -> None:
        self._ws = ws
        self.host = host
        self._server_timeout = server_timeout
        self._keepalive_interval = keepalive_interval
        self._send_lock = asyncio.Lock()
        self._last_sent = time.monotonic()
        self._pending = ""  # what the handshake's last frame held beyond the handshake
        self._records = RecordBuffer(max_message_bytes or DEFAULT_INCOMING_LIMIT)
        self._secrets: tuple[str, ...] = ()  # never echoed back from the hub's texts
        self._closed = False
        self._keepalive = asyncio.create_task(self._keep_alive(), name="hub-keepalive")

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None,
        *,
        ssl_context: ssl.SSLContext | bool,
        server_timeout: float = SERVER_TIMEOUT,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_message_bytes: int = DEFAULT_INCOMING_LIMIT,
    ) -> HubConnection:
        """Negotiate, upgrade and handshake; :class:`HubError` says what failed.

        ``max_message_bytes`` bounds one incoming message: past it the connection is
        closed (and the supervisor opens a new one), so a hub cannot make the worker
        hold more than that.
        """
        negotiated: Negotiated | None = None
        bearer = token
        try:
            async with httpx.AsyncClient(verify=ssl_context, timeout=connect_timeout,
                                         trust_env=False, follow_redirects=False) as http:
                negotiated = await _negotiate(http, url, token)
            bearer = negotiated.access_token
            target = websocket_url(negotiated.url, negotiated.connection_id, bearer)
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            # No proxy from the environment (as for negotiate), no compression (a hub's
            # deflated message would cost its inflated size), at most one message held
            # beyond the one being read: max_queue bounds what a hub can make us buffer.
            ws = await connect(
                target, additional_headers=headers, proxy=None, compression=None,
                ssl=ssl_context if target.startswith("wss:") else None,
                max_size=max_message_bytes, max_queue=1, open_timeout=connect_timeout,
                ping_interval=None, close_timeout=CLOSE_TIMEOUT, logger=_quiet_ws)
        except HubError as exc:
            raise _without(exc, token) from None
        except (httpx.HTTPError, InvalidHandshake, OSError, TimeoutError) as exc:
            target = negotiated.url if negotiated else url
            raise _mapped(exc, url, _auth_error(target, url, token, bearer)) from None
        try:
            rest = await _handshake(ws, connect_timeout, url)
        except HubError as exc:
            await ws.close()
            raise _without(exc, token) from None
        except BaseException:
            await ws.close()
            raise
        conn = cls(ws, host_of(negotiated.url), server_timeout=server_timeout,
                   keepalive_interval=keepalive_interval, max_message_bytes=max_message_bytes)
        conn._secrets = tuple(t for t in (token, bearer) if t)
        conn._pending = rest
        return conn

    @property
    def closed(self) -> bool:
        return self._closed or self._ws.close_code is not None

    async def send(self, *messages: Message) -> None:
        """Send messages in one WebSocket frame (the protocol allows several records per
        frame, each still within the size limit); :class:`HubUnreachable` at once if the
        connection is gone."""
        if self.closed:
            raise HubUnreachable("the hub connection is closed")
        data = "".join(encode(m) for m in messages)
        try:
            async with self._send_lock:
                await self._ws.send(data)
        except (ConnectionClosed, ConnectionError, RuntimeError) as exc:
            self._closed = True
            raise HubUnreachable(f"sending to the hub failed ({type(exc).__name__})") from None
        self._last_sent = time.monotonic()

    async def invoke(self, target: str, *arguments: Any) -> None:
        """A plain invocation (no id, no headers): the hub returns nothing."""
        await self.send(InvocationMessage(invocation_id=None, target=target,
                                          arguments=list(arguments)))

    async def invoke_each(self, target: str, arguments: list[Any]) -> None:
        """One plain invocation per argument, all in one frame: one system call, not many."""
        await self.send(*(InvocationMessage(invocation_id=None, target=target,
                                            arguments=[argument]) for argument in arguments))

    async def messages(self) -> AsyncIterator[Invocation | Malformed]:
        """Yield what the hub sends until it closes; raise :class:`HubError` when it ends.

        Pings, completions and stream items (the hub has no business sending the
        latter two to a worker) are consumed here. The iteration ends by raising: :class:`HubClosed`
        for a Close message, :class:`HubUnreachable` for a dropped or silent connection.
        """
        deadline = time.monotonic() + self._server_timeout
        received, self._pending = self._pending, ""
        while True:
            try:
                # the text is let go of as soon as it is split: a record may be 90 MB,
                # and each copy held at once adds its size to the worker's peak; a
                # message that is one whole record (nearly all) is decoded in place
                if self._records.empty and 0 < len(received) <= self._records.limit \
                        and received.find(RS) == len(received) - 1:
                    records, received = [received], ""
                else:
                    records, received = self._records.feed(received), ""
            except MessageTooLarge:
                self._closed = True
                raise HubUnreachable(self._too_large()) from None
            records.reverse()
            while records:
                message = decode_record(records.pop())  # the record's text goes with it
                if isinstance(message, CloseMessage):
                    self._closed = True
                    reason = (hub_text(message.error, *self._secrets) if message.error
                              else "the hub closed the connection")
                    raise HubClosed(reason, allow_reconnect=message.allow_reconnect is not False)
                if isinstance(message, InvocationMessage):
                    yield Invocation(message.target, message.arguments)
                elif isinstance(message, Malformed):
                    yield message
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                # websockets' recv() is safe to cancel: nothing read is lost
                frame = await asyncio.wait_for(self._ws.recv(), remaining)
            except TimeoutError:
                self._closed = True
                raise HubUnreachable(
                    f"the hub went silent for {self._server_timeout:g} s") from None
            except ConnectionClosed as exc:
                self._closed = True
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    raise HubUnreachable(self._too_large()) from None
                raise HubUnreachable("the hub dropped the connection") from None
            received = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            del frame
            deadline = time.monotonic() + self._server_timeout

    def _too_large(self) -> str:
        return (f"the hub sent a message larger than this worker's limit of "
                f"{self._records.limit:,} bytes; reconnecting")

    async def close(self) -> None:
        """Close the WebSocket cleanly (code 1000).

        No SignalR Close message: ASP.NET accepts that only from a server, and
        logs one from a client as a protocol error before aborting. A hub that does
        not answer the close (one still pushing a message we stopped reading) has its
        socket cut at the deadline, so nothing of the connection stays behind.
        """
        self._keepalive.cancel()
        self._closed = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._ws.close()
        self._ws.transport.abort()  # nothing when the close completed
        with contextlib.suppress(asyncio.CancelledError):
            await self._keepalive

    async def _keep_alive(self) -> None:
        while not self.closed:
            wait = self._last_sent + self._keepalive_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                await self.send(PingMessage())
            except HubError:
                return


async def _negotiate(http: httpx.AsyncClient, url: str, token: str | None) -> Negotiated:
    """Negotiate, following the hub's redirects only where :func:`token_for_redirect` allows."""
    configured, access = url, token
    for _ in range(MAX_REDIRECTS):
        headers = {"Authorization": f"Bearer {access}"} if access else {}
        async with http.stream("POST", negotiate_url(url, access), headers=headers) as response:
            if response.status_code in (301, 302, 303, 307, 308):
                target = _redirected_hub(url, response.headers.get("Location", ""))
                access = token_for_redirect(configured, target, None, token)
                url = target
                continue
            if response.status_code != 200:
                raise _status_error(response.status_code, "negotiate", url,
                                    _auth_error(url, configured, token, access))
            text = await _bounded_body(response, url)
        try:
            body = json.loads(text)
        except ValueError:
            raise HubUnreachable(
                f"the negotiate answer from {host_of(url)} is not JSON: is this a hub URL?"
            ) from None
        result = parse_negotiate(body, url, access)
        if isinstance(result, Negotiated):
            return result
        access = token_for_redirect(configured, result.url, result.access_token, token)
        url = result.url
    raise HubUnreachable(f"the hub at {host_of(url)} redirected too many times")


async def _bounded_body(response: httpx.Response, url: str) -> bytes:
    """The answer's body, refused past :data:`MAX_NEGOTIATE_BYTES` (a hub is a stranger)."""
    return await body_within(response, MAX_NEGOTIATE_BYTES, lambda: HubUnreachable(
        f"the negotiate answer from {host_of(url)} is far too large: is this a hub URL?"))


def _upgrade(url: str, target: str) -> bool:
    """http to https on the same host (ASP.NET's UseHttpsRedirection)."""
    old, new = origin_of(url), origin_of(target)
    return old[0] == "http" and new[0] == "https" and old[1] == new[1]


def _redirected_hub(url: str, location: str) -> str:
    """The hub URL an HTTP redirect of ``{url}/negotiate?...`` points to."""
    target = urlsplit(urljoin(negotiate_url(url, None), location))
    path = target.path.removesuffix("/negotiate")
    query = [(k, v) for k, v in parse_qsl(target.query, keep_blank_values=True)
             if k not in ("negotiateVersion", "access_token")]
    return urlunsplit(target._replace(path=path, query=urlencode(query), fragment=""))


async def _handshake(ws: ClientConnection, timeout: float, url: str) -> str:
    deadline = time.monotonic() + timeout
    buffer = ""
    try:
        await ws.send(encode_handshake())
        while RS not in buffer:
            frame = await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic()))
            buffer += frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    except ConnectionClosed:
        raise HubUnreachable(f"the hub at {host_of(url)} closed the connection during the "
                             "handshake") from None
    except TimeoutError:
        raise HubUnreachable(f"the hub at {host_of(url)} did not answer in time") from None
    record, rest = buffer.split(RS, 1)
    error = handshake_error(record)
    if error is not None:
        await ws.close()
        raise HubUnreachable(error)
    return rest


def encode_handshake() -> str:
    return json.dumps({"protocol": _protocol.protocol, "version": _protocol.version}) + RS

"""The test hub itself: negotiate, ids, framing, limits, keep-alive, auth, faults, API.

Driven by a deliberately raw client (aiohttp WebSocket + hand-written JSON), so
every byte the hub accepts or sends is visible to the assertion.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest

from tests.testbed.hub import CLOSED_WITH_ERROR, RS, AuthMode, Behaviour, GridHub

TOKEN = "hub-test-token"
HANDSHAKE = '{"protocol":"json","version":1}' + RS


class RawClient:
    """The least a SignalR client must do, spelled out."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session, self.ws = session, ws
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, hub: GridHub, *, token: str | None = None, version: int = 1,
                      handshake: str | None = HANDSHAKE) -> RawClient:
        session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with session.post(f"{hub.url}/negotiate?negotiateVersion={version}",
                                headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            nego = await resp.json()
        conn_id = nego["connectionToken"] if version >= 1 else nego["connectionId"]
        ws = await session.ws_connect(f"{hub.url}?id={conn_id}", headers=headers,
                                      autoping=False)
        client = cls(session, ws)
        if handshake is not None:
            await ws.send_str(handshake)
            assert await client.recv_raw() == "{}" + RS
        return client

    async def recv_raw(self, timeout: float = 10.0) -> str:
        msg = await self.ws.receive(timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        return str(msg.data)

    async def recv(self, timeout: float = 10.0, skip_pings: bool = True) -> dict[str, Any]:
        while True:
            while self.pending:
                message = self.pending.pop(0)
                if not (skip_pings and message.get("type") == 6):
                    return message
            raw = await self.recv_raw(timeout)
            assert raw.endswith(RS), raw
            self.pending += [json.loads(r) for r in raw.split(RS)[:-1]]

    async def send(self, *messages: dict[str, Any]) -> None:
        await self.ws.send_str("".join(json.dumps(m) + RS for m in messages))

    async def register(self, machine: str = "box", models: list[str] | None = None) -> None:
        await self.send({"type": 1, "target": "RegisterNode",
                         "arguments": [{"machineName": machine,
                                        "availableModels": models or ["llama3.2:1b"]}]})
        assert await self.recv() == {"type": 1, "target": "Registered", "arguments": []}

    async def closed(self, timeout: float = 10.0) -> aiohttp.WSMessage:
        """Read until the socket ends; return the final non-text message."""
        while True:
            msg = await self.ws.receive(timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return msg
            self.pending += [json.loads(r) for r in str(msg.data).split(RS)[:-1] if r]

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@pytest.fixture
async def hub() -> AsyncIterator[GridHub]:
    hub = GridHub(tokens=[TOKEN])
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


# -- negotiate and ids ------------------------------------------------------

async def test_negotiate_version_0(hub: GridHub, http: httpx.AsyncClient) -> None:
    body = (await http.post(f"{hub.url}/negotiate")).json()
    assert list(body) == ["negotiateVersion", "connectionId", "availableTransports"]
    assert body["negotiateVersion"] == 0 and len(body["connectionId"]) == 22
    assert body["availableTransports"][0] == {"transport": "WebSockets",
                                              "transferFormats": ["Text", "Binary"]}


async def test_negotiate_version_1(hub: GridHub, http: httpx.AsyncClient) -> None:
    body = (await http.post(f"{hub.url}/negotiate?negotiateVersion=1")).json()
    assert list(body) == ["negotiateVersion", "connectionId", "connectionToken",
                          "availableTransports"]
    assert body["negotiateVersion"] == 1 and body["connectionToken"] != body["connectionId"]


@pytest.mark.parametrize("version", [0, 1])
async def test_connects_with_either_version(hub: GridHub, version: int) -> None:
    client = await RawClient.connect(hub, version=version)
    await client.register()
    await client.close()


async def test_negotiate_requires_post(hub: GridHub, http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{hub.url}/negotiate")).status_code == 405


async def _negotiate(hub: GridHub, version: int = 1) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{hub.url}/negotiate?negotiateVersion={version}") as resp:
            body: dict[str, Any] = await resp.json()
            return body


async def _upgrade_status(hub: GridHub, conn_id: str) -> int:
    """The status of a WebSocket upgrade with this id: 101 when accepted."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(f"{hub.url}?id={conn_id}")
        except aiohttp.WSServerHandshakeError as err:
            return err.status
        await ws.close()
        return 101


async def test_ids_are_single_use(hub: GridHub) -> None:
    token = (await _negotiate(hub))["connectionToken"]
    assert await _upgrade_status(hub, token) == 101
    assert await _upgrade_status(hub, token) == 404


async def test_v1_connection_id_is_not_the_id(hub: GridHub) -> None:
    assert await _upgrade_status(hub, (await _negotiate(hub))["connectionId"]) == 404


async def test_unknown_and_expired_ids_get_404(hub: GridHub, http: httpx.AsyncClient) -> None:
    resp = await http.get(f"{hub.url}?id=nope", headers={"Connection": "Upgrade",
                                                         "Upgrade": "websocket"})
    assert (resp.status_code, resp.text) == (404, "No Connection with that ID")
    hub.id_ttl = -1.0  # every id is already older than the time to live
    assert await _upgrade_status(hub, (await _negotiate(hub, 0))["connectionId"]) == 404


async def test_azure_redirect(http: httpx.AsyncClient) -> None:
    hub = GridHub(redirect=True)
    await hub.start()
    try:
        first = (await http.post(f"{hub.url}/negotiate?negotiateVersion=1")).json()
        assert set(first) == {"url", "accessToken"}
        assert first["url"].endswith("/azure/client/?hub=gridhub")
        target = first["url"].replace("/?hub=gridhub", "/negotiate?hub=gridhub&negotiateVersion=1")
        assert (await http.post(target)).status_code == 401
        second = (await http.post(target, headers={
            "Authorization": f"Bearer {first['accessToken']}"})).json()
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(
                first["url"] + f"&id={second['connectionToken']}",
                headers={"Authorization": f"Bearer {first['accessToken']}"})
            await ws.send_str(HANDSHAKE)
            assert (await ws.receive(10)).data == "{}" + RS
            await ws.close()
    finally:
        await hub.stop()


# -- handshake and framing ---------------------------------------------------

@pytest.mark.parametrize(("handshake", "error"), [
    ('{"protocol":"messagepack","version":1}' + RS, "The protocol 'messagepack' is not supported."),
    ('{"protocol":"json","version":2}' + RS,
     "The server does not support version 2 of the 'json' protocol."),
    ('{"protocol":"json"}' + RS, "An unexpected error occurred during connection handshake."),
    ("not json" + RS, "An unexpected error occurred during connection handshake."),
], ids=["protocol", "version", "missing-version", "not-json"])
async def test_bad_handshake_is_refused(hub: GridHub, handshake: str, error: str) -> None:
    client = await RawClient.connect(hub, handshake=None)
    await client.ws.send_str(handshake)
    reply = await client.recv_raw()
    assert reply.endswith(RS) and json.loads(reply[:-1])["error"].startswith(error)
    assert (await client.closed()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await client.close()


async def test_handshake_may_arrive_in_pieces(hub: GridHub) -> None:
    client = await RawClient.connect(hub, handshake=None)
    await client.ws.send_str(HANDSHAKE[:10])
    await client.ws.send_str(HANDSHAKE[10:])
    assert await client.recv_raw() == "{}" + RS
    await client.close()


async def test_several_messages_in_one_frame_both_ways(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    reg = {"type": 1, "target": "RegisterNode",
           "arguments": [{"machineName": "a", "availableModels": ["m1"]}]}
    await client.send(reg, {"type": 6}, {**reg, "invocationId": "7"})
    await hub.wait_until(lambda: len(hub.registrations) == 2, what="two registrations")
    got = [await client.recv() for _ in range(3)]
    assert got.count({"type": 1, "target": "Registered", "arguments": []}) == 2
    assert {"type": 3, "invocationId": "7"} in got
    await client.close()


@pytest.mark.parametrize(("size", "accepted"), [(32 * 1024 - 1, True), (32 * 1024, False)],
                         ids=["32767+RS", "32768+RS"])
async def test_receive_limit_counts_the_separator(hub: GridHub, size: int,
                                                  accepted: bool) -> None:
    client = await RawClient.connect(hub)
    await client.register()
    prefix = '{"type":1,"target":"StreamInferenceResponse","arguments":[{"requestId":"x",' \
             '"tokenFragment":"'
    suffix = '","isFinal":false}]}'
    message = prefix + "a" * (size - len(prefix) - len(suffix)) + suffix
    assert len(message.encode()) == size
    await client.ws.send_str(message + RS)
    if accepted:
        await hub.wait_until(lambda: len(hub.ignored_chunks) == 1, what="chunk accepted")
        await client.send({"type": 6})
        assert hub.connections
    else:
        close = await client.recv()
        assert close == {"type": 7, "error": CLOSED_WITH_ERROR, "allowReconnect": True}
        await client.closed()
        await hub.wait_until(lambda: not hub.connections, what="connection closed")
    await client.close()


async def test_limit_applies_to_a_message_split_over_frames(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.ws.send_str('{"type":1,"target":"x","arguments":["' + "a" * 20000)
    await client.ws.send_str("a" * 20000 + '"]}' + RS)
    assert (await client.recv())["error"] == CLOSED_WITH_ERROR
    await client.close()


async def test_unknown_message_type_closes_with_error(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.send({"type": 99})
    assert await client.recv() == {"type": 7, "error": CLOSED_WITH_ERROR, "allowReconnect": True}
    await client.close()


# -- keep-alive --------------------------------------------------------------

async def test_hub_pings(hub: GridHub) -> None:
    hub.ping_interval = 0.1
    client = await RawClient.connect(hub)
    assert await client.recv(skip_pings=False) == {"type": 6}
    await client.close()


async def test_silent_client_is_closed(hub: GridHub) -> None:
    hub.client_timeout = 0.5
    client = await RawClient.connect(hub)
    assert await client.recv() == {"type": 7, "error": CLOSED_WITH_ERROR, "allowReconnect": True}
    assert hub.closes[-1][1] == "client timeout"
    await client.close()


async def test_pinging_client_is_kept(hub: GridHub) -> None:
    hub.client_timeout, hub.ping_interval = 0.5, 0.1
    client = await RawClient.connect(hub)
    # Answer each hub ping with one of ours; 20 pings span four timeout periods.
    for _ in range(20):
        assert await client.recv(skip_pings=False) == {"type": 6}
        await client.send({"type": 6})
    assert hub.connections and not hub.closes
    await client.close()


# -- hub methods and registry -------------------------------------------------

async def test_register_node_is_case_insensitive_and_answered(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.send({"type": 1, "target": "registernode", "invocationId": "1",
                       "arguments": [{"MachineName": "DESKTOP-42",
                                      "AVAILABLEMODELS": ["Llama3.2:1B"]}]})
    assert await client.recv() == {"type": 1, "target": "Registered", "arguments": []}
    assert await client.recv() == {"type": 3, "invocationId": "1"}
    reg = hub.registrations[-1]
    assert (reg.machine_name, reg.models) == ("DESKTOP-42", ("Llama3.2:1B",))
    assert hub.node_for("llama3.2:1b") is not None
    await client.close()


async def test_empty_registration_routes_nothing(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.register(models=["m"])
    await client.send({"type": 1, "target": "RegisterNode",
                       "arguments": [{"machineName": "box", "availableModels": []}]})
    await hub.wait_until(lambda: hub.registrations[-1].models == (), what="empty registration")
    assert hub.node_for("m") is None and hub.models() == []
    await client.close()


async def test_bad_invocations_are_reported_not_fatal(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.send({"type": 1, "target": "Nope", "invocationId": "a", "arguments": []})
    reply = await client.recv()
    assert reply["invocationId"] == "a" and "Method does not exist" in reply["error"]
    await client.send({"type": 1, "target": "RegisterNode", "invocationId": "b",
                       "arguments": []})
    assert "0 argument(s)" in (await client.recv())["error"]
    await client.send({"type": 1, "target": "RegisterNode", "arguments": [{"machineName": 3}]})
    await hub.wait_until(lambda: len(hub.binding_errors) == 3, what="three binding errors")
    await client.register()  # still connected and working
    await client.close()


async def test_chunks_complete_on_first_final_and_unknown_ids_are_ignored(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.register()
    req = await hub.dispatch("LLAMA3.2:1b", "/api/chat", {"model": "llama3.2:1b"})
    invocation = await client.recv()
    assert invocation["target"] == "RequestInference"
    arg = invocation["arguments"][0]
    assert list(arg) == ["requestId", "model", "endpointUri", "requestBody"]

    def chunk(rid: str, fragment: str, final: bool) -> dict[str, Any]:
        return {"type": 1, "target": "StreamInferenceResponse",
                "arguments": [{"requestId": rid, "tokenFragment": fragment, "isFinal": final}]}

    await client.send(chunk(req.request_id, "a", False), chunk("unknown", "x", False),
                      chunk(req.request_id, "b", True), chunk(req.request_id, "late", True))
    assert await req.wait() == "ab"
    await hub.wait_until(lambda: len(hub.ignored_chunks) == 2, what="ignored chunks")
    assert [c["tokenFragment"] for c in hub.ignored_chunks] == ["x", "late"]
    await client.close()


async def test_least_loaded_node_gets_the_request(hub: GridHub) -> None:
    a, b = await RawClient.connect(hub), await RawClient.connect(hub)
    await a.register("a", ["m"])
    await b.register("b", ["M", "other"])
    first = await hub.dispatch("m", "/api/chat", "{}")
    second = await hub.dispatch("m", "/api/chat", "{}")
    assert first.connection_id != second.connection_id
    assert hub.node_for("other") is not None and hub.node_for("absent") is None
    await a.close()
    await b.close()


# -- auth --------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "how", "status"), [
    (AuthMode.OPTIONAL, None, 200), (AuthMode.OPTIONAL, "wrong", 401),
    (AuthMode.REQUIRED, None, 401), (AuthMode.REQUIRED, "header", 200),
    (AuthMode.REQUIRED, "query", 200), (AuthMode.REQUIRED, "wrong", 401),
    (AuthMode.REJECT_ALL, "header", 401),
], ids=lambda v: getattr(v, "value", str(v)))
async def test_auth_on_negotiate_and_upgrade(hub: GridHub, http: httpx.AsyncClient,
                                             mode: AuthMode, how: str | None,
                                             status: int) -> None:
    hub.auth = mode
    headers: dict[str, str] = {}
    query = ""
    if how == "header":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif how == "query":
        query = f"&access_token={TOKEN}"
    elif how == "wrong":
        headers["Authorization"] = "Bearer wrong"
    resp = await http.post(f"{hub.url}/negotiate?negotiateVersion=1{query}", headers=headers)
    assert resp.status_code == status
    upgrade = await http.get(f"{hub.url}?id=whatever{query}",
                             headers={**headers, "Connection": "Upgrade", "Upgrade": "websocket"})
    assert upgrade.status_code == (404 if status == 200 else 401)


# -- faults ------------------------------------------------------------------

async def test_drop_connections_sends_nothing(hub: GridHub) -> None:
    client = await RawClient.connect(hub)
    await client.register()
    frames_before = len([f for f in hub.frames if f.direction == "out"])
    await hub.drop_connections()
    msg = await client.closed()
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), msg
    assert len([f for f in hub.frames if f.direction == "out"]) == frames_before
    await hub.wait_until(lambda: not hub.nodes, what="node removed")
    await client.close()


@pytest.mark.parametrize(("error", "allow"), [
    (None, None), ("Server is shutting down.", None), ("Maintenance.", True), (None, False)])
async def test_close_connections_sends_the_close_asked_for(
    hub: GridHub, error: str | None, allow: bool | None
) -> None:
    client = await RawClient.connect(hub)
    await hub.close_connections(error=error, allow_reconnect=allow)
    expected: dict[str, Any] = {"type": 7}
    if error is not None:
        expected["error"] = error
    if allow is not None:
        expected["allowReconnect"] = allow
    assert await client.recv() == expected
    assert (await client.closed()).type == aiohttp.WSMsgType.CLOSE
    await client.close()


async def test_silent_hub_sends_nothing_but_answers_websocket_pings(hub: GridHub) -> None:
    hub.ping_interval = 0.05
    client = await RawClient.connect(hub)
    hub.go_silent()
    out_before = len([f for f in hub.frames if f.direction == "out"])
    await client.send({"type": 1, "target": "RegisterNode",
                       "arguments": [{"machineName": "x", "availableModels": []}]})
    await hub.wait_until(lambda: hub.registrations, what="registration while silent")
    await client.ws.ping(b"are you there")
    msg = await client.ws.receive(10)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, b"are you there")
    assert len([f for f in hub.frames if f.direction == "out"]) == out_before
    hub.go_silent(False)
    assert await client.recv(skip_pings=False) == {"type": 6}
    await client.close()


@pytest.mark.parametrize("status", [401, 500, 503])
async def test_fail_negotiate(hub: GridHub, http: httpx.AsyncClient, status: int) -> None:
    hub.fail_negotiate(status, times=2)
    codes = [(await http.post(f"{hub.url}/negotiate")).status_code for _ in range(3)]
    assert codes == [status, status, 200]
    hub.fail_negotiate(status)
    codes = [(await http.post(f"{hub.url}/negotiate")).status_code for _ in range(3)]
    assert codes == [status] * 3
    hub.clear_faults()
    assert (await http.post(f"{hub.url}/negotiate")).status_code == 200


async def test_restart_on_the_same_port(hub: GridHub, http: httpx.AsyncClient) -> None:
    client = await RawClient.connect(hub)
    await client.register()
    stale = (await _negotiate(hub))["connectionToken"]
    port = hub.port
    await hub.restart()
    assert hub.port == port and not hub.nodes
    await client.closed()
    await client.close()
    assert await _upgrade_status(hub, stale) == 404
    again = await RawClient.connect(hub)
    await again.register()
    await again.close()


# -- HTTP API ----------------------------------------------------------------

async def _serve(client: RawClient, fragments: list[str]) -> dict[str, Any]:
    """Answer one request with the given fragments, then a final chunk."""
    invocation = await client.recv()
    request: dict[str, Any] = invocation["arguments"][0]
    for fragment in fragments + [""]:
        await client.send({"type": 1, "target": "StreamInferenceResponse", "arguments": [
            {"requestId": request["requestId"], "tokenFragment": fragment,
             "isFinal": fragment == ""}]})
    return request


async def test_models_endpoint_lists_registered_models(hub: GridHub,
                                                       http: httpx.AsyncClient) -> None:
    client = await RawClient.connect(hub)
    await client.register(models=["a:1", "b:2"])
    data = (await http.get(f"{hub.base}/v1/models")).json()
    assert [m["id"] for m in data["data"]] == ["a:1", "b:2"]
    await client.close()


async def test_chat_completions_streamed(hub: GridHub, http: httpx.AsyncClient) -> None:
    client = await RawClient.connect(hub)
    await client.register()
    body = {"model": "llama3.2:1b", "stream": True, "messages": []}
    post = asyncio.create_task(http.post(f"{hub.base}/v1/chat/completions", json=body))
    request = await _serve(client, ['data: {"n":1}\n\n', '{"n":2}\n{"n":3}\n', "\n"])
    resp = await post
    assert request["endpointUri"] == "/v1/chat/completions"
    assert json.loads(request["requestBody"]) == body
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.text == 'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\ndata: [DONE]\n\n'
    await client.close()


@pytest.mark.parametrize("behaviour,error_status", [(Behaviour.GHUBAI, 500),
                                                    (Behaviour.FORGIVING, 502)])
async def test_chat_completions_not_streamed(behaviour: Behaviour, error_status: int,
                                             http: httpx.AsyncClient) -> None:
    hub = GridHub(tokens=[TOKEN], behaviour=behaviour)
    await hub.start()
    client = await RawClient.connect(hub)
    await client.register()
    body = {"model": "llama3.2:1b", "messages": []}
    post = asyncio.create_task(http.post(f"{hub.base}/v1/chat/completions", json=body))
    await _serve(client, ['{"choices":[{"mess', 'age":"hi"}]}'])
    assert (await post).json() == {"choices": [{"message": "hi"}]}
    post = asyncio.create_task(http.post(f"{hub.base}/v1/chat/completions", json=body))
    await _serve(client, ["[error] Ollama is not running"])  # the seed worker's form
    resp = await post
    assert resp.status_code == error_status
    assert ("Ollama is not running" in resp.text) is (behaviour is Behaviour.FORGIVING)
    post = asyncio.create_task(http.post(f"{hub.base}/v1/chat/completions", json=body))
    await _serve(client, ['{"error":{"message":"busy","type":"api_error","code":null}}'])
    resp = await post
    if behaviour is Behaviour.GHUBAI:  # any JSON is answered 200, as it is
        assert resp.status_code == 200 and resp.json()["error"]["message"] == "busy"
    else:
        assert resp.status_code == 502 and "busy" in resp.text
    await client.close()
    await hub.stop()


@pytest.mark.parametrize("behaviour,status", [(Behaviour.GHUBAI, 404),
                                              (Behaviour.FORGIVING, 503)])
async def test_chat_completions_without_a_node(behaviour: Behaviour, status: int,
                                               http: httpx.AsyncClient) -> None:
    hub = GridHub(behaviour=behaviour)
    await hub.start()
    resp = await http.post(f"{hub.base}/v1/chat/completions", json={"model": "x"})
    assert resp.status_code == status
    resp = await http.post(f"{hub.base}/v1/chat/completions", content=b"{")
    assert resp.status_code == 400
    await hub.stop()


async def test_everything_is_recorded(hub: GridHub) -> None:
    client = await RawClient.connect(hub, token=TOKEN)
    await client.register()
    assert [r.path for r in hub.http] == ["/gridhub/negotiate", "/gridhub"]
    assert hub.http[0].headers["Authorization"] == f"Bearer {TOKEN}"
    ins = [m.message for m in hub.messages if m.direction == "in"]
    assert ins[0] == {"protocol": "json", "version": 1}
    assert ins[1]["target"] == "RegisterNode"
    assert [f.data for f in hub.frames if f.direction == "out"][:2] == [
        "{}" + RS, '{"type":1,"target":"Registered","arguments":[]}' + RS]
    await client.close()

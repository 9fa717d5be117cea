"""The test hub against Microsoft's own SignalR client (@microsoft/signalr, pinned).

If the official client negotiates, hand-shakes, invokes, receives hub-initiated
calls, streams back and reconnects after a Close with ``allowReconnect``, the
hub is real SignalR. The breakage cases prove the test is not blind: each
deliberate protocol bug in the hub makes the official client fail.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.testbed.hub import AuthMode, Breakage, GridHub

HERE = Path(__file__).parent / "conformance"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        NODE is None or not (HERE / "node_modules" / "@microsoft" / "signalr").is_dir(),
        reason="node or tests/conformance/node_modules missing: run `make test`, which runs npm ci",
    ),
]

TOKEN = "conformance-token-7f3a"
MODEL = "tiny:1b"


class NodeClient:
    """The official client in a subprocess; its JSON event lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, url: str, token: str = TOKEN) -> NodeClient:
        assert NODE is not None
        proc = await asyncio.create_subprocess_exec(
            NODE, str(HERE / "client.mjs"), url, token, "conformance-node", MODEL,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=HERE,
        )
        return cls(proc)

    async def next_event(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        """Read events until one named ``name``; fail on ``failed`` or end of output."""
        assert self.proc.stdout is not None

        async def _read() -> dict[str, Any]:
            assert self.proc.stdout is not None
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    stderr = b""
                    if self.proc.stderr is not None:
                        stderr = await self.proc.stderr.read()
                    raise AssertionError(
                        f"client exited before '{name}'; events {self.events}; "
                        f"stderr {stderr.decode()[-2000:]}"
                    )
                event: dict[str, Any] = json.loads(line)
                self.events.append(event)
                if event["event"] == name:
                    return event
                if event["event"] == "failed" and name != "failed":
                    raise AssertionError(f"client failed before '{name}': {event}")

        return await asyncio.wait_for(_read(), timeout)

    async def stop(self) -> int:
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.write(b"stop\n")
            await self.proc.stdin.drain()
        try:
            return await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


@pytest.fixture
async def hub() -> AsyncIterator[GridHub]:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED, ping_interval=1.0)
    await hub.start()
    yield hub
    await hub.stop()


async def test_official_client_registers_streams_and_reconnects(hub: GridHub) -> None:
    client = await NodeClient.start(hub.url)
    try:
        await client.next_event("registered")
        await client.next_event("register-completed")
        reg = hub.registrations[-1]
        assert (reg.machine_name, reg.models) == ("conformance-node", (MODEL,))

        negotiates = [r for r in hub.http if r.path.endswith("/negotiate")]
        assert negotiates[0].query.get("negotiateVersion") == "1"
        upgrade = next(r for r in hub.http if r.path == "/gridhub" and r.method == "GET")
        sent_token = upgrade.headers.get("Authorization", "").removeprefix("Bearer ") or \
            upgrade.query.get("access_token")
        assert sent_token == TOKEN

        async with aiohttp.ClientSession() as http:
            body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{hub.base}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                raw = (await resp.read()).decode()
            events = [e for e in raw.split("\n\n") if e]
            assert events[-1] == "data: [DONE]"
            words = [json.loads(e.removeprefix("data: "))["choices"][0]["delta"]["content"]
                     for e in events[:-1]]
            assert words == ["Hello", " from", " node"]
            request = (await client.next_event("request"))["request"]
            assert request["endpointUri"] == "/v1/chat/completions"
            assert json.loads(request["requestBody"]) == body

            body["stream"] = False
            async with http.post(f"{hub.base}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                answer = await resp.json()
            assert answer["choices"][0]["message"]["content"] == "Hello from node"

        registrations_before = len(hub.registrations)
        await hub.close_connections(error="Hub is restarting.", allow_reconnect=True)
        await client.next_event("reconnecting")
        await client.next_event("reconnected")
        await hub.wait_until(lambda: len(hub.registrations) > registrations_before,
                             what="re-registration after reconnect")
        assert len([r for r in hub.http if r.path.endswith("/negotiate")]) >= 2
        assert hub.models() == [MODEL]
    finally:
        code = await client.stop()
    assert code == 0, client.events


async def test_official_client_pings_keep_the_connection_alive(hub: GridHub) -> None:
    hub.client_timeout = 3.0
    client = await NodeClient.start(hub.url)
    try:
        await client.next_event("registered")
        # The client pings every second; wait until it has sent several pings,
        # i.e. longer than the 3 s client timeout, and check the hub kept it.
        await hub.wait_until(
            lambda: sum(1 for m in hub.messages if m.direction == "in"
                        and m.message.get("type") == 6) >= 5,
            what="five client pings")
        assert hub.connections, "hub dropped a client that was pinging"
        assert any(m.direction == "out" and m.message.get("type") == 6 for m in hub.messages)
    finally:
        assert await client.stop() == 0


async def test_official_client_is_refused_without_the_right_token(hub: GridHub) -> None:
    client = await NodeClient.start(hub.url, token="wrong")
    event = await client.next_event("failed")
    assert "401" in event["error"]
    assert await client.proc.wait() == 1


@pytest.mark.parametrize("breakage", [Breakage.FRAMING, Breakage.HANDSHAKE, Breakage.NEGOTIATE],
                         ids=lambda b: b.value)
async def test_official_client_notices_a_broken_hub(breakage: Breakage) -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED, ping_interval=1.0, breakage=breakage)
    await hub.start()
    try:
        client = await NodeClient.start(hub.url)
        event = await client.next_event("failed", timeout=30)
        assert event["stage"] == "start"
        assert not any(e["event"] == "registered" for e in client.events)
        assert await client.proc.wait() == 1
    finally:
        await hub.stop()

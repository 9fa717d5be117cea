"""The worker recovers from every way a hub connection fails, and says why meanwhile."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.adapters.hub import HubConnection
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import RetryNow, Snapshot, State, Stop, TokenChanged
from ghubai_tray.worker import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    RECONNECT_SPREAD,
    Worker,
    backoff_delay,
    reconnect_delay,
)
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.worker_bed import TOKEN, failure_of, running_bed, with_settings

MODELS = ("llama3.2:1b", "mistral:7b")
CHAT = {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "hi"}], "stream": False}


def test_backoff_starts_under_a_second_doubles_and_is_capped() -> None:
    for attempt in range(1, 40):
        delay = backoff_delay(attempt)
        base = min(BACKOFF_CAP, 0.5 * 2 ** (attempt - 1))
        assert base / 2 <= delay <= base
    assert backoff_delay(1) <= 0.5 and backoff_delay(30) <= BACKOFF_CAP


def test_after_a_drop_retries_are_spread_over_a_window_that_doubles() -> None:
    rng = random.Random(7)
    for attempt in range(1, 40):
        window = min(BACKOFF_CAP, RECONNECT_SPREAD * 2 ** (attempt - 1))
        draws = [reconnect_delay(attempt, rng) for _ in range(2000)]
        assert all(BACKOFF_FIRST / 2 <= d <= window for d in draws)
        # evenly: each tenth of the window holds about a tenth of the draws (200 ± 80)
        tenths = Counter(min(9, int(10 * (d - BACKOFF_FIRST / 2) / (window - BACKOFF_FIRST / 2)))
                         for d in draws)
        assert all(120 <= tenths[k] <= 280 for k in range(10)), (attempt, tenths)
    assert BACKOFF_FIRST / 4 <= reconnect_delay(1, rng, spread=BACKOFF_FIRST) <= BACKOFF_FIRST


async def test_a_fleet_the_hub_dropped_comes_back_spread_over_ten_seconds() -> None:
    """A hub restart drops every donor at once: their first retries must not come at once
    (bench/fleet.py saw 87 % of 300 workers negotiate in the same second with a half-second
    jitter). Thirty real workers on one hub, the default spread, the hub restarted."""
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
    await hub.start()
    await ollama.start()
    base = Settings(hub_url=hub.url, ollama_url=ollama.url, discovery_interval=30.0)
    workers = [Worker(replace(base, machine_name=f"donor-{i:02d}"),
                      lambda url: TokenSource(TOKEN, "test"), poll_interval=5.0,
                      rng=random.Random(i)) for i in range(30)]
    tasks = [asyncio.create_task(w.run()) for w in workers]

    def all_registered() -> bool:
        return len({n.machine_name for n in hub.nodes.values() if n.models == MODELS}) == 30

    try:
        await hub.wait_until(all_registered, 60, "thirty workers registered")
        seen, restarted = len(hub.http), time.monotonic()
        await hub.restart()
        waits = []
        for worker in workers:
            snap = await worker.wait_for(lambda s: s.next_attempt is not None, 15, "a retry")
            assert snap.next_attempt is not None
            waits.append((snap.next_attempt - datetime.now().astimezone()).total_seconds())
        assert max(waits) <= RECONNECT_SPREAD and max(waits) - min(waits) >= RECONNECT_SPREAD / 2
        await hub.wait_until(all_registered, 60, "thirty workers registered again")
        negotiations = [r.at - restarted for r in hub.http[seen:]
                        if r.path.endswith("/negotiate")]
        assert len(negotiations) >= 30
        per_second = Counter(int(t) for t in negotiations)
        assert max(per_second.values()) <= 10, sorted(per_second.items())
        assert max(negotiations) >= RECONNECT_SPREAD / 2
    finally:
        for worker in workers:
            worker.submit(Stop(grace=0.0))
        await asyncio.wait(tasks, timeout=30)
        await hub.stop()
        await ollama.stop()


async def serves_again(bed: object) -> None:
    from tests.worker_bed import Bed

    assert isinstance(bed, Bed)
    await bed.registered(*MODELS)
    await bed.worker.wait_for(lambda s: s.connection is State.REGISTERED, 15, "Registered")
    req = await bed.request("/api/chat", CHAT)
    assert "error" not in json.loads(await req.wait())


async def test_hub_restarted_on_the_same_port() -> None:
    async with running_bed() as bed:
        await serves_again(bed)
        await bed.hub.restart()
        await serves_again(bed)


async def test_retries_keep_one_reason_instead_of_flipping_between_two() -> None:
    async with running_bed() as bed:
        await serves_again(bed)
        seen: list[tuple[State, str]] = []
        waits: list[datetime] = []  # one per failed attempt: when the next one comes

        def record(s: Snapshot) -> None:
            seen.append((s.connection, s.reason))
            if s.next_attempt is not None and (not waits or waits[-1] != s.next_attempt):
                waits.append(s.next_attempt)

        bed.worker.subscribe(record)
        await bed.hub.stop()
        await bed.worker.wait_for(lambda s: len(waits) >= 4, 30, "four failed attempts")
        shown = [key for i, key in enumerate(seen) if i == 0 or seen[i - 1] != key]
        # Once it failed, every retry says the same thing until something changes.
        failures = [key for key in shown if key[0] is State.RECONNECTING]
        assert len(set(failures)) <= 2, shown  # "connection ended", then "nothing answers"
        assert shown[-1][1].startswith("nothing answers at 127.0.0.1:")
        assert not any(r.startswith("connecting to") for s, r in shown[2:]), shown


async def test_hub_down_for_a_while_then_back() -> None:
    async with running_bed() as bed:
        await serves_again(bed)
        port = bed.hub.port
        await bed.hub.stop()
        snap = await bed.worker.wait_for(
            lambda s: s.connection is State.RECONNECTING and s.next_attempt is not None
            and "nothing answers" in s.reason, 15, "reconnecting with a reason")
        assert snap.reason == f"nothing answers at 127.0.0.1:{port}"
        bed.hub.port = port
        await bed.hub.start()
        await serves_again(bed)


async def test_negotiate_failing_with_503_for_a_while() -> None:
    async with running_bed() as bed:
        await serves_again(bed)
        bed.hub.fail_negotiate(503, times=3)
        await bed.hub.drop_connections()
        await bed.worker.wait_for(lambda s: "answered with an error (HTTP 503)" in s.reason,
                                  15, "the 503")
        await serves_again(bed)
        failures = [r for r in bed.hub.http if r.path.endswith("/negotiate") and r.status == 503]
        assert len(failures) == 3


async def test_silent_hub_is_noticed_and_left() -> None:
    async with running_bed(server_timeout=1.5) as bed:
        await serves_again(bed)
        bed.hub.go_silent()
        await bed.worker.wait_for(lambda s: "went silent for 1.5 s" in s.reason, 15, "silence")
        bed.hub.go_silent(False)
        await serves_again(bed)


async def test_pings_keep_a_quiet_connection_alive() -> None:
    # The worker pings after 1 s without sending; the hub gives up after 3 s of silence.
    hub = GridHub(tokens=[TOKEN], client_timeout=3.0, ping_interval=0.3)
    async with running_bed(hub=hub, server_timeout=2.0,
                           settings=with_settings(discovery_interval=3600)) as bed:
        await serves_again(bed)
        connection = next(iter(hub.nodes))

        def pings() -> list[object]:
            return [m for m in hub.messages if m.direction == "in" and m.message.get("type") == 6]

        await hub.wait_until(lambda: len(pings()) >= 3, 15, "three pings from the worker")
        assert not hub.closes and next(iter(hub.nodes)) == connection


async def test_close_with_and_without_allow_reconnect() -> None:
    async with running_bed() as bed:
        await serves_again(bed)
        await bed.hub.close_connections(error="Server is shutting down.", allow_reconnect=True)
        await bed.worker.wait_for(lambda s: "Server is shutting down." in s.reason, 15, "reason")
        await serves_again(bed)
        await bed.hub.close_connections(error="Go away.", allow_reconnect=False)
        await bed.worker.wait_for(lambda s: "Go away." in s.reason, 15, "reason")
        await serves_again(bed)


async def test_token_rejected_then_fixed() -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    async with running_bed(hub=hub, token="wrong-token") as bed:
        snap = await bed.worker.wait_for(lambda s: s.connection is State.AUTH_REJECTED, 15,
                                         "auth rejected")
        assert snap.reason.startswith(f"the hub at 127.0.0.1:{hub.port} refused the token: "
                                      "check the token")
        tries = len(hub.http)
        bed.token[0] = TOKEN
        bed.worker.submit(TokenChanged())
        await serves_again(bed)
        assert len(hub.http) - tries <= 3, "no fast retry loop while rejected"


async def test_retry_now_tries_at_once_instead_of_minutes_later() -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    async with running_bed(hub=hub, token="accepted-later") as bed:
        await bed.worker.wait_for(lambda s: s.connection is State.AUTH_REJECTED, 15,
                                  "auth rejected (the next attempt 5 minutes away)")
        hub.tokens.add("accepted-later")  # the hub's operator fixed it on their side
        bed.worker.submit(RetryNow())  # the menu's "Retry now", or Token refused's fix
        await serves_again(bed)


async def test_no_token_and_a_hub_that_needs_one_says_one_is_needed_not_refused() -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    async with running_bed(hub=hub, token=None) as bed:
        snap = await bed.worker.wait_for(lambda s: s.connection is State.TOKEN_NEEDED, 15,
                                         "token needed")
        assert hub.tokens_seen and set(hub.tokens_seen) == {None}, "nothing was sent"
        assert snap.reason == (f"the hub at 127.0.0.1:{hub.port} needs a provider token, and "
                               "none is set: enter the one its operator gave you (Settings, "
                               "or 'ghubai-tray token set')")
        tries = len(hub.http)
        bed.token[0] = TOKEN  # entered in Settings: the worker tries again at once
        bed.worker.submit(TokenChanged())
        await serves_again(bed)
        assert len(hub.http) - tries <= 3, "no fast retry loop while a token was needed"


async def test_nothing_configured_and_no_default_hub_is_not_configured() -> None:
    async with running_bed(token=None, settings=with_settings(
            hub_url="https://localhost:7197/gridhub")) as bed:
        snap = await bed.worker.wait_for(lambda s: s.connection is State.NOT_CONFIGURED, 15,
                                         "not configured")
        assert snap.reason.startswith("not set up yet: no hub token")


async def test_shutdown_gives_a_grace_period_then_cancels_with_a_final() -> None:
    ollama = OllamaStandIn(token_delay=0.2, reply_tokens=["x"] * 200)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered(*MODELS)
        req = await bed.request("/api/chat", {**CHAT, "stream": True})
        await anext(aiter(req.stream()))
        bed.worker.submit(Stop(grace=0.5))
        assert await failure_of(req) == "worker shutting down"
        await bed.worker.wait_for(lambda s: s.connection is State.STOPPED, 15, "stopped")
        await ollama.wait_until(lambda: ollama.cancellations, 10, "Ollama to see the cancel")
        registrations = [r.models for r in bed.hub.registrations]
        assert registrations[-1] == (), "the hub was told nothing more is served here"
        closes = [m for m in bed.hub.messages if m.direction == "in" and m.message.get("type") == 7]
        assert not closes, "no SignalR Close from a client: ASP.NET rejects it as an error"
        assert [code for _, code in bed.hub.client_closes] == [1000], "a clean WebSocket close"


async def test_shutdown_lets_a_short_request_finish() -> None:
    ollama = OllamaStandIn(token_delay=0.05)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered(*MODELS)
        req = await bed.request("/api/chat", {**CHAT, "stream": True})
        await anext(aiter(req.stream()))
        bed.worker.submit(Stop(grace=10))
        await req.wait()
        assert req.chunks[-1]["tokenFragment"] == "" and json.loads(req.fragments[-1])["done"]


async def test_the_supervisor_survives_an_unexpected_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The connector is wrapped so that its first call fails the way a bug would (no real
    # counterpart can produce an arbitrary exception on demand); later calls are real.
    calls: list[int] = []

    async def flaky(url: str, token: str | None, *, ssl_context: Any,
                    max_message_bytes: int) -> HubConnection:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return await HubConnection.open(url, token, ssl_context=ssl_context,
                                        max_message_bytes=max_message_bytes)

    hub = GridHub(tokens=[TOKEN])
    ollama = OllamaStandIn()
    await hub.start()
    await ollama.start()
    worker = Worker(Settings(hub_url=hub.url, ollama_url=ollama.url, machine_name="n"),
                    lambda url: TokenSource(TOKEN, "test"), connector=flaky, poll_interval=0.2)
    task = asyncio.create_task(worker.run())
    try:
        await worker.wait_for(lambda s: s.connection is State.REGISTERED, 15, "Registered")
        assert len(calls) == 2
        assert any("unexpected error in the hub connection" in r.getMessage()
                   for r in caplog.records)
    finally:
        worker.submit(Stop(0))
        await asyncio.wait_for(task, 20)
        await hub.stop()
        await ollama.stop()


async def test_the_backoff_starts_over_after_every_accepted_connection() -> None:
    """Regression: a registered session ends by an error, which skipped the reset, so the
    tenth hub restart of a run waited the full 30 s (found by the recovery benchmark)."""
    async with running_bed() as bed:
        for _ in range(6):
            await serves_again(bed)
            await bed.hub.drop_connections()
            snap = await bed.worker.wait_for(lambda s: s.next_attempt is not None, 15,
                                             "a retry to be scheduled")
            assert snap.next_attempt is not None
            wait = (snap.next_attempt - datetime.now().astimezone()).total_seconds()
            assert wait <= BACKOFF_FIRST, f"retry {wait:.2f} s away after an accepted session"


async def test_no_heartbeat_registration_while_a_request_is_in_flight() -> None:
    # GhubAi resets a node's load to 0 on every RegisterNode: a heartbeat during a request
    # would hide the load from its least-loaded routing.
    ollama = OllamaStandIn(token_delay=0.25, reply_tokens=["x"] * 30)  # 7.5 s > 5 s heartbeat
    async with running_bed(ollama=ollama, settings=with_settings(discovery_interval=5)) as bed:
        await bed.registered(*MODELS)
        req = await bed.request("/api/chat", {**CHAT, "stream": True})
        await anext(aiter(req.stream()))
        before = len(bed.hub.registrations)
        await req.wait()
        assert len(bed.hub.registrations) == before, "no RegisterNode while serving"
        await bed.hub.wait_until(lambda: len(bed.hub.registrations) > before, 15,
                                 "the heartbeat once the worker is idle again")

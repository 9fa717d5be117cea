"""Hypothesis drives arbitrary hub invocations into a live worker, one connection for all.

The properties of issue 6: the worker never crashes (the same connection
serves a real request at the end), Ollama never sees a path outside the
inference allowlist, and every request with a usable id ends in exactly one
final chunk; one without is dropped. Messages go over the real WebSocket
from the test hub, so decoding and dispatch are exercised too.

The worker runs on an event loop of its own thread, since hypothesis drives
examples synchronously; one bed serves every example (a fresh worker per
example would spend the time budget starting workers). ``make fuzz`` runs
10,000 examples, the normal run 100.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ghubai_tray.core.endpoints import ALLOWED_ENDPOINTS
from ghubai_tray.core.server_kinds import PROBES
from ghubai_tray.core.validation import MAX_REQUEST_ID, usable_request_id
from ghubai_tray.worker import REQUEST_TARGETS
from tests.adversarial import ADVERSARIAL_PATHS, PATH_PIECES
from tests.testbed.godecode import GoDecoder, assert_within_ceilings, go_available
from tests.worker_bed import Bed, running_bed, with_settings

T = TypeVar("T")
MODELS = ("llama3.2:1b", "mistral:7b")
BODY_LIMIT = 64 * 1024  # small, so that oversized bodies are cheap to generate
# what the worker itself asks Ollama: its models and what is loaded, and which server it
# is (core/server_kinds.py's probes, all GETs)
DISCOVERY = {"/api/tags", "/api/ps", *PROBES}


@dataclass
class LiveBed:
    """A running bed on a loop in its own thread, and what the examples sent."""

    loop: asyncio.AbstractEventLoop
    bed: Bed
    node: str
    sent: Counter[str] = field(default_factory=Counter)  # usable id -> finals expected
    unusable: int = 0
    serial: int = 0

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveBed]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    context: AbstractAsyncContextManager[Bed] = running_bed(
        settings=with_settings(max_request_body=BODY_LIMIT, max_concurrent_requests=4))

    async def enter() -> Bed:
        bed = await context.__aenter__()
        await bed.registered(*MODELS)
        return bed

    bed = asyncio.run_coroutine_threadsafe(enter(), loop).result(60)
    live = LiveBed(loop, bed, next(iter(bed.hub.nodes)))
    try:
        yield live
    finally:
        asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
paths = st.sampled_from([*ALLOWED_ENDPOINTS, *ADVERSARIAL_PATHS])
good_body = json.dumps({"model": MODELS[0], "messages": [], "stream": False})
bodies = st.one_of(st.just(good_body), st.text(max_size=40), json_values.map(json.dumps),
                   st.integers(BODY_LIMIT - 8, 2 * BODY_LIMIT).map(
                       lambda n: json.dumps({"model": MODELS[0], "pad": "x" * n})),
                   json_values)
ids = st.one_of(st.just("fresh"), st.just("fresh"), st.text(max_size=MAX_REQUEST_ID + 12),
                json_values)
others = {"model": st.one_of(st.sampled_from([*MODELS, "phi3", "LLAMA3.2:1B"]), json_values),
          "endpointUri": st.one_of(paths, st.text(max_size=30), json_values),
          "requestBody": bodies,
          "extra": json_values}
# An allowed path with pieces added around it, or a management path, or an allowed one.
endpoints = st.one_of(
    st.builds(lambda base, extra, before: extra + base if before else base + extra,
              st.sampled_from(ALLOWED_ENDPOINTS),
              st.lists(st.sampled_from(PATH_PIECES), min_size=1, max_size=4).map("".join),
              st.booleans()),
    paths, paths)


NEAR = {"requestId": "fresh", "model": MODELS[0], "requestBody": good_body}


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A request that would be served but for an adversarial endpoint or a spoilt field:
    the deep end of the worker's checks, which wholly random dicts seldom reach."""
    model = draw(st.sampled_from(MODELS))
    request: dict[str, Any] = {
        "requestId": draw(ids), "model": model, "endpointUri": draw(endpoints),
        "requestBody": json.dumps({"model": model, "messages": [], "stream": draw(st.booleans())}),
    }
    for key in draw(st.sets(st.sampled_from([*request, "extra"]), max_size=2)):
        request[key] = draw(others.get(key, json_values))
    return request


# Weighted (one_of picks a branch uniformly): mostly requests to our methods with an id,
# so that each run has plenty of both kinds.
requests = st.one_of(near_valid(), near_valid(),
                     st.fixed_dictionaries({"requestId": ids}, optional=others),
                     st.fixed_dictionaries({}, optional=others))
ours = st.sampled_from(["RequestInference", "RequestOpenAI", "requestopenai", "REQUESTINFERENCE"])
targets = st.one_of(ours, ours, st.sampled_from(["Registered", "Unknown", ""]),
                    st.text(max_size=12))
invocations = st.tuples(targets, st.one_of(requests, requests, json_values),
                        st.lists(json_values, max_size=2), st.booleans())


def send_one(live: LiveBed, invocation: tuple[str, Any, list[Any], bool]) -> None:
    """Send one invocation; when it carries a usable id, wait for its final."""
    target, first, more, camel = invocation
    live.serial += 1
    expected_id = None
    if isinstance(first, dict) and "requestId" in first:
        first = dict(first)
        raw = first.pop("requestId")
        if raw == "fresh" or usable_request_id(raw) is not None:
            # Each usable id once per run, so that finals can be counted per id.
            raw = f"fz-{live.serial}" if raw == "fresh" else f"{raw[:100]}~{live.serial}"
        first["requestId" if camel else "RequestID"] = raw  # names bind case-insensitively
        expected_id = usable_request_id(raw)
    record = {"type": 1, "target": target, "arguments": [first, *more]}
    live.run(live.bed.hub.send_raw(live.node, json.dumps(record) + "\x1e"))
    if target.casefold() in REQUEST_TARGETS and expected_id is not None:
        live.sent[expected_id] += 1
        live.run(live.bed.hub.wait_until(lambda: any(
            c.get("requestId") == expected_id and c.get("isFinal")
            for c in live.bed.hub.ignored_chunks), 20, f"the final of {expected_id!r}"))
    else:
        live.unusable += 1


# The property runs inside the test (hypothesis drives a live worker it cannot rebuild per
# example), so hypothesis cannot mark it itself: make fuzz selects tests by this marker.
@pytest.mark.hypothesis
def test_arbitrary_invocations_never_crash_or_escape_and_end_once(live: LiveBed) -> None:
    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(invocation=invocations)
    @example(invocation=("RequestInference", {**NEAR, "endpointUri": "/api/pull"}, [], True))
    @example(invocation=("RequestOpenAI", {**NEAR, "endpointUri": "/api/chat"}, [], False))
    def property_(invocation: tuple[str, Any, list[Any], bool]) -> None:
        send_one(live, invocation)

    property_()
    bed = live.bed
    assert live.sent and live.unusable, "both kinds were generated"
    live.run(bed.worker.wait_for(lambda s: s.active == 0 and s.queued == 0, 30, "idle"))
    ok = live.run(bed.request("/api/chat", json.loads(good_body)))
    assert "error" not in json.loads(live.run(ok.wait())), "the worker still serves"
    assert next(iter(bed.hub.nodes)) == live.node, "on the same connection"
    finals = Counter(c.get("requestId") for c in bed.hub.ignored_chunks if c.get("isFinal"))
    assert {rid: finals[rid] for rid in live.sent} == dict(live.sent), "exactly one each"
    assert set(finals) <= set(live.sent), "no final for a request without a usable id"
    reached = {r.path for r in bed.ollama.requests}
    assert reached <= set(ALLOWED_ENDPOINTS) | DISCOVERY, reached - set(ALLOWED_ENDPOINTS)
    assert bed.ollama.management_requests == []
    # What reached Ollama, read by Ollama's own Go types: a shared model, every ceiling held.
    inference = [r for r in bed.ollama.requests if r.path in ALLOWED_ENDPOINTS]
    if inference and go_available():
        decoder = GoDecoder()
        try:
            for r in inference:
                view = decoder.decode(r.path, r.body)
                if not view.get("error"):
                    assert view["model"] in MODELS, view["model"]
                    assert_within_ceilings(view, r.path, view["model"],
                                           bed.worker.settings.ceilings)
        finally:
            decoder.close()

"""What a small body could make the real Ollama do, and what it does through the worker.

The real Ollama 0.17.4 (built from its Go module, CPU) serves the tiny generated
model, trained here for a long context (131,072 tokens) and started with an
owner's ``OLLAMA_CONTEXT_LENGTH=65536``, so that a request naming no context gets
more than the owner's ceiling, as on a machine with a large GPU. Ollama's CPU time
and its runners' pids are read from ``/proc``, not assumed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.testbed.real_ollama import MODEL, RealOllama
from tests.worker_bed import Bed, failure_of, running_bed, with_settings

pytestmark = pytest.mark.ollama
OWNERS_CONTEXT = 65_536
SUMMARY_5000 = {"type": "object",
                "properties": {"summary": {"type": "string", "maxLength": 5000}}}
# Ollama's CPU in the 5 s after a request the worker refused: what polling /api/ps and
# /api/tags costs it, far under the seconds each attack took (measured: under 0.1 s).
IDLE_CPU = 0.5


@pytest.fixture(scope="module")
def ollama() -> Iterator[RealOllama]:
    server = RealOllama(environment={"OLLAMA_CONTEXT_LENGTH": str(OWNERS_CONTEXT)},
                        n_ctx=131_072)
    server.start_sync()
    yield server
    server.stop_sync()


@pytest.fixture
async def bed(ollama: RealOllama) -> AsyncIterator[Bed]:
    async with running_bed(ollama_url=ollama.url,
                           settings=with_settings(owner_first=False)) as bed:
        await bed.registered(MODEL)
        yield bed


def chat(**more: Any) -> dict[str, Any]:
    return {"model": MODEL, "stream": False, "options": {"num_predict": 4},
            "messages": [{"role": "user", "content": "the sky is"}], **more}


async def loaded_context(url: str) -> int:
    async with httpx.AsyncClient() as client:
        models = (await client.get(f"{url}/api/ps")).json()["models"]
    return int(models[0]["context_length"])


async def test_a_schema_that_kills_the_runner_is_refused_and_the_runner_lives(
        bed: Bed, ollama: RealOllama) -> None:
    # The premise, straight to Ollama: llama.cpp refuses the grammar, the runner dies.
    async with httpx.AsyncClient(timeout=120) as client:
        await client.post(f"{ollama.url}/api/chat", json=chat())
        before = ollama.runners()
        direct = await client.post(f"{ollama.url}/api/chat", json=chat(format=SUMMARY_5000))
        assert direct.status_code == 500 and "runner has unexpectedly stopped" in direct.text
        assert not set(before) & set(ollama.runners()), "the runner died"
    # Through the worker (whose context differs from Ollama's default: a runner of its own):
    # refused in words, on both endpoints; the same runner serves on.
    first = await bed.request("/api/chat", chat(), model=MODEL)
    assert json.loads(await first.wait(120))["done"] is True
    runners = ollama.runners()
    native = await bed.request("/api/chat", chat(format=SUMMARY_5000), model=MODEL)
    assert "maxLength 5,000" in await failure_of(native)
    wrapped = {"type": "json_schema", "json_schema": {"name": "s", "schema": SUMMARY_5000}}
    v1 = await bed.request("/v1/chat/completions", {
        "model": MODEL, "max_tokens": 4, "response_format": wrapped,
        "messages": [{"role": "user", "content": "hi"}]}, model=MODEL, target="RequestOpenAI")
    assert "maxLength 5,000" in await failure_of(v1)
    bounded = {"type": "object", "properties": {"summary": {"type": "string",
                                                             "maxLength": 1000}}}
    served = await bed.request("/api/chat", chat(format=bounded), model=MODEL)
    assert json.loads(await served.wait(120))["done"] is True
    assert ollama.runners() == runners, "the runner that served before serves still"


ATTACKS = {
    # 1,000,000 empty messages (3 MB): 1.7 cores for over 260 s, on after the client left
    "a million messages": ("/api/chat", lambda: {
        "model": MODEL, "messages": [{}] * 1_000_000}, "more than 262,144 values"),
    # 100,000 embedding inputs: 45 -> 624 MB and 132 s, one goroutine each
    "100,000 embedding inputs": ("/api/embed", lambda: {
        "model": MODEL, "input": ["a"] * 100_000}, "100,000 embedding input(s)"),
    # a 1,000,000-token context: 125 s of CPU, 65 s after the client left
    "a million-token context": ("/api/generate", lambda: {
        "model": MODEL, "prompt": "x", "context": [1] * 1_000_000}, "more than 262,144 values"),
    # what fits the shape scan still meets the counts
    "2,000 messages": ("/api/chat", lambda: {
        "model": MODEL, "messages": [{}] * 2000}, "2,000 message(s)"),
    # within every count: 1,000 messages of 64 bytes (a 64 KB body) took 45 s of CPU, as
    # Ollama re-read the chat for each message it dropped to fit the context
    "1,000 short messages": ("/api/chat", lambda: {
        "model": MODEL, "messages": [{"role": "user", "content": "the sky is blue " * 4}]
        * 1000}, "the chat is too long for this machine"),
    "100,000 context tokens": ("/api/generate", lambda: {
        "model": MODEL, "prompt": "x", "context": [1] * 100_000}, "100,000 context token(s)"),
}


@pytest.mark.parametrize("endpoint,body,words", ATTACKS.values(), ids=ATTACKS.keys())
async def test_an_attack_by_count_never_reaches_ollama(
        bed: Bed, ollama: RealOllama, endpoint: str, body: Any, words: str) -> None:
    cpu = ollama.cpu_seconds()
    request = await bed.request(endpoint, json.dumps(body()), model=MODEL)
    assert words in await failure_of(request, 60)
    await asyncio.sleep(5)  # the measure itself: Ollama's CPU over the 5 s that follow
    assert ollama.cpu_seconds() - cpu < IDLE_CPU


@pytest.mark.parametrize("asked", [None, 0, -1])
async def test_a_request_naming_no_context_runs_at_the_owners_ceiling(
        bed: Bed, ollama: RealOllama, asked: int | None) -> None:
    options: dict[str, Any] = {"num_predict": 2}
    if asked is not None:
        options["num_ctx"] = asked
    async with httpx.AsyncClient(timeout=120) as client:  # the premise: Ollama's own default
        await client.post(f"{ollama.url}/api/generate", json={
            "model": MODEL, "prompt": "hi", "stream": False, "options": options})
    # (0 and -1 are not "no context" to Ollama 0.17.4: /api/ps says 4; the worker
    # makes all three the ceiling)
    assert await loaded_context(ollama.url) == (OWNERS_CONTEXT if asked is None else 4)
    ceiling = bed.worker.snapshot.settings.max_context
    request = await bed.request("/api/generate", {
        "model": MODEL, "prompt": "hi", "stream": False, "options": options}, model=MODEL)
    assert json.loads(await request.wait(120))["done"] is True
    assert await loaded_context(ollama.url) == ceiling == 8192


# -- /v1: served through the native API, answered as Ollama's OpenAI layer answers ---------

V1_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": MODEL, "max_tokens": 6, "temperature": 0, "seed": 1,
                             "messages": [{"role": "user", "content": "the sky is <blue> &"}]},
    "/v1/completions": {"model": MODEL, "prompt": "the sky is", "max_tokens": 6,
                        "temperature": 0, "seed": 1},
    "/v1/embeddings": {"model": MODEL, "input": ["the sky", "is blue"]},
}


async def loaded_for(url: str) -> tuple[int, float]:
    """The context the loaded model runs at, and the seconds until Ollama unloads it."""
    async with httpx.AsyncClient() as client:
        model, = (await client.get(f"{url}/api/ps")).json()["models"]
    expires = datetime.fromisoformat(model["expires_at"])
    return int(model["context_length"]), (expires - datetime.now(expires.tzinfo)).total_seconds()


@pytest.mark.parametrize("endpoint", list(V1_BODIES))
async def test_a_v1_request_runs_at_the_owners_context_and_keep_alive(
        ollama: RealOllama, endpoint: str) -> None:
    """Ollama's /v1 takes no options and no keep-alive: straight, a request runs at the
    owner's OLLAMA_CONTEXT_LENGTH and stays loaded Ollama's five minutes. Through the
    worker it runs at max_context and stays max_keep_alive (here 60 s)."""
    body = V1_BODIES[endpoint]
    async with httpx.AsyncClient(timeout=120) as client:
        straight = await client.post(f"{ollama.url}{endpoint}", json=body)
    assert straight.status_code == 200, straight.text
    context, left = await loaded_for(ollama.url)
    assert context == OWNERS_CONTEXT and left > 200, "the premise: Ollama's own choices"
    async with running_bed(ollama_url=ollama.url, settings=with_settings(
            owner_first=False, max_keep_alive=60.0)) as bed:
        await bed.registered(MODEL)
        request = await bed.request(endpoint, body, model=MODEL, target="RequestOpenAI")
        answer = json.loads(await request.wait(120))
        assert answer["object"] in ("chat.completion", "text_completion", "list"), answer
        context, left = await loaded_for(ollama.url)
        assert context == bed.worker.snapshot.settings.max_context == 8192
        assert 0 < left <= 60


def _without_draws(text: str) -> str:
    """An answer without what differs between two runs: the id Ollama draws at random,
    the second it was made in."""
    return re.sub(r'"(id|created)":("[a-z]+-\d+"|\d+)', "", text)


@pytest.mark.parametrize("endpoint", list(V1_BODIES))
@pytest.mark.parametrize("stream", [False, True])
async def test_a_v1_answer_through_the_worker_is_the_one_ollama_sends(
        bed: Bed, ollama: RealOllama, endpoint: str, stream: bool) -> None:
    """The same deterministic request, straight to Ollama's /v1 and through the worker
    (which serves it from the native API): the client gets the same bytes, event for
    event, but for the random id and the clock's second."""
    if stream and endpoint == "/v1/embeddings":
        pytest.skip("embeddings are never streamed")
    body = {**V1_BODIES[endpoint], **({"stream": True} if stream else {})}
    async with httpx.AsyncClient(timeout=120) as client:
        straight = await client.post(f"{ollama.url}{endpoint}", json=body)
    assert straight.status_code == 200, straight.text
    request = await bed.request(endpoint, body, model=MODEL, target="RequestOpenAI")
    await request.wait(120)
    assert request.chunks[-1]["tokenFragment"] == "", "served"
    if stream:
        events = [line.removeprefix("data: ") for line in straight.text.split("\n\n")
                  if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert [_without_draws(e) for e in events[:-1]] == \
            [_without_draws(f) for f in request.fragments]
    else:
        assert _without_draws(request.text) == _without_draws(straight.text)


# -- owner first sees the owner -------------------------------------------------------------

OWNER = "your use of Ollama"


async def _owner_chats_until_seen(bed: Bed, ollama: RealOllama, keep_alive: str) -> None:
    """The owner chats with the model, a message every few seconds, until the worker holds
    sharing for it (AssertionError after five messages). Under the hub's traffic a chat's
    mark on the model's expiry lasts only until the hub's next request: the worker looks
    before each of them, so the first chat is seen (it took twenty to sixty-four when only
    the looks every second could see it, before 2026-12-06)."""
    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(5):
            await client.post(f"{ollama.url}/api/chat", json=chat(keep_alive=keep_alive))
            try:
                await bed.worker.wait_for(lambda s: s.held_by == OWNER, 3,
                                          "owner first to see the owner's chat")
                return
            except TimeoutError:
                continue
    raise AssertionError("five chats of the owner's went unseen")


@asynccontextmanager
async def hub_traffic(bed: Bed, endpoint: str, body: dict[str, Any]) -> AsyncIterator[list[str]]:
    """Requests through the hub, one after another at about two a second (the traffic's
    pace, against looks once a second); yields the list their answers are added to."""
    answers: list[str] = []

    async def send() -> None:
        while True:
            request = await bed.request(endpoint, body, model=MODEL)
            answers.append(await request.wait(120))
            await asyncio.sleep(0.5)

    task = asyncio.create_task(send())
    try:
        yield answers
    finally:
        task.cancel()


async def test_requests_ollama_refuses_at_once_do_not_hide_the_owner(
        ollama: RealOllama) -> None:
    """A hub sending /api/embed {"input": 5} (refused by Ollama at once) every few seconds
    kept sharing on for 40 s while the owner chatted: each refusal marked the model as the
    worker's. Only a request Ollama accepted counts now. (A request the look finds still
    running counts as the worker's whatever it becomes: here each takes milliseconds.)"""
    async with running_bed(ollama_url=ollama.url, rules_look=0.2, owner_look=1.0,
                           settings=with_settings(owner_first_hold=30.0)) as bed:
        await bed.registered(MODEL)
        async with hub_traffic(bed, "/api/embed", {"model": MODEL, "input": 5}) as answers:
            await _owner_chats_until_seen(bed, ollama, "5m")
        assert answers and all("invalid input type" in a for a in answers)


async def test_an_expiry_the_workers_keep_alive_would_not_leave_is_the_owners(
        ollama: RealOllama) -> None:
    """The hub keeps the model busy; the owner chats with it too (keep-alive 10 minutes,
    the worker's is 300 s): the expiry the owner's chat leaves is not one the worker's
    requests could, so it is seen although the worker used the model in between."""
    async with running_bed(ollama_url=ollama.url, rules_look=0.2, owner_look=1.0,
                           settings=with_settings(owner_first_hold=30.0)) as bed:
        await bed.registered(MODEL)
        async with hub_traffic(bed, "/api/chat", chat()) as answers:
            await bed.worker.wait_for(lambda s: s.totals.served > 0, 60, "a hub chat")
            await _owner_chats_until_seen(bed, ollama, "10m")
        assert answers

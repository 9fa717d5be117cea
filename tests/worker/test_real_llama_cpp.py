"""The worker sharing llama.cpp's own ``llama-server`` (built here from llama.cpp's source)
on the tiny generated model: discovery, the hub's OpenAI requests passed through with
the owner's limits, and Ollama's native requests translated so that their answer has
the shape the real Ollama gives (compared line by line with the real Ollama's)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ghubai_tray.core.rules import Rule
from ghubai_tray.core.state import OllamaStatus, Pause
from ghubai_tray.desktop.icon import status_line
from tests.testbed.llm import MODEL_ALIAS
from tests.testbed.real_ollama import MODEL as OLLAMA_MODEL
from tests.worker.test_hostile_hub_servers import REFUSED
from tests.worker.test_real_ollama import direct_lines, same_shape
from tests.worker_bed import Bed, error_of, failure_of, running_bed, with_settings

pytestmark = [pytest.mark.llm, pytest.mark.llamacpp]
MESSAGES = [{"role": "user", "content": "the sky is"}]
V1 = {"model": MODEL_ALIAS, "temperature": 0, "seed": 7, "max_tokens": 12,
      "messages": MESSAGES}
CHAT = {"model": MODEL_ALIAS, "options": {"temperature": 0, "seed": 7, "num_predict": 6},
        "messages": MESSAGES}
OUTPUT_CEILING = 5


@pytest.fixture
async def bed(llama_cpp_server: str) -> AsyncIterator[Bed]:
    async with running_bed(ollama_url=llama_cpp_server, settings=with_settings(
            max_output_tokens=OUTPUT_CEILING)) as bed:
        await bed.registered(MODEL_ALIAS, timeout=30)
        yield bed


def _events(request: Any) -> list[str]:
    return [c["tokenFragment"] for c in request.chunks if not c["isFinal"]]


async def test_the_worker_shares_what_llama_server_lists_and_names_it(
        bed: Bed, llama_cpp_server: str) -> None:
    listed = httpx.get(f"{llama_cpp_server}/v1/models", timeout=30).json()
    build = httpx.get(f"{llama_cpp_server}/props", timeout=30).json()["build_info"]
    snap = bed.worker.snapshot
    assert snap.ollama is OllamaStatus.REACHABLE
    assert snap.model_server == f"llama.cpp's llama-server {build}"
    assert [m.name for m in snap.models] == [e["id"] for e in listed["data"]] == [MODEL_ALIAS]


async def test_a_streamed_openai_request_is_relayed_as_llama_server_sends_it(
        bed: Bed, llama_cpp_server: str) -> None:
    request = await bed.request("/v1/chat/completions", {**V1, "stream": True},
                                model=MODEL_ALIAS, target="RequestOpenAI")
    await request.wait(120)
    assert request.chunks[-1]["tokenFragment"] == ""  # served
    relayed = [json.loads(e) for e in _events(request)]
    async with httpx.AsyncClient(timeout=120) as client:
        direct = await client.post(f"{llama_cpp_server}/v1/chat/completions",
                                   json={**V1, "max_tokens": OUTPUT_CEILING, "stream": True})
    expected = [json.loads(line[6:]) for line in direct.text.splitlines()
                if line.startswith("data: ") and line != "data: [DONE]"]
    assert len(relayed) == len(expected)
    for ours, theirs in zip(relayed, expected, strict=True):
        same_shape(ours, theirs, "chunk")
        assert ours["choices"] == theirs["choices"]  # the same text: temperature 0, seed 7


async def test_the_owners_output_ceiling_holds_and_llama_servers_own_ways_around_it_are_left_out(
        bed: Bed) -> None:
    # n_predict -1 would win over max_tokens in llama-server (no limit at all); n_probs
    # and id_slot are its extensions; each is left out, and the answer shows it
    request = await bed.request("/v1/chat/completions", {
        **V1, "max_tokens": 100_000, "n_predict": -1, "n_probs": 50, "id_slot": 0,
        "grammar": "root ::= \"x\"", "stream": False}, model=MODEL_ALIAS,
        target="RequestOpenAI")
    await request.wait(120)
    assert request.chunks[-1]["tokenFragment"] == ""
    answer = json.loads("".join(_events(request)))
    assert answer["usage"]["completion_tokens"] == OUTPUT_CEILING
    assert answer["choices"][0]["finish_reason"] == "length"
    assert "completion_probabilities" not in json.dumps(answer)
    assert answer["choices"][0]["message"]["content"] != "x"  # no grammar forced it


@pytest.mark.ollama
async def test_a_native_chat_is_answered_in_the_shape_the_real_ollama_gives(
        bed: Bed, real_ollama: str) -> None:
    request = await bed.request("/api/chat", CHAT, model=MODEL_ALIAS)
    await request.wait(120)
    assert request.chunks[-1]["tokenFragment"] == ""
    ours = [json.loads(e) for e in _events(request)]
    theirs = [json.loads(line) for line in await direct_lines(
        real_ollama, "/api/chat", {**CHAT, "model": OLLAMA_MODEL})]
    same_shape(ours[0], theirs[0], "first line")
    same_shape(ours[-1], theirs[-1], "last line")
    assert ours[-1]["done"] is True and ours[-1]["done_reason"] == "length"
    assert ours[-1]["eval_count"] == OUTPUT_CEILING  # num_predict 6, capped by the owner
    assert all(line["done"] is False for line in ours[:-1])
    assert ours[0]["model"] == MODEL_ALIAS
    assert ours[0]["created_at"].endswith("Z")


@pytest.mark.ollama
async def test_a_native_answer_not_streamed_has_the_real_ollamas_shape(
        bed: Bed, real_ollama: str) -> None:
    request = await bed.request("/api/chat", {**CHAT, "stream": False}, model=MODEL_ALIAS)
    await request.wait(120)
    ours = json.loads("".join(_events(request)))
    theirs = json.loads((await direct_lines(
        real_ollama, "/api/chat", {**CHAT, "model": OLLAMA_MODEL, "stream": False}))[0])
    same_shape(ours, theirs, "answer")
    assert ours["message"]["content"]


@pytest.mark.ollama
async def test_a_native_generate_has_the_real_ollamas_shape_but_for_its_context(
        bed: Bed, real_ollama: str) -> None:
    generate = {"model": MODEL_ALIAS, "prompt": "the sky is",
                "options": {"temperature": 0, "num_predict": 4}}
    request = await bed.request("/api/generate", generate, model=MODEL_ALIAS)
    await request.wait(120)
    ours = [json.loads(e) for e in _events(request)]
    theirs = [json.loads(line) for line in await direct_lines(
        real_ollama, "/api/generate", {**generate, "model": OLLAMA_MODEL})]
    same_shape(ours[0], theirs[0], "first line")
    # the tokens of Ollama's own template, which no other server has: documented
    del theirs[-1]["context"]
    same_shape(ours[-1], theirs[-1], "last line")


async def _refusal(bed: Bed, request_id: str, endpoint: str, target: str) -> str:
    """Send a request straight to the worker's connection (the hub would route none for
    a model the worker does not offer) and return the error of its final."""
    node = next(iter(bed.hub.nodes.values()))
    await bed.hub.invoke(node.connection_id, target, {
        "requestId": request_id, "model": MODEL_ALIAS, "endpointUri": endpoint,
        "requestBody": json.dumps(V1 if endpoint.startswith("/v1/") else CHAT)})
    await bed.hub.wait_until(lambda: any(c["requestId"] == request_id
                                         for c in bed.hub.ignored_chunks), 30, "the refusal")
    final = next(c for c in bed.hub.ignored_chunks if c["requestId"] == request_id)
    assert final["isFinal"] is True
    return error_of(final["tokenFragment"])


async def test_an_unshared_model_and_ollamas_own_endpoints_are_refused(
        llama_cpp_server: str) -> None:
    async with running_bed(ollama_url=llama_cpp_server,
                           settings=with_settings(share_new_models=False)) as bed:
        await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.REACHABLE, 30,
                                  "llama-server's models")
        await bed.hub.wait_until(lambda: bed.hub.nodes, 30, "the worker to connect")
        assert "is not shared" in await _refusal(bed, "unshared", "/v1/chat/completions",
                                                 "RequestOpenAI")
    async with running_bed(ollama_url=llama_cpp_server) as bed:
        await bed.registered(MODEL_ALIAS, timeout=30)
        embed = await bed.request("/api/embed", {"model": MODEL_ALIAS, "input": "x"},
                                  model=MODEL_ALIAS)
        assert "is not Ollama" in await failure_of(embed)


async def test_a_pause_withdraws_llama_servers_models_and_refuses_requests(bed: Bed) -> None:
    bed.worker.submit(Pause())
    await bed.registered(timeout=30)
    assert await _refusal(bed, "paused", "/v1/chat/completions",
                          "RequestOpenAI") == "paused by the owner"


async def test_the_owners_own_use_of_llama_server_holds_sharing_and_the_hubs_does_not(
        llama_cpp_server: str) -> None:
    async with running_bed(ollama_url=llama_cpp_server, rules_look=0.2, owner_look=0.1,
                           settings=with_settings(owner_first_hold=3.0)) as bed:
        await bed.registered(MODEL_ALIAS, timeout=30)
        for _ in range(5):  # the hub's requests keep its one slot busy: not the owner's use
            served = await bed.request("/v1/chat/completions", {**V1, "max_tokens": 400},
                                       model=MODEL_ALIAS, target="RequestOpenAI")
            await served.wait(120)
            assert served.chunks[-1]["tokenFragment"] == ""
        assert bed.worker.snapshot.held_by is None
        async with httpx.AsyncClient(timeout=120) as client:
            for _ in range(40):  # the owner chats, until a look sees the slot working
                await client.post(f"{llama_cpp_server}/v1/chat/completions",
                                  json={**V1, "max_tokens": 400})
                try:
                    await bed.worker.wait_for(lambda s: s.held_by == Rule.OWNER_FIRST.value,
                                              0.5, "owner first to see the owner's chat")
                    break
                except TimeoutError:
                    continue
        snap = bed.worker.snapshot
        assert snap.held_by == Rule.OWNER_FIRST.value
        assert status_line(snap).startswith("Paused: you are using llama-server")
        await bed.registered()
        await bed.registered(MODEL_ALIAS, timeout=30)  # back once it was left alone 3 s


@pytest.mark.parametrize("name,endpoint,body,said", REFUSED, ids=[r[0] for r in REFUSED])
async def test_the_hostile_hubs_attacks_are_refused_in_front_of_the_real_llama_server(
        bed: Bed, name: str, endpoint: str, body: Any, said: str) -> None:
    target = "RequestOpenAI" if endpoint.startswith("/v1/") else "RequestInference"
    request = await bed.request(endpoint, body(MODEL_ALIAS), model=MODEL_ALIAS, target=target)
    assert said.casefold() in (await failure_of(request)).casefold()

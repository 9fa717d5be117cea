"""What the worker does at an address where a model server other than Ollama answers:
it says which server it is, shares that server's own list, and sends each kind only
what its table allows (KoboldCpp even answers Ollama's own routes, and is still
spoken to as KoboldCpp). KoboldCpp and LM Studio cannot run here: their stand-ins are
built from their documentation and source (tests/testbed/model_servers.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from ghubai_tray.core.server_kinds import ServerKind
from ghubai_tray.core.state import OllamaStatus, Pause
from tests.testbed.model_servers import (
    KOBOLD_VERSION,
    LLAMA_BUILD,
    LMSTUDIO_SECOND,
    MODEL,
    Kind,
    ModelServerStandIn,
)
from tests.worker_bed import failure_of, running_bed, with_settings

SHARED = {Kind.KOBOLDCPP: f"koboldcpp/{MODEL}", Kind.LMSTUDIO: "meta-llama-3.1-8b-instruct",
          Kind.LLAMACPP: MODEL}
KINDS = {Kind.KOBOLDCPP: ServerKind.KOBOLDCPP, Kind.LMSTUDIO: ServerKind.LMSTUDIO,
         Kind.LLAMACPP: ServerKind.LLAMACPP}


@pytest.fixture(params=list(Kind), ids=lambda k: k.name)
async def stand_in(request: pytest.FixtureRequest) -> AsyncIterator[ModelServerStandIn]:
    server = ModelServerStandIn(request.param)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("kind,shown", [
    (Kind.KOBOLDCPP, f"KoboldCpp {KOBOLD_VERSION}"),
    (Kind.LMSTUDIO, "LM Studio"),
    (Kind.LLAMACPP, f"llama.cpp's llama-server {LLAMA_BUILD}"),
])
async def test_another_server_is_named_and_its_own_list_is_shared(kind: Kind, shown: str) -> None:
    server = ModelServerStandIn(kind)
    await server.start()
    try:
        async with running_bed(ollama_url=server.url) as bed:
            await bed.registered(SHARED[kind], timeout=30)
            snap = bed.worker.snapshot
            assert snap.model_server == shown
            assert snap.server_kind is KINDS[kind]
            assert snap.ollama is OllamaStatus.REACHABLE
            # LM Studio's embedding model answers no chat: not offered
            assert [m.name for m in snap.models] == [SHARED[kind]]
        # never asked for its models the Ollama way, even where it answers that way too
        assert ("GET", "/api/tags") not in server.requests
    finally:
        await server.stop()


async def test_each_kind_gets_only_what_its_table_allows(
        stand_in: ModelServerStandIn) -> None:
    kind = stand_in.kind
    async with running_bed(ollama_url=stand_in.url,
                           settings=with_settings(max_output_tokens=64)) as bed:
        await bed.registered(SHARED[kind], timeout=30)
        request = await bed.request("/v1/chat/completions", {
            "model": SHARED[kind].upper(), "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100_000, "max_completion_tokens": 50, "temperature": 0.2,
            "top_k": 40, "stream": True,
            # each server's own ways around the owner's limits, and a stranger's field
            "n_predict": -1, "id_slot": 0, "grammar": "root ::= x", "max_context_length": 99999,
            "max_length": 100_000, "memory": "x" * 100, "genkey": "KCPP1", "ttl": 99999,
            "draft_model": "other-model", "n": 8, "best_of": 8, "guided_regex": ".*",
            "unknown_field": 1}, model=SHARED[kind], target="RequestOpenAI")
        await request.wait(30)
        assert request.chunks[-1]["tokenFragment"] == ""
    received = stand_in.bodies[-1]
    assert received["model"] == SHARED[kind]  # the shared model's exact name
    assert received["max_tokens"] == 50  # the smaller ask, within the owner's 64
    assert received["temperature"] == 0.2 and received["top_k"] == 40
    assert received["messages"] == [{"role": "user", "content": "hi"}]
    for field in ("n_predict", "id_slot", "grammar", "max_context_length", "max_length",
                  "memory", "genkey", "ttl", "draft_model", "n", "best_of", "guided_regex",
                  "unknown_field", "max_completion_tokens"):
        assert field not in received, field


async def test_a_native_chat_reaches_each_kind_as_openai_and_comes_back_as_ollamas(
        stand_in: ModelServerStandIn) -> None:
    kind = stand_in.kind
    async with running_bed(ollama_url=stand_in.url) as bed:
        await bed.registered(SHARED[kind], timeout=30)
        request = await bed.request("/api/chat", {
            "model": SHARED[kind], "messages": [{"role": "user", "content": "hi"}],
            "options": {"num_ctx": 100_000, "num_predict": 7, "num_gpu": 99, "top_k": 3}},
            model=SHARED[kind])
        await request.wait(30)
        assert request.chunks[-1]["tokenFragment"] == ""
        lines = [json.loads(c["tokenFragment"]) for c in request.chunks[:-1]]
    received = stand_in.bodies[-1]
    assert received == {"model": SHARED[kind], "messages": [{"role": "user", "content": "hi"}],
                        "stream": True, "stream_options": {"include_usage": True},
                        "max_tokens": 7, "top_k": 3}
    assert "".join(line["message"]["content"] for line in lines) == "The sky is blue"
    last = lines[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert (last["prompt_eval_count"], last["eval_count"]) == (9, 4)
    assert list(last) == ["model", "created_at", "message", "done", "done_reason",
                          "total_duration", "load_duration", "prompt_eval_count",
                          "eval_count", "eval_duration"]


async def test_a_server_gone_ends_the_request_in_one_error_final(
        stand_in: ModelServerStandIn) -> None:
    kind = stand_in.kind
    async with running_bed(ollama_url=stand_in.url) as bed:
        await bed.registered(SHARED[kind], timeout=30)
        await stand_in.stop()  # the server goes away: the request gets one final saying so
        request = await bed.request("/v1/chat/completions", {
            "model": SHARED[kind], "messages": [{"role": "user", "content": "hi"}]},
            model=SHARED[kind], target="RequestOpenAI")
        reason = await failure_of(request)
        assert "not reachable" in reason
        assert [c["isFinal"] for c in request.chunks] == [True]
        await stand_in.start()


async def test_ollama_is_named_with_its_version() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        assert bed.worker.snapshot.model_server == "Ollama 0.12.6"


@pytest.mark.llm
async def test_llama_cpp_pythons_real_server_is_shared_as_an_openai_compatible_one(
        llama_server: str) -> None:
    async with running_bed(ollama_url=llama_server) as bed:
        await bed.registered("tiny-llama", timeout=30)
        assert bed.worker.snapshot.model_server == "an OpenAI-compatible server"
        request = await bed.request("/v1/chat/completions", {
            "model": "tiny-llama", "messages": [{"role": "user", "content": "the sky is"}],
            "max_tokens": 4, "temperature": 0, "stream": True}, model="tiny-llama",
            target="RequestOpenAI")
        await request.wait(120)
        assert request.chunks[-1]["tokenFragment"] == ""
        chunks = [json.loads(c["tokenFragment"]) for c in request.chunks[:-1]]
        assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
        native = await bed.request("/api/generate", {
            "model": "tiny-llama", "prompt": "the sky is", "stream": False,
            "options": {"num_predict": 3}}, model="tiny-llama")
        await native.wait(120)
        answer = json.loads("".join(c["tokenFragment"] for c in native.chunks[:-1]))
        assert answer["done"] is True and answer["eval_count"] <= 3
        assert isinstance(answer["response"], str)


@pytest.mark.ollama
async def test_the_real_ollama_is_named_with_its_version(real_ollama: str) -> None:
    # what it says of itself: built from its Go module (not a release build, whose
    # version is linked in), it says 0.0.0
    version = httpx.get(f"{real_ollama}/api/version", timeout=30).json()["version"]
    async with running_bed(ollama_url=real_ollama) as bed:
        snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.REACHABLE, 60,
                                         "the real Ollama's models")
        assert snap.model_server == f"Ollama {version}"


async def test_a_pause_frees_no_memory_where_the_server_cannot_and_says_so(
        stand_in: ModelServerStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ghubai_tray.worker")
    async with running_bed(ollama_url=stand_in.url) as bed:
        await bed.registered(SHARED[stand_in.kind], timeout=30)
        bed.worker.submit(Pause())
        await bed.registered(timeout=30)
        await bed.hub.wait_until(
            lambda: any("freeing memory on pause is not available" in m
                        for m in caplog.messages), 30, "the worker to say it")
    assert [r for r in stand_in.requests if r[0] != "GET"] == []


async def test_a_pause_unloads_from_lm_studio_what_the_hubs_requests_loaded_and_no_more(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ghubai_tray.worker")
    owners = SHARED[Kind.LMSTUDIO]  # in memory before the worker came: the owner's
    server = ModelServerStandIn(Kind.LMSTUDIO, lmstudio_v1=True, second_model=True)
    await server.start()
    try:
        async with running_bed(ollama_url=server.url) as bed:
            await bed.registered(owners, LMSTUDIO_SECOND, timeout=30)
            for model in (owners, LMSTUDIO_SECOND):
                request = await bed.request("/v1/chat/completions", {
                    "model": model, "messages": [{"role": "user", "content": "hi"}]},
                    model=model, target="RequestOpenAI")
                await request.wait(30)
                assert request.chunks[-1]["tokenFragment"] == ""
            assert server.loaded == {owners, LMSTUDIO_SECOND}  # the second, just in time
            bed.worker.submit(Pause())
            await bed.hub.wait_until(
                lambda: any("freed the memory LM Studio held for the hub" in m
                            for m in caplog.messages), 30, "the unload")
        assert server.unloaded == [LMSTUDIO_SECOND]
        assert server.loaded == {owners}
    finally:
        await server.stop()

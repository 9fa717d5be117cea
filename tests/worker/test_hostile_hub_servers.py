"""The hostile-hub trial against every kind of model server other than Ollama.

Ollama's own suite (test_hostile_hub.py) judges what reached Ollama by Ollama's Go
types. Here each attack is made through the test hub at a worker sharing a stand-in
of KoboldCpp, LM Studio or llama.cpp's ``llama-server`` (the first two cannot run
here; the third's real server is in test_real_llama_cpp.py), and judged by what the
server received: either the worker's refusal reached the client and the server got
nothing, or the server got only what the kind's table allows.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.testbed.model_servers import MODEL, Kind, ModelServerStandIn
from tests.worker_bed import Bed, failure_of, running_bed

SHARED = {Kind.KOBOLDCPP: f"koboldcpp/{MODEL}", Kind.LMSTUDIO: "meta-llama-3.1-8b-instruct",
          Kind.LLAMACPP: MODEL}
HI = [{"role": "user", "content": "hi"}]
PNG = "iVBORw0KGgo" + "A" * 64


@pytest.fixture(params=list(Kind), ids=lambda k: k.name)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bed, ModelServerStandIn]]:
    server = ModelServerStandIn(request.param)
    await server.start()
    try:
        async with running_bed(ollama_url=server.url) as bed:
            await bed.registered(SHARED[server.kind], timeout=30)
            yield bed, server
    finally:
        await server.stop()


def _chat(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": HI, **fields}


# (name, endpoint, body maker, what the refusal says)
REFUSED: list[tuple[str, str, Any, str]] = [
    ("another model in the body", "/v1/chat/completions",
     lambda m: _chat("some-unshared-model"), "asks for a different model"),
    ("the model twice", "/v1/chat/completions",
     lambda m: f'{{"model": "{m}", "model": "other", "messages": []}}', "more than once"),
    ("a field spelled another way", "/v1/chat/completions",
     lambda m: {"model": m, "Messages": HI}, "differently"),
    ("an image from an address", "/v1/chat/completions",
     lambda m: _chat(m, messages=[{"role": "user", "content": [
         {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest"}}]}]),
     "never from an address"),
    ("too many images", "/v1/chat/completions",
     lambda m: _chat(m, messages=[{"role": "user", "content": [
         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}] * 9}]),
     "image(s)"),
    ("too many messages", "/v1/chat/completions",
     lambda m: _chat(m, messages=HI * 1001), "message(s)"),
    ("too many tools", "/v1/chat/completions",
     lambda m: _chat(m, tools=[{"type": "function", "function": {"name": "f"}}] * 129),
     "tool(s)"),
    ("too many stop strings", "/v1/chat/completions",
     lambda m: _chat(m, stop=["x"] * 17), "stop string(s)"),
    ("a schema that costs the grammar millions", "/v1/chat/completions",
     lambda m: _chat(m, response_format={"type": "json_schema", "json_schema": {
         "name": "x", "schema": {"type": "array", "minItems": 900_000}}}), "grammar"),
    ("probabilities of a thousand tokens per token", "/v1/chat/completions",
     lambda m: _chat(m, logprobs=True, top_logprobs=1000), "top_logprobs"),
    ("the legacy API's logprobs count", "/v1/completions",
     lambda m: {"model": m, "prompt": "hi", "logprobs": 500}, "logprobs"),
    ("a native embedding", "/api/embed",
     lambda m: {"model": m, "input": "hi"}, "not Ollama"),
    ("a native fill-in-the-middle", "/api/generate",
     lambda m: {"model": m, "prompt": "def f(", "suffix": "return 1"}, "suffix"),
    ("an endpoint that is not inference", "/props", lambda m: {"model": m}, "endpoint"),
    ("a slot's state", "/slots/0?action=erase", lambda m: {"model": m}, "endpoint"),
    ("KoboldCpp's own generate", "/api/extra/generate/stream", lambda m: {"model": m},
     "endpoint"),
    ("LM Studio's own chat", "/api/v0/chat/completions", lambda m: _chat(m), "endpoint"),
    ("a body that is not JSON", "/v1/chat/completions", lambda m: "{not json", "JSON"),
]


@pytest.mark.parametrize("name,endpoint,body,said", REFUSED, ids=[r[0] for r in REFUSED])
async def test_an_attack_is_refused_and_the_server_gets_nothing(
        served: tuple[Bed, ModelServerStandIn], name: str, endpoint: str, body: Any,
        said: str) -> None:
    bed, server = served
    model = SHARED[server.kind]
    target = "RequestOpenAI" if endpoint.startswith("/v1/") else "RequestInference"
    request = await bed.request(endpoint, body(model), model=model, target=target)
    reason = await failure_of(request)
    assert said.casefold() in reason.casefold(), reason
    assert server.bodies == []
    assert not [r for r in server.requests if r[0] != "GET"]


async def test_what_reaches_the_server_is_the_workers_own_rebuild(
        served: tuple[Bed, ModelServerStandIn]) -> None:
    bed, server = served
    model = SHARED[server.kind]
    # the case of the model, a null, a stranger's fields, a huge output, a data: image
    request = await bed.request("/v1/chat/completions", json.dumps({
        "model": model.upper(), "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}],
        "max_tokens": 10**9, "seed": None, "user": "x" * 50, "metadata": {"a": "b"},
        "store": True, "service_tier": "priority", "stream": False}),
        model=model, target="RequestOpenAI")
    await request.wait(30)
    assert request.chunks[-1]["tokenFragment"] == ""
    received = server.bodies[-1]
    assert received == {"model": model, "stream": False, "max_tokens": 4096, "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]}


async def test_a_native_chat_with_images_and_tools_is_translated_within_the_limits(
        served: tuple[Bed, ModelServerStandIn]) -> None:
    bed, server = served
    model = SHARED[server.kind]
    tool = {"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}
    request = await bed.request("/api/chat", {
        "model": model, "stream": False, "format": "json", "tools": [tool],
        "keep_alive": "100h", "template": "{{ .Prompt }}", "think": True,
        "options": {"num_predict": -1, "num_ctx": 10**6, "use_mmap": False, "seed": 3},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "see", "images": [PNG]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]},
            {"role": "tool", "content": "cold", "tool_name": "weather"}]}, model=model)
    await request.wait(30)
    assert request.chunks[-1]["tokenFragment"] == ""
    answer = json.loads("".join(c["tokenFragment"] for c in request.chunks[:-1]))
    assert answer["message"] == {"role": "assistant", "content": "The sky is blue"}
    assert server.bodies[-1] == {
        "model": model, "stream": False, "max_tokens": 4096, "seed": 3,
        "response_format": {"type": "json_object"}, "tools": [tool], "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_2_0", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]},
            {"role": "tool", "content": "cold", "name": "weather"}]}

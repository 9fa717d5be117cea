"""The Ollama stand-in against recorded examples of Ollama's real responses.

Compared field by field (``tests/data/ollama/README.md`` says where the
examples come from): the same keys in the same order, the same JSON types, and
the same values wherever a value is not specific to one request. The framing is
checked byte by byte: compact lines, trailing newlines exactly where Go's
writers put them, no blank lines in NDJSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.testbed.ollama import Fault, ModelInfo, OllamaStandIn, TagsShape, go_json, go_time

DATA = Path(__file__).parent / "data" / "ollama"
# Values that are the same in every response of a kind, whatever was asked.
CONSTANT_KEYS = {"role", "done", "done_reason", "object", "system_fingerprint",
                 "finish_reason", "format", "parent_model", "index", "type"}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def load_lines(name: str) -> list[Any]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def load_sse(name: str) -> list[Any]:
    events = [e for e in (DATA / name).read_text().split("\n\n") if e]
    return [json.loads(e.removeprefix("data: ")) for e in events if e != "data: [DONE]"]


def assert_same_shape(actual: Any, expected: Any, where: str = "$") -> None:
    """Keys in order, JSON types, and constant values equal; recursive."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            if key in CONSTANT_KEYS and not isinstance(value, dict | list):
                assert actual[key] == value, f"{where}.{key}: {actual[key]!r} != {value!r}"
            assert_same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not an array"
        if expected:
            assert actual, f"{where}: empty, expected items like {expected[0]!r}"
            for i, item in enumerate(actual):
                assert_same_shape(item, expected[0], f"{where}[{i}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert type(actual) is type(expected), f"{where}: {actual!r} vs {expected!r}"
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), \
            f"{where}: {actual!r} is not a number"


def assert_compact(line: str) -> None:
    """The line is exactly what Go's json.Marshal writes for its value."""
    assert line == go_json(json.loads(line)), line


@pytest.fixture
async def ollama() -> AsyncIterator[OllamaStandIn]:
    server = OllamaStandIn(models=[ModelInfo("llama3.2:1b"), ModelInfo("all-minilm:latest")])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(ollama: OllamaStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ollama.url, timeout=30) as c:
        yield c


CHAT = {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "why is the sky blue?"}]}
GENERATE = {"model": "llama3.2:1b", "prompt": "Why is the sky blue?"}


@pytest.mark.parametrize(("path", "body", "recorded"), [
    ("/api/chat", CHAT, "chat_stream.ndjson"),
    ("/api/generate", GENERATE, "generate_stream.ndjson"),
], ids=["chat", "generate"])
async def test_native_stream_matches_ollama(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], recorded: str
) -> None:
    expected = load_lines(recorded)
    resp = await client.post(path, json=body)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-ndjson"
    text = resp.text
    assert text.endswith("\n") and "\n\n" not in text, "NDJSON has no blank lines"
    lines = text.splitlines()
    for line in lines:
        assert_compact(line)
    objs = [json.loads(line) for line in lines]
    for obj in objs[:-1]:
        assert_same_shape(obj, expected[0])
    assert_same_shape(objs[-1], expected[-1])
    content = "".join(o.get("response") or o.get("message", {}).get("content", "") for o in objs)
    assert content == "The sky is blue because of Rayleigh scattering."


@pytest.mark.parametrize(("path", "body", "recorded"), [
    ("/api/chat", {**CHAT, "stream": False}, "chat.json"),
    ("/api/generate", {**GENERATE, "stream": False}, "generate.json"),
    ("/api/chat", {"model": "llama3.2:1b", "messages": [], "keep_alive": 0}, "chat_unload.json"),
    ("/api/embed", {"model": "all-minilm", "input": "Why is the sky blue?"}, "embed.json"),
], ids=["chat", "generate", "unload", "embed"])
async def test_native_single_object_matches_ollama(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], recorded: str
) -> None:
    resp = await client.post(path, json=body)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    assert not resp.text.endswith("\n"), "gin's c.JSON writes no trailing newline"
    assert_compact(resp.text)
    assert_same_shape(resp.json(), load(recorded))


async def test_unload_is_recorded(client: httpx.AsyncClient, ollama: OllamaStandIn) -> None:
    await client.post("/api/chat", json={**CHAT, "stream": False})
    assert "llama3.2:1b" in ollama.loaded
    await client.post("/api/generate", json={"model": "llama3.2:1b", "keep_alive": 0})
    assert ollama.unloads == ["llama3.2:1b"] and "llama3.2:1b" not in ollama.loaded


@pytest.mark.parametrize(("path", "recorded"), [
    ("/api/tags", "tags.json"), ("/api/version", "version.json")])
async def test_listing_matches_ollama(client: httpx.AsyncClient, path: str, recorded: str) -> None:
    resp = await client.get(path)
    assert resp.status_code == 200
    assert_compact(resp.text)
    assert_same_shape(resp.json(), load(recorded))


async def test_ps_lists_loaded_models(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/ps")).json() == {"models": []}
    await client.post("/api/chat", json={**CHAT, "stream": False})
    assert_same_shape((await client.get("/api/ps")).json(), load("ps.json"))


async def test_root_says_ollama_is_running(client: httpx.AsyncClient) -> None:
    resp = await client.get("/")
    assert resp.text == "Ollama is running"


@pytest.mark.parametrize(("shape", "expected"), [
    (TagsShape.BARE_OBJECTS, [{"name": "llama3.2:1b"}, {"name": "all-minilm:latest"}]),
    (TagsShape.STRINGS, ["llama3.2:1b", "all-minilm:latest"]),
], ids=lambda v: getattr(v, "value", "expected"))
async def test_tags_alternative_shapes(
    client: httpx.AsyncClient, ollama: OllamaStandIn, shape: TagsShape, expected: Any
) -> None:
    ollama.tags_shape = shape
    assert (await client.get("/api/tags")).json() == expected


@pytest.mark.parametrize("shape", [TagsShape.HTML, TagsShape.GARBAGE], ids=lambda s: s.value)
async def test_tags_broken_shapes_are_not_json(
    client: httpx.AsyncClient, ollama: OllamaStandIn, shape: TagsShape
) -> None:
    ollama.tags_shape = shape
    resp = await client.get("/api/tags")
    with pytest.raises(ValueError):
        json.loads(resp.content)


async def test_remote_model_carries_remote_fields(ollama: OllamaStandIn,
                                                  client: httpx.AsyncClient) -> None:
    ollama.models.append(ModelInfo("gpt-oss:120b-cloud", remote_model="gpt-oss:120b"))
    entry = (await client.get("/api/tags")).json()["models"][-1]
    assert list(entry)[:4] == ["name", "model", "remote_model", "remote_host"]
    assert entry["remote_model"] == "gpt-oss:120b"


async def test_native_errors_are_byte_exact(client: httpx.AsyncClient,
                                            ollama: OllamaStandIn) -> None:
    resp = await client.post("/api/chat", json={**CHAT, "model": "llama3.9"})
    assert resp.status_code == 404
    assert resp.content == (DATA / "error_404.json").read_bytes()
    ollama.fault = Fault.BUSY
    resp = await client.post("/api/chat", json=CHAT)
    assert resp.status_code == 503
    assert resp.content == (DATA / "error_503.json").read_bytes()
    ollama.fault = Fault.NONE
    resp = await client.post("/api/chat", content=b"{oops")
    assert resp.status_code == 400 and "invalid character" in resp.json()["error"]
    resp = await client.post("/api/chat", json={"messages": []})
    assert resp.status_code == 400 and resp.json() == {"error": "model is required"}


async def test_v1_chat_stream_matches_ollama(client: httpx.AsyncClient) -> None:
    expected = load_sse("v1_chat_stream.txt")
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.headers["content-type"] == "text/event-stream"
    text = resp.text
    assert text.endswith("data: [DONE]\n\n")
    events = text.split("\n\n")[:-2]
    assert all(e.startswith("data: ") for e in events)
    objs = [json.loads(e.removeprefix("data: ")) for e in events]
    for e in events:
        assert_compact(e.removeprefix("data: "))
    for obj in objs[:-2]:
        assert_same_shape(obj, expected[0])
    assert_same_shape(objs[-2], expected[1])
    assert_same_shape(objs[-1], expected[2])
    assert "".join(o["choices"][0]["delta"]["content"] for o in objs[:-1]) == \
        "The sky is blue because of Rayleigh scattering."


async def test_v1_chat_stream_without_usage_has_no_usage_event(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    events = [e for e in resp.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert "usage" not in events[-2]


@pytest.mark.parametrize(("path", "body", "recorded"), [
    ("/v1/chat/completions", {**CHAT, "stream": False}, "v1_chat.json"),
    ("/v1/embeddings", {"model": "all-minilm", "input": "hello"}, "v1_embeddings.json"),
    ("/v1/chat/completions", {**CHAT, "model": "llama3.9"}, "v1_error_404.json"),
], ids=["chat", "embeddings", "error-404"])
async def test_v1_single_object_matches_ollama(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], recorded: str
) -> None:
    resp = await client.post(path, json=body)
    assert resp.text.endswith("\n"), "json.Encoder writes a trailing newline"
    assert resp.text.count("\n") == 1
    assert_compact(resp.text[:-1])
    assert_same_shape(resp.json(), load(recorded))


async def test_v1_models_matches_ollama(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/models")
    assert_same_shape(resp.json(), load("v1_models.json"))
    assert [m["owned_by"] for m in resp.json()["data"]] == ["library", "library"]


async def test_v1_completions_stream_matches_ollama(client: httpx.AsyncClient) -> None:
    expected = load_sse("v1_completions_stream.txt")
    resp = await client.post("/v1/completions", json={**GENERATE, "stream": True})
    events = [e for e in resp.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    objs = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    for obj in objs[:-1]:
        assert_same_shape(obj, expected[0])
    assert_same_shape(objs[-1], expected[1])


async def test_the_answer_ends_by_itself_or_at_the_requested_length(
        client: httpx.AsyncClient, ollama: OllamaStandIn) -> None:
    ollama.reply_tokens = ["w "] * 100
    resp = await client.post("/api/chat", json={**CHAT, "options": {"num_predict": 50}})
    assert len(resp.text.splitlines()) == 51
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True,
                                                           "max_tokens": 20})
    assert resp.text.count("chat.completion.chunk") == 21
    resp = await client.post("/api/chat", json={**CHAT, "options": {"num_predict": 4096}})
    assert len(resp.text.splitlines()) == 101


async def test_mid_stream_error_native(client: httpx.AsyncClient, ollama: OllamaStandIn) -> None:
    ollama.fault, ollama.fault_after = Fault.MID_STREAM, 3
    resp = await client.post("/api/chat", json=CHAT)
    assert resp.status_code == 200
    objs = [json.loads(line) for line in resp.text.splitlines()]
    assert len(objs) == 4 and list(objs[-1]) == ["error"]
    assert not any(o.get("done") for o in objs)


async def test_mid_stream_error_v1_ends_without_done(client: httpx.AsyncClient,
                                                     ollama: OllamaStandIn) -> None:
    ollama.fault, ollama.fault_after = Fault.MID_STREAM, 3
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert resp.status_code == 200
    assert "[DONE]" not in resp.text and resp.text.count("data: ") == 3


@pytest.mark.parametrize(("fault", "status", "ctype"), [
    (Fault.INTERNAL, 500, "application/json"), (Fault.BAD_REQUEST, 400, "application/json"),
    (Fault.HTML, 200, "text/html"), (Fault.GARBAGE, 200, "application/octet-stream"),
], ids=lambda v: getattr(v, "value", str(v)))
async def test_injected_faults(client: httpx.AsyncClient, ollama: OllamaStandIn, fault: Fault,
                               status: int, ctype: str) -> None:
    ollama.fault = fault
    for path in ("/api/chat", "/v1/chat/completions"):
        resp = await client.post(path, json={**CHAT, "stream": True})
        assert resp.status_code == status
        assert resp.headers["content-type"].startswith(ctype)
    if fault is Fault.INTERNAL:
        assert resp.json()["error"]["type"] == "api_error"


async def test_disconnect_fault_cuts_the_stream(client: httpx.AsyncClient,
                                                ollama: OllamaStandIn) -> None:
    ollama.fault, ollama.fault_after = Fault.DISCONNECT, 2
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/api/chat", json=CHAT)
    assert ollama.cancellations == ["/api/chat"]


async def test_tokens_are_sent_as_they_are_generated(client: httpx.AsyncClient,
                                                     ollama: OllamaStandIn) -> None:
    ollama.token_delay = 0.05
    async with client.stream("POST", "/api/chat", json=CHAT) as resp:
        lines = resp.aiter_lines()
        first = json.loads(await lines.__anext__())
        # The first token is here while the generation is still going on.
        assert first["done"] is False and ollama.active == 1
        rest = [json.loads(line) async for line in lines]
    assert rest[-1]["done"] is True


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
async def test_client_disconnect_cancels_generation(
    client: httpx.AsyncClient, ollama: OllamaStandIn, path: str
) -> None:
    ollama.token_delay = 0.05
    ollama.reply_tokens = ["tok"] * 200
    async with client.stream("POST", path, json={**CHAT, "stream": True}) as resp:
        await resp.aiter_lines().__anext__()
    await ollama.wait_until(lambda: ollama.cancellations == [path], what="cancellation")
    await ollama.wait_until(lambda: ollama.active == 0, what="generation to stop")
    assert ollama.completed == []


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/pull"), ("POST", "/api/push"), ("POST", "/api/create"),
    ("POST", "/api/copy"), ("DELETE", "/api/delete"), ("POST", "/api/show"),
    ("HEAD", "/api/blobs/sha256:abc"), ("POST", "/api/blobs/sha256:abc"),
])
async def test_management_requests_are_recorded(
    client: httpx.AsyncClient, ollama: OllamaStandIn, method: str, path: str
) -> None:
    await client.get("/api/tags")
    await client.post("/api/chat", json={**CHAT, "stream": False})
    assert ollama.management_requests == []
    await client.request(method, path, json={"model": "x"})
    assert [(r.method, r.path) for r in ollama.management_requests] == [(method, path)]


def test_go_json_escapes_like_go() -> None:
    assert go_json({"a": "<b>&</b>", "n": None, "u": "é\u2028"}) == \
        '{"a":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e","n":null,"u":"é\\u2028"}'


def test_go_time_trims_trailing_zeros() -> None:
    assert go_time(1_691_174_565_499_127_000) == "2023-08-04T18:42:45.499127Z"
    assert go_time(1_691_174_565_000_000_000) == "2023-08-04T18:42:45Z"

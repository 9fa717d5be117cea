"""Ollama's native requests served by an OpenAI-compatible server, and the answer written
back as Ollama's lines: pure, so every split of the server's stream is tried."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.framing import BodyFramer, Done, Failed, Frame, Relay, SseFramer
from ghubai_tray.core.native_bridge import NativeShape, go_time, native_answer_framer
from ghubai_tray.core.request_body import (
    PASS_FIELDS,
    BodyRefused,
    Ceilings,
    Kind,
    canonical_body,
)
from ghubai_tray.core.server_fields import DROPPED, KEPT
from ghubai_tray.core.server_kinds import ServerKind

OTHERS = [k for k in ServerKind if k is not ServerKind.OLLAMA]
START = 1_764_900_000_000_000_000


def _clock() -> Any:
    ticks = iter(range(START, START + 10**12, 1_000_000))  # a millisecond per reading
    return lambda: next(ticks)


def _sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def _delta(**delta: Any) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": None}]}


STREAM = _sse(_delta(role="assistant", content=None), _delta(content="The"),
              _delta(content=" sky"),
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
              {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2},
               "timings": {"prompt_ms": 1.5, "predicted_ms": 2.25}})


def _run(shape: NativeShape, data: list[bytes]) -> list[Frame]:
    framer = native_answer_framer(shape, SseFramer() if shape.stream else BodyFramer(),
                                  now=_clock())
    frames = [f for piece in data for f in framer.feed(piece)]
    return frames + framer.finish()


def test_a_streamed_chat_becomes_ollamas_lines_in_its_field_order() -> None:
    frames = _run(NativeShape("chat", True, "tiny"), [STREAM])
    assert isinstance(frames[-1], Done)
    lines = [json.loads(f.text) for f in frames if isinstance(f, Relay)]
    assert [line["message"]["content"] for line in lines] == ["The", " sky", ""]
    assert list(lines[0]) == ["model", "created_at", "message", "done"]
    last = lines[-1]
    assert list(last) == ["model", "created_at", "message", "done", "done_reason",
                          "total_duration", "load_duration", "prompt_eval_count",
                          "prompt_eval_duration", "eval_count", "eval_duration"]
    assert last["done_reason"] == "length"
    assert (last["prompt_eval_count"], last["eval_count"]) == (9, 2)
    assert (last["prompt_eval_duration"], last["eval_duration"]) == (1_500_000, 2_250_000)
    # what the server's figures leave of the whole (the clock: 1 ms per reading)
    assert last["load_duration"] == last["total_duration"] - 3_750_000


def test_a_generate_is_written_as_ollamas_generate_lines() -> None:
    frames = _run(NativeShape("generate", True, "tiny"), [STREAM])
    lines = [json.loads(f.text) for f in frames if isinstance(f, Relay)]
    assert [line["response"] for line in lines] == ["The", " sky", ""]
    assert list(lines[0]) == ["model", "created_at", "response", "done"]
    assert lines[-1]["done"] is True and "context" not in lines[-1]


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_any_split_of_the_stream_gives_the_same_lines(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    whole = _run(NativeShape("chat", True, "tiny"), [STREAM])
    split = _run(NativeShape("chat", True, "tiny"), pieces)
    assert [type(f) for f in split] == [type(f) for f in whole]
    content = [json.loads(f.text)["message"]["content"] for f in split if isinstance(f, Relay)]
    assert content == ["The", " sky", ""]


def test_streamed_tool_calls_are_joined_into_ollamas_whole_calls() -> None:
    stream = _sse(
        _delta(role="assistant", tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                              "function": {"name": "weather",
                                                           "arguments": '{"ci'}}]),
        _delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    frames = _run(NativeShape("chat", True, "tiny"), [stream])
    lines = [json.loads(f.text) for f in frames if isinstance(f, Relay)]
    assert lines[0]["message"] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"index": 0, "name": "weather",
                                      "arguments": {"city": "Oslo"}}}]}
    assert lines[-1]["done_reason"] == "stop"  # as Ollama says after tool calls


def test_a_whole_answer_becomes_one_ollama_object() -> None:
    body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Hi <there>", "reasoning_content": "hmm"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()
    frames = _run(NativeShape("chat", False, "tiny"), [body])
    assert isinstance(frames[-1], Done)
    text = "".join(f.text for f in frames if isinstance(f, Relay))
    assert "\\u003cthere\\u003e" in text  # Go's JSON, as Ollama writes it
    answer = json.loads(text)
    assert answer["message"] == {"role": "assistant", "content": "Hi <there>",
                                 "thinking": "hmm"}
    assert answer["done"] is True and answer["eval_count"] == 4


@pytest.mark.parametrize("stream", [
    b'data: {"choices": "nonsense"}\n\ndata: [DONE]\n\n',
    _sse(_delta(tool_calls=[{"index": 0, "function": {"name": "f", "arguments": "{oops"}}])),
    b'data: {"error": {"message": "the model crashed"}}\n\n',
    b'data: {"choices": [{"delta": {"content": "cut"}}]}\n\n',
], ids=["not choices", "broken arguments", "server error", "no [DONE]"])
def test_an_answer_that_cannot_be_translated_ends_in_one_failure(stream: bytes) -> None:
    frames = _run(NativeShape("chat", True, "tiny"), [stream])
    assert sum(isinstance(f, Failed | Done) for f in frames) == 1
    assert isinstance(frames[-1], Failed | Done)
    if b"[DONE]" not in stream or b"oops" in stream:
        assert isinstance(frames[-1], Failed)


def test_go_time_is_rfc3339_with_the_trailing_zeros_cut() -> None:
    assert go_time(START) == "2025-12-05T02:00:00Z"
    assert go_time(START + 286_565_085) == "2025-12-05T02:00:00.286565085Z"
    assert go_time(START + 120_000_000) == "2025-12-05T02:00:00.12Z"
    moment = datetime.fromisoformat(go_time(START + 5_000).replace("Z", "+00:00"))
    assert moment.tzinfo == UTC


@pytest.mark.parametrize("server", OTHERS, ids=lambda k: k.value)
def test_each_kinds_table_keeps_its_own_and_drops_the_rest(server: ServerKind) -> None:
    table = PASS_FIELDS[server]["/v1/chat/completions"]
    for name in KEPT[server]:
        assert table[name].kind is Kind.KEEP
    for name in DROPPED[server]:
        assert table[name].kind is Kind.DROP and table[name].why
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}],
                       **{name: 1 for name in DROPPED[server]}, "max_tokens": 10**6})
    canonical = canonical_body("/v1/chat/completions", body, "m", Ceilings(), server)
    sent = json.loads(canonical.body)
    assert not set(DROPPED[server]) & set(sent)
    assert sent["max_tokens"] == Ceilings().output_tokens
    assert canonical.path == "/v1/chat/completions" and canonical.native is None
    assert set(canonical.dropped) == set(DROPPED[server])


@pytest.mark.parametrize("server", OTHERS, ids=lambda k: k.value)
def test_a_native_chat_for_another_server_is_posted_to_its_chat_endpoint(
        server: ServerKind) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}],
                       "options": {"repeat_penalty": 1.1, "num_ctx": 4096}})
    canonical = canonical_body("/api/chat", body, "m", Ceilings(), server)
    sent = json.loads(canonical.body)
    assert canonical.path == "/v1/chat/completions"
    assert canonical.native == NativeShape("chat", True, "m")
    assert sent["max_tokens"] == Ceilings().output_tokens  # Ollama's default, the ceiling
    assert "num_ctx" not in sent and "keep_alive" not in sent
    repeat = {ServerKind.OPENAI: "repetition_penalty"}.get(server, "repeat_penalty")
    assert sent[repeat] == 1.1


def test_ollama_keeps_its_native_way() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}],
                       "id_slot": 1})
    canonical = canonical_body("/v1/chat/completions", body, "m", Ceilings())
    assert canonical.path == "/api/chat" and canonical.native is None
    with pytest.raises(BodyRefused):
        canonical_body("/api/embed", '{"model": "m", "input": "x"}', "m", Ceilings(),
                       ServerKind.LLAMACPP)

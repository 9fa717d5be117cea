"""The /v1 bridge, checked against Ollama's own OpenAI middleware run in Go.

Ollama's ``/v1`` endpoints take neither options nor a keep-alive, so the worker
serves them through the native API (``ghubai_tray/core/openai_bridge.py``). The
claim is that nobody can tell: the native request is the one Ollama's middleware
would have made (plus the owner's context and keep-alive), and the answer is
byte for byte what its writers would have written. Both halves are compared with
the real middleware (``tests/godecode/bridge.go``), on bodies and answers
hypothesis makes up; only the id (random in Ollama too) and a streamed chunk's
``created`` second (Ollama's clock) are set aside.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.framing import BodyFramer, Done, Failed, NdjsonFramer, Relay
from ghubai_tray.core.gojson import go_dumps, go_float, go_string
from ghubai_tray.core.openai_bridge import AnswerShape, answer_framer
from ghubai_tray.core.request_body import BodyRefused, Canonical, Ceilings, canonical_body
from tests.testbed.godecode import GoDecoder

MODEL = "llama3.2:1b"
CEILINGS = Ceilings()

pytestmark = pytest.mark.go


@pytest.fixture(scope="module")
def go() -> Iterator[GoDecoder]:
    decoder = GoDecoder()
    yield decoder
    decoder.close()


# -- Go's JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "written"), [
    (1.0, "1"), (0.1, "0.1"), (-0.0, "-0"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (1e-7, "1e-7"), (1.5e-10, "1.5e-10"), (2.5e-6, "0.0000025"), (1e-6, "0.000001"),
    (-1.25e300, "-1.25e+300"), (123456789012345678901.0, "123456789012345680000")])
def test_floats_are_written_as_go_writes_them(value: float, written: str) -> None:
    assert go_float(value) == written


def test_strings_are_made_safe_for_html_as_go_makes_them() -> None:
    assert go_string("a<b>&\u2028\u2029\x01\b\n\"\\é") == \
        '"a\\u003cb\\u003e\\u0026\\u2028\\u2029\\u0001\\b\\n\\"\\\\é"'
    assert go_dumps({"b": [1, 2.0, None, True], "a": "x"}) == '{"b":[1,2,null,true],"a":"x"}'


# -- the request -----------------------------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from("ab <>&é\u2028\n\"\\😀"), max_size=12)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                   st.floats(allow_nan=False, allow_infinity=False, width=64), TEXT)
ARGUMENTS = st.dictionaries(TEXT, st.one_of(SCALAR, st.dictionaries(TEXT, SCALAR, max_size=3),
                                            st.lists(SCALAR, max_size=3)), max_size=4)


def _data_url(payload: bytes, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(payload).decode()}"


IMAGE_URL = st.one_of(
    st.builds(_data_url, st.binary(max_size=12),
              st.sampled_from(["image/png", "image/jpeg", "image/webp", "", "image/gif"])),
    st.just("data:image/png;base64,not base64!"), st.just("https://example.com/cat.png"))
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": st.one_of(IMAGE_URL,
                                                  st.fixed_dictionaries({"url": IMAGE_URL}))}),
    st.fixed_dictionaries({"type": st.just("audio"), "text": TEXT}), st.just("part"))
TOOL_CALL = st.fixed_dictionaries(
    {"id": st.sampled_from(["c1", "c2", ""]), "type": st.just("function"),
     "function": st.fixed_dictionaries({"name": st.sampled_from(["get", "put"]),
                                        "arguments": st.one_of(ARGUMENTS.map(json.dumps),
                                                               st.just("[1]"),
                                                               st.just("{bad"))})})
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "Tool"])},
    optional={"content": st.one_of(TEXT, st.lists(PART, max_size=3), st.none(),
                                   st.integers(0, 3)),
              "tool_calls": st.lists(TOOL_CALL, max_size=2),
              "name": st.sampled_from(["get", "put"]),
              "tool_call_id": st.sampled_from(["c1", "c2"]), "reasoning": TEXT})
NUMBER = st.one_of(st.integers(-3, 3), st.floats(-2, 2, allow_nan=False))
# Go holds a completion's sampling numbers as float32: some do not fit one.
FLOAT32 = st.one_of(NUMBER, st.sampled_from([1e39, -4e38, 3.4e38, 1e-50]))
RESPONSE_FORMAT = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["json_object", " JSON_Object ", "text"])}),
    st.fixed_dictionaries({"type": st.just("json_schema"),
                           "json_schema": st.fixed_dictionaries(
                               {"name": st.just("x")},
                               optional={"schema": st.just({"type": "object", "properties": {
                                   "n": {"type": "integer", "maximum": 1e3}}})})}))
CHAT = st.fixed_dictionaries(
    {"model": st.just(MODEL), "messages": st.lists(MESSAGE, max_size=4)},
    optional={"stream": st.booleans(),
              "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
              "max_tokens": st.integers(1, 9000), "seed": st.integers(-5, 5),
              "temperature": NUMBER, "top_p": NUMBER, "frequency_penalty": NUMBER,
              "presence_penalty": NUMBER,
              "stop": st.one_of(TEXT, st.lists(st.one_of(TEXT, st.integers()), max_size=3),
                                st.integers()),
              "response_format": RESPONSE_FORMAT,
              "reasoning_effort": st.sampled_from(["low", "high", "none", "max"]),
              "reasoning": st.fixed_dictionaries({"effort": st.sampled_from(["medium", "x"])}),
              "logprobs": st.booleans(), "top_logprobs": st.integers(0, 5),
              "tools": st.just([{"type": "function", "function": {
                  "name": "get", "parameters": {"type": "object", "properties": {}}}}])})
COMPLETION = st.fixed_dictionaries(
    {"model": st.just(MODEL), "prompt": TEXT},
    optional={"stream": st.booleans(),
              "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
              "max_tokens": st.integers(1, 9000), "seed": st.integers(-5, 5),
              "temperature": FLOAT32, "top_p": FLOAT32, "frequency_penalty": FLOAT32,
              "presence_penalty": NUMBER, "suffix": TEXT, "logprobs": st.integers(-1, 5),
              "stop": st.one_of(TEXT, st.lists(st.one_of(TEXT, st.integers()), max_size=3))})
EMBEDDING = st.fixed_dictionaries(
    {"model": st.just(MODEL),
     "input": st.one_of(TEXT, st.lists(TEXT, max_size=3), st.just([]), st.just("")),},
    optional={"dimensions": st.integers(0, 64),
              "encoding_format": st.sampled_from(["float", "BASE64", "base64", "bits", ""])})


def compare_request(go: GoDecoder, endpoint: str, body: dict[str, Any]) -> Canonical | None:
    """The worker refuses what the middleware refuses, and otherwise posts what it would
    (the owner's output ceiling aside: the worker always sends one)."""
    text = json.dumps(body)
    try:
        canonical = canonical_body(endpoint, text, MODEL, CEILINGS)
    except BodyRefused as exc:
        seen = go.bridge(endpoint, text)
        assert seen["status"] == 400 or "data: URLs" in str(exc), (str(exc), seen)
        return None
    seen = go.bridge(endpoint, text, canonical.body)
    assert seen["status"] == 200, seen["answer"]
    ours, theirs = json.loads(seen["worker"]), json.loads(seen["ollama"])
    if "max_tokens" not in body and endpoint != "/v1/embeddings":
        assert ours["options"].pop("num_predict") == CEILINGS.output_tokens
    elif endpoint != "/v1/embeddings" and body["max_tokens"] > CEILINGS.output_tokens:
        ours["options"]["num_predict"] = body["max_tokens"]
    assert ours == theirs
    return canonical


@given(CHAT)
def test_a_chat_request_becomes_the_native_request_ollama_would_make(
        go: GoDecoder, body: dict[str, Any]) -> None:
    compare_request(go, "/v1/chat/completions", body)


@given(COMPLETION)
def test_a_completion_request_becomes_the_native_request_ollama_would_make(
        go: GoDecoder, body: dict[str, Any]) -> None:
    compare_request(go, "/v1/completions", body)


@given(EMBEDDING)
def test_an_embedding_request_becomes_the_native_request_ollama_would_make(
        go: GoDecoder, body: dict[str, Any]) -> None:
    compare_request(go, "/v1/embeddings", body)


def test_every_translated_request_carries_the_owners_context_and_keep_alive(
        go: GoDecoder) -> None:
    limits = Ceilings(context=2048, keep_alive=90)
    for endpoint, body, path in (
            ("/v1/chat/completions", {"model": MODEL, "messages": [
                {"role": "user", "content": "hi"}]}, "/api/chat"),
            ("/v1/completions", {"model": MODEL, "prompt": "hi"}, "/api/generate"),
            ("/v1/embeddings", {"model": MODEL, "input": "hi"}, "/api/embed")):
        canonical = canonical_body(endpoint, json.dumps(body), MODEL, limits)
        assert canonical.path == path and canonical.keep_alive == 90
        view = go.decode(path, canonical.body)
        assert (view["num_ctx"], view["keep_alive"]) == (2048, 90), view


# -- the answer ------------------------------------------------------------------------------

CHUNK_HEAD = re.compile(r'\{"id":"(chatcmpl|cmpl)-\d+","object":"([a-z_.]+)","created":-?\d+')
STAMP = st.sampled_from(["2026-12-05T09:00:00.123456789Z", "2026-12-05T10:00:00+01:00",
                         "0001-01-01T00:00:00Z", "2026-01-02T03:04:05.999Z"])


def _f32(value: float) -> str:
    single = struct.unpack("<f", struct.pack("<f", value))[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        try:
            if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
                return go_float(float(text))
        except OverflowError:
            continue
    raise AssertionError(value)


LOGPROB = st.fixed_dictionaries(
    {"token": TEXT, "logprob": st.floats(-50, 0)},
    optional={"bytes": st.lists(st.integers(0, 255), max_size=3),
              "top_logprobs": st.lists(st.fixed_dictionaries(
                  {"token": TEXT, "logprob": st.floats(-50, 0)}), max_size=2)})
NATIVE_CALL = st.fixed_dictionaries(
    {"function": st.fixed_dictionaries({"index": st.integers(0, 3), "name": TEXT,
                                        "arguments": ARGUMENTS})},
    optional={"id": TEXT})
NATIVE_MESSAGE = st.fixed_dictionaries(
    {"role": st.just("assistant"), "content": TEXT},
    optional={"thinking": TEXT, "tool_calls": st.lists(NATIVE_CALL, min_size=1, max_size=2)})


@st.composite
def chat_lines(draw: st.DrawFn, key: str = "message") -> list[dict[str, Any]]:
    count = draw(st.integers(0, 4))
    lines = []
    for done in [False] * count + [True]:
        line: dict[str, Any] = {"model": MODEL, "created_at": draw(STAMP)}
        line[key] = draw(NATIVE_MESSAGE if key == "message" else TEXT)
        line["done"] = done
        if done and (reason := draw(st.sampled_from(["stop", "length", ""]))):
            line["done_reason"] = reason
        if draw(st.booleans()):
            line["logprobs"] = draw(st.lists(LOGPROB, min_size=1, max_size=2))
        if done:
            line.update(total_duration=draw(st.integers(1, 10**9)),
                        prompt_eval_count=draw(st.integers(0, 99)),
                        eval_count=draw(st.integers(0, 99)))
        lines.append(line)
    return lines


def sse(frames: list[Any]) -> str:
    assert isinstance(frames[-1], Done), frames
    return "".join(f"data: {f.text}\n\n" for f in frames if isinstance(f, Relay)) + \
        "data: [DONE]\n\n"


def ours(shape: AnswerShape, native: list[str], stream: bool) -> str:
    inner = NdjsonFramer() if stream else BodyFramer()
    framer = answer_framer(shape, inner, f"{shape.id_prefix}7", lambda: 1_800_000_000.0)
    frames: list[Any] = []
    for part in native:  # one network read per line: the framer must not care
        frames.extend(framer.feed(part.encode()))
    frames.extend(framer.finish())
    if stream:
        return sse(frames)
    assert isinstance(frames[-1], Done), frames
    return "".join(f.text for f in frames if isinstance(f, Relay))


def same_answer(go: GoDecoder, endpoint: str, body: dict[str, Any], native: list[str],
                stream: bool) -> None:
    text = json.dumps(body)
    canonical = canonical_body(endpoint, text, MODEL, CEILINGS)
    assert canonical.answer is not None
    theirs = go.bridge(endpoint, text, native=native)
    assert theirs["status"] == 200
    mine = ours(canonical.answer, native, stream)
    if stream:  # a chunk's id and second are Ollama's draw and clock
        assert CHUNK_HEAD.sub(r"\2", mine) == CHUNK_HEAD.sub(r"\2", theirs["answer"])
    else:
        assert re.sub(r'"id":"[a-z]+-\d+"', "", mine) == \
            re.sub(r'"id":"[a-z]+-\d+"', "", theirs["answer"])


def _lines(lines: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) + "\n" for line in lines]


@given(chat_lines(), st.booleans())
def test_a_streamed_chat_answer_is_written_back_as_ollamas_chat_writer_would(
        go: GoDecoder, lines: list[dict[str, Any]], usage: bool) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": usage}}
    same_answer(go, "/v1/chat/completions", body, _lines(lines), stream=True)


@given(chat_lines())
def test_a_whole_chat_answer_is_written_back_as_ollamas_chat_writer_would(
        go: GoDecoder, lines: list[dict[str, Any]]) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    same_answer(go, "/v1/chat/completions", body, [json.dumps(lines[-1])], stream=False)


@given(chat_lines(key="response"), st.booleans(), st.booleans())
def test_a_completion_answer_is_written_back_as_ollamas_writer_would(
        go: GoDecoder, lines: list[dict[str, Any]], stream: bool, usage: bool) -> None:
    body = {"model": MODEL, "prompt": "hi", "stream": stream,
            "stream_options": {"include_usage": usage}}
    native = _lines(lines) if stream else [json.dumps(lines[-1])]
    same_answer(go, "/v1/completions", body, native, stream=stream)


FLOATS32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(st.lists(FLOATS32, max_size=4), max_size=3),
       st.sampled_from(["", "float", "base64", "Base64"]), st.integers(0, 50))
def test_an_embedding_answer_is_written_back_as_ollamas_writer_would(
        go: GoDecoder, vectors: list[list[float]], encoding: str, tokens: int) -> None:
    written = ",".join("[" + ",".join(map(_f32, v)) + "]" for v in vectors)
    native = (f'{{"model":"{MODEL}","embeddings":[{written}],"total_duration":5,'
              f'"prompt_eval_count":{tokens}}}')
    body = {"model": MODEL, "input": ["a"], "encoding_format": encoding}
    same_answer(go, "/v1/embeddings", body, [native], stream=False)


def test_an_answer_it_cannot_read_ends_in_a_failure_not_a_crash() -> None:
    shape = AnswerShape("chat", stream=True)
    framer = answer_framer(shape, NdjsonFramer(), "chatcmpl-1", lambda: 0.0)
    frames = framer.feed(b'{"model":"m","message":"not an object","done":false}\n')
    assert frames == [Failed("Ollama sent a part of the answer this worker cannot translate")]
    assert framer.feed(b'{"model":"m","done":true}\n') == [] and framer.finish() == []
    whole = answer_framer(AnswerShape("chat"), BodyFramer(), "chatcmpl-1", lambda: 0.0)
    assert whole.feed(b'{"model":"m","message":{"role":"assistant","content":"x"},"done":true,'
                      b'"created_at":"yesterday"}') == []
    assert whole.finish() == [Failed("Ollama sent an answer this worker cannot translate")]

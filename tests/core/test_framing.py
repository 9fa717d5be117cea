"""The framers: any split of Ollama's bytes gives the same events, each as soon as it is whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.fragments import MAX_FRAGMENT_COST, fragment_cost
from ghubai_tray.core.framing import (
    BodyFramer,
    Done,
    Failed,
    Frame,
    Framer,
    NdjsonFramer,
    Relay,
    SseFramer,
    framer_for,
    status_error,
)
from tests.testbed.ollama import go_json

WORDS = st.text(max_size=40)


def feed_split(framer: Framer, data: bytes, cuts: list[int]) -> list[Frame]:
    frames: list[Frame] = []
    last = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        frames += framer.feed(data[last:cut])
        last = cut
    frames += framer.feed(data[last:])
    return frames + framer.finish()


def native_lines(tokens: list[str]) -> list[str]:
    lines = [go_json({"model": "m", "response": t, "done": False}) for t in tokens]
    return [*lines, go_json({"model": "m", "response": "", "done": True})]


@given(st.lists(WORDS, max_size=8), st.lists(st.integers(0, 2000), max_size=10))
def test_ndjson_any_split_same_events(tokens: list[str], cuts: list[int]) -> None:
    lines = native_lines(tokens)
    data = "".join(line + "\n" for line in lines).encode()
    assert feed_split(NdjsonFramer(), data, cuts) == [*map(Relay, lines), Done()]


@given(st.lists(WORDS, min_size=1, max_size=5))
def test_ndjson_each_line_is_out_the_moment_its_newline_arrives(tokens: list[str]) -> None:
    framer = NdjsonFramer()
    for line in native_lines(tokens)[:-1]:
        raw = line.encode()
        assert framer.feed(raw) == []  # no newline yet: nothing to relay
        assert framer.feed(b"\n") == [Relay(line)]


def test_ndjson_tolerates_crlf_and_blank_lines() -> None:
    data = b'{"a":1}\r\n\r\n{"done":true}\r\n'
    assert feed_split(NdjsonFramer(), data, []) == [Relay('{"a":1}'), Relay('{"done":true}'),
                                                    Done()]


def test_ndjson_last_line_without_newline_still_counts() -> None:
    assert feed_split(NdjsonFramer(), b'{"a":1}\n{"done":true}', []) == [
        Relay('{"a":1}'), Relay('{"done":true}'), Done()]


NDJSON_FAILURES = {
    "mid-stream-error": (b'{"response":"a","done":false}\n{"error":"an error was encountered '
                         b'while running the model: unexpected EOF"}\n',
                         "Ollama: an error was encountered while running the model"),
    "ends-without-done": (b'{"response":"a","done":false}\n', "ended before the answer"),
    "html-line": (b"<html>\n", "not a JSON object"),
    "not-utf8": (b'{"a":"\xff"}\n', "not UTF-8"),
    "json-array-line": (b"[1]\n", "not a JSON object"),
}


@pytest.mark.parametrize("data,reason", NDJSON_FAILURES.values(), ids=NDJSON_FAILURES.keys())
def test_ndjson_failures(data: bytes, reason: str) -> None:
    frames = feed_split(NdjsonFramer(), data, [])
    assert isinstance(frames[-1], Failed) and reason in frames[-1].reason
    assert sum(isinstance(f, Failed | Done) for f in frames) == 1


def test_ndjson_oversized_line_fails_without_holding_it() -> None:
    framer = NdjsonFramer()
    frames = framer.feed(b'{"x":"' + b"a" * (MAX_FRAGMENT_COST + 1))
    assert frames and isinstance(frames[0], Failed)
    assert "larger than the hub accepts" in frames[0].reason
    assert framer.feed(b'"}\n') == [] and framer.finish() == []


def test_ndjson_line_whose_escapes_exceed_the_limit_fails() -> None:
    line = json.dumps({"x": '"' * (MAX_FRAGMENT_COST // 3)})  # each \" costs 4 bytes
    assert len(line.encode()) < MAX_FRAGMENT_COST < fragment_cost(line)
    frames = feed_split(NdjsonFramer(), line.encode() + b"\n", [])
    assert isinstance(frames[0], Failed)


def sse_body(datas: list[str], eol: str) -> bytes:
    events = "".join(f"data: {d}{eol}{eol}" for d in datas)
    return (events + f"data: [DONE]{eol}{eol}").encode()


@given(st.lists(st.dictionaries(st.text(max_size=5).filter(lambda k: k != "error"), WORDS,
                                max_size=3), max_size=6),
       st.sampled_from(["\n", "\r\n", "\r"]), st.lists(st.integers(0, 1000), max_size=10))
def test_sse_any_split_any_line_ending_same_events(
    docs: list[dict[str, str]], eol: str, cuts: list[int]
) -> None:
    datas = [json.dumps(d) for d in docs]
    frames = feed_split(SseFramer(), sse_body(datas, eol), cuts)
    assert frames == [*map(Relay, datas), Done()]


def test_sse_event_is_out_at_its_blank_line() -> None:
    framer = SseFramer()
    assert framer.feed(b'data: {"a":1}\n') == []
    assert framer.feed(b"\n") == [Relay('{"a":1}')]


def test_sse_comments_other_fields_and_multiline_data() -> None:
    data = (b': keep-alive\nevent: message\nid: 3\ndata:{"a":\ndata: 1}\nretry: 5\n\n'
            b"data: [DONE]\n\n")
    assert feed_split(SseFramer(), data, []) == [Relay('{"a":\n1}'), Done()]


SSE_FAILURES = {
    "ends-without-done": (b'data: {"a":1}\n\n', "ended before [DONE]"),
    "openai-error-event": (b'data: {"error":{"message":"model is required","type":"api_error"}}'
                           b"\n\n", "Ollama: model is required"),
    "native-error-event": (b'data: {"error":"boom"}\n\n', "Ollama: boom"),
    "empty-stream": (b"", "ended before [DONE]"),
    "oversized": (b"data: " + b"a" * (MAX_FRAGMENT_COST + 100), "larger than the hub accepts"),
}


@pytest.mark.parametrize("data,reason", SSE_FAILURES.values(), ids=SSE_FAILURES.keys())
def test_sse_failures(data: bytes, reason: str) -> None:
    frames = feed_split(SseFramer(), data, [])
    assert isinstance(frames[-1], Failed) and reason in frames[-1].reason
    assert sum(isinstance(f, Failed | Done) for f in frames) == 1


@given(st.recursive(st.text(max_size=300), lambda k: st.lists(k, max_size=4), max_leaves=40),
       st.lists(st.integers(0, 5000), max_size=8))
def test_body_fragments_concatenate_back_and_fit(doc: Any, cuts: list[int]) -> None:
    text = json.dumps({"message": doc}, ensure_ascii=False)
    frames = feed_split(BodyFramer(), text.encode(), cuts)
    assert frames[-1] == Done()
    pieces = [f.text for f in frames[:-1] if isinstance(f, Relay)]
    assert "".join(pieces) == text
    assert all(fragment_cost(p) <= MAX_FRAGMENT_COST for p in pieces)


BODY_FAILURES = {
    "html": (b"<!DOCTYPE html><html><body>Sign in</body></html>", "not JSON"),
    "garbage": (b"\x00\xffnot json{", "not UTF-8"),
    "error-object": (b'{"error":"model \'x\' not found"}', "Ollama: model 'x' not found"),
    "empty": (b"", "not JSON"),
}


@pytest.mark.parametrize("data,reason", BODY_FAILURES.values(), ids=BODY_FAILURES.keys())
def test_body_failures(data: bytes, reason: str) -> None:
    frames = feed_split(BodyFramer(), data, [])
    assert len(frames) == 1 and isinstance(frames[0], Failed)
    assert reason in frames[0].reason


def test_body_over_its_limit_fails_once_and_holds_nothing() -> None:
    framer = BodyFramer(limit=2 * 1024 * 1024)
    too_much = b"[" + b"1," * 1024 * 1024
    assert framer.feed(too_much) == [Failed("Ollama's answer is larger than 2 MiB")]
    assert framer.feed(b"1]") == [] and framer.finish() == []


@given(st.binary(max_size=300), st.sampled_from(["text/event-stream", "application/x-ndjson",
                                                 "application/json", "text/html", None]),
       st.lists(st.integers(0, 300), max_size=6))
def test_arbitrary_bytes_end_exactly_once(data: bytes, kind: str | None, cuts: list[int]) -> None:
    frames = feed_split(framer_for(kind), data, cuts)
    ends = [f for f in frames if isinstance(f, Done | Failed)]
    assert len(ends) == 1 and frames[-1] is ends[0]
    assert all(fragment_cost(f.text) <= MAX_FRAGMENT_COST for f in frames if isinstance(f, Relay))


@pytest.mark.parametrize("kind,cls", [("text/event-stream; charset=utf-8", SseFramer),
                                      ("application/x-ndjson", NdjsonFramer),
                                      ("Application/JSON; charset=utf-8", BodyFramer),
                                      ("text/html", BodyFramer), (None, BodyFramer)])
def test_framer_for(kind: str | None, cls: type) -> None:
    assert isinstance(framer_for(kind), cls)


STATUS = {
    "native": (404, b'{"error":"model \'x\' not found"}',
               "Ollama answered 404: model 'x' not found"),
    "openai": (400, b'{"error":{"message":"bad","type":"invalid_request_error"}}',
               "Ollama answered 400: bad"),
    "busy": (503, b'{"error":"server busy, please try again.  maximum pending requests exceeded"}',
             "Ollama answered 503: server busy, please try again.  maximum pending requests "
             "exceeded"),
    "html": (502, b"<html>\nBad gateway</html>", "something other than Ollama answered HTTP "
             "502 at the Ollama URL: <html> (is it Ollama's address?)"),
    "aiohttp-404": (404, b"404: Not Found", "something other than Ollama answered HTTP 404 at "
                    "the Ollama URL: 404: Not Found (is it Ollama's address?)"),
    "empty": (500, b"", "something other than Ollama answered HTTP 500 at the Ollama URL, "
              "with no details (is it Ollama's address?)"),
}


@pytest.mark.parametrize("status,body,text", STATUS.values(), ids=STATUS.keys())
def test_status_error(status: int, body: bytes, text: str) -> None:
    assert status_error(status, body) == text


def test_the_end_carries_the_servers_own_counts_where_its_answer_states_them() -> None:
    from ghubai_tray.core.framing import BodyFramer, NdjsonFramer, SseFramer

    native = NdjsonFramer().feed(b'{"response":"a","done":false}\n{"response":"","done":true,'
                                 b'"prompt_eval_count":8,"eval_count":6}\n')
    assert [(f.prompt_tokens, f.output_tokens) for f in native if isinstance(f, Done)] == [(8, 6)]
    sse = SseFramer().feed(b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
                           b'data: {"choices":[],"usage":{"prompt_tokens":3,'
                           b'"completion_tokens":2}}\n\ndata: [DONE]\n\n')
    assert [(f.prompt_tokens, f.output_tokens) for f in sse if isinstance(f, Done)] == [(3, 2)]
    timings = SseFramer().feed(b'data: {"choices":[],"timings":{"prompt_n":4,'
                               b'"predicted_n":9}}\n\ndata: [DONE]\n\n')
    assert [(f.prompt_tokens, f.output_tokens) for f in timings
            if isinstance(f, Done)] == [(4, 9)]
    body = BodyFramer()
    body.feed(b'{"usage":{"prompt_tokens":1,"completion_tokens":true}}')
    assert [(f.prompt_tokens, f.output_tokens) for f in body.finish()
            if isinstance(f, Done)] == [(1, None)]
    silent = SseFramer().feed(b'data: {"choices":[]}\n\ndata: [DONE]\n\n')
    assert [(f.prompt_tokens, f.output_tokens) for f in silent if isinstance(f, Done)] == [
        (None, None)]
    assert Done(1, 2) == Done()  # the counts are for the ledger, never compared

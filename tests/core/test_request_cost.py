"""What a request may cost: counts, text, numbers, schemas and the context nobody named.

The trial behind each case (the real Ollama 0.17.4, CPU): a million empty
messages held 1.7 cores for 260 s; 100,000 embedding inputs took Ollama to
624 MB; a ``maxLength: 5000`` schema killed the runner; ``1e400`` left a
request without a final. The runs against the real Ollama are in
``tests/worker/test_real_ollama_cost.py``; here is the pure rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.request_body import (
    FIELDS,
    BodyRefused,
    Ceilings,
    canonical_body,
)
from ghubai_tray.core.schema_limits import MAX_REPEAT, check_format

SHARED = "llama3.2:1b"
LIMITS = Ceilings()


def forward(endpoint: str, body: dict[str, Any] | str, limits: Ceilings = LIMITS) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return json.loads(canonical_body(endpoint, text, SHARED, limits).body)


def messages(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": ""}] * n


# (endpoint, body with n of the counted thing, ceiling attribute, words of the refusal)
COUNTS = {
    "messages /api/chat": ("/api/chat", lambda n: {"model": SHARED, "messages": messages(n)},
                           "messages", "message(s)"),
    "messages /v1": ("/v1/chat/completions",
                     lambda n: {"model": SHARED, "messages": messages(n)}, "messages",
                     "message(s)"),
    "inputs /api/embed": ("/api/embed", lambda n: {"model": SHARED, "input": ["a"] * n},
                          "inputs", "embedding input(s)"),
    "inputs /v1/embeddings": ("/v1/embeddings",
                              lambda n: {"model": SHARED, "input": [[1, 2]] * n}, "inputs",
                              "embedding input(s)"),
    "tools": ("/api/chat", lambda n: {"model": SHARED, "tools": [{"type": "function"}] * n},
              "tools", "tool(s)"),
    "tools /v1": ("/v1/chat/completions",
                  lambda n: {"model": SHARED, "tools": [{"type": "function"}] * n,
                             "messages": [{"role": "user", "content": "x"}]}, "tools",
                  "tool(s)"),
    "stop in options": ("/api/generate",
                        lambda n: {"model": SHARED, "options": {"stop": ["x"] * n}}, "stops",
                        "stop string(s)"),
    "stop /v1": ("/v1/completions", lambda n: {"model": SHARED, "stop": ["x"] * n}, "stops",
                 "stop string(s)"),
    "context tokens": ("/api/generate", lambda n: {"model": SHARED, "context": [1] * n},
                       "context", "context token(s)"),
}


@pytest.mark.parametrize("endpoint,body,ceiling,words", COUNTS.values(), ids=COUNTS.keys())
def test_each_count_is_kept_at_its_ceiling_and_refused_past_it(
        endpoint: str, body: Any, ceiling: str, words: str) -> None:
    # a context that holds a thousand messages: a chat that does not fit its context has
    # a limit of its own (below)
    wide = Ceilings(context=65_536)
    limit = getattr(wide, ceiling)
    forward(endpoint, body(limit), wide)
    words = re.escape(f"has {limit + 1:,} {words}, more than this machine's limit of {limit:,}")
    with pytest.raises(BodyRefused, match=words):
        forward(endpoint, body(limit + 1), wide)


def test_the_owner_sets_each_count() -> None:
    few = Ceilings(messages=3, inputs=2)
    forward("/api/chat", {"model": SHARED, "messages": messages(3)}, few)
    with pytest.raises(BodyRefused, match="4 message"):
        forward("/api/chat", {"model": SHARED, "messages": messages(4)}, few)
    with pytest.raises(BodyRefused, match="3 embedding input"):
        forward("/api/embed", {"model": SHARED, "input": ["a", "b", "c"]}, few)


@pytest.mark.parametrize("endpoint,field", [
    ("/api/chat", "messages"), ("/v1/chat/completions", "messages"),
    ("/api/generate", "prompt"), ("/api/generate", "system"), ("/api/embed", "input"),
    ("/v1/completions", "prompt"), ("/v1/embeddings", "input"), ("/api/chat", "tools")])
def test_all_text_the_model_reads_counts_against_the_prompt_size(endpoint: str,
                                                                 field: str) -> None:
    small = Ceilings(prompt_bytes=1000)
    text = "é" * 300  # 600 bytes of UTF-8 each
    value: Any = {
        "messages": [{"role": "user", "content": text}] * 2,
        "tools": [{"type": "function", "function": {"description": text}}] * 2,
        "input": [text, text]}.get(field, text * 2)
    with pytest.raises(BodyRefused, match="text is more than 1,000 bytes"):
        forward(endpoint, {"model": SHARED, field: value}, small)
    half: Any = {"messages": value[:1], "tools": value[:1], "input": value[:1]}.get(field, text)
    forward(endpoint, {"model": SHARED, field: half}, small)


def test_images_do_not_count_as_text() -> None:
    small = Ceilings(prompt_bytes=1000)
    image = "QUJD" * 1000
    forward("/api/chat", {"model": SHARED, "messages": [
        {"role": "user", "content": "what is it?", "images": [image]}]}, small)
    forward("/v1/chat/completions", {"model": SHARED, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}]}]},
        small)


@pytest.mark.parametrize("number", ["1e400", "-1e999", "1" * 401, "-" + "9" * 400])
@pytest.mark.parametrize("field", ["keep_alive", "options", "seed"])
def test_numbers_no_float64_holds_are_refused_wherever_they_are(number: str,
                                                                field: str) -> None:
    value = {"options": f'{{"temperature": {number}}}'}.get(field, number)
    body = f'{{"model": "{SHARED}", "{field}": {value}}}'
    with pytest.raises(BodyRefused, match="out of range"):
        canonical_body("/api/generate", body, SHARED, LIMITS)


@pytest.mark.parametrize("endpoint", ["/api/chat", "/api/generate", "/api/embed",
                                      "/api/embeddings"])
@pytest.mark.parametrize("asked", [None, 0, -1])
def test_a_request_naming_no_context_gets_the_ceiling_not_ollamas_default(
        endpoint: str, asked: int | None) -> None:
    body: dict[str, Any] = {"model": SHARED}
    if asked is not None:
        body["options"] = {"num_ctx": asked}
    assert forward(endpoint, body)["options"]["num_ctx"] == LIMITS.context
    assert forward(endpoint, {"model": SHARED, "options": {"num_ctx": 2048}}
                   )["options"]["num_ctx"] == 2048


# -- structured output -------------------------------------------------------------------

SUMMARY = {"type": "object", "properties": {"summary": {"type": "string", "maxLength": 5000}}}
CRASHED_THE_RUNNER = {
    "maxLength 5000": SUMMARY,
    "minLength": {"type": "string", "minLength": 2500},
    "maxItems": {"type": "array", "items": {"type": "integer"}, "maxItems": 3000},
    "minItems": {"type": "array", "items": {"type": "integer"}, "minItems": 2001},
    "pattern": {"type": "string", "pattern": "^a{1,2500}$"},
    "pattern literal run": {"type": "string", "pattern": "^(x)abcd{0,600}$"},
    "nested in $defs": {"$defs": {"s": {"type": "string", "maxLength": 10**6}},
                        "$ref": "#/$defs/s"},
    "many bounded strings": {"type": "object", "properties": {
        f"p{i}": {"type": "string", "maxLength": 900} for i in range(20)}},
}


@pytest.mark.parametrize("schema", CRASHED_THE_RUNNER.values(), ids=CRASHED_THE_RUNNER.keys())
def test_schemas_the_runner_cannot_take_are_refused_in_format_and_response_format(
        schema: dict[str, Any]) -> None:
    with pytest.raises(BodyRefused, match="format in the request body has"
                                          "|format in the request body is a schema with"):
        forward("/api/chat", {"model": SHARED, "format": schema})
    wrapped = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with pytest.raises(BodyRefused, match="response_format in the request body"):
        forward("/v1/chat/completions", {"model": SHARED, "response_format": wrapped})
    # Go folds the wrapper's keys: a differently spelled wrapper is read all the same
    folded = {"TYPE": "json_schema", "JSON_SCHEMA": {"SCHEMA": schema}}
    with pytest.raises(BodyRefused, match="response_format in the request body"):
        forward("/v1/chat/completions", {"model": SHARED, "response_format": folded})


GOOD_SCHEMAS = {
    "json": "json",
    "bounded": {"type": "object", "properties": {
        "summary": {"type": "string", "maxLength": MAX_REPEAT},
        "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]{1,20}$"},
                 "minItems": 1, "maxItems": 10},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        "phone": {"type": "string", "pattern": "^\\d{3}-\\d{4}$"}},
        "required": ["summary"]},
    "a literal brace": {"type": "string", "pattern": "^\\{x{2}\\}[{]{3}$"},
}


@pytest.mark.parametrize("schema", GOOD_SCHEMAS.values(), ids=GOOD_SCHEMAS.keys())
def test_real_structured_output_requests_pass_unchanged(schema: Any) -> None:
    assert forward("/api/chat", {"model": SHARED, "format": schema})["format"] == schema


@pytest.mark.parametrize("schema,words", [
    ({"$ref": "https://example.com/s.json"}, "only references inside the schema"),
    ({"type": "integer", "maximum": 1e300}, "at most"),
    ({"type": "string", "maxLength": -1}, "whole number from 0"),
    ({"type": "string", "maxLength": 2.5}, "whole number from 0"),
    ({"type": "string", "maxLength": True}, "whole number from 0"),
    (json.loads('{"a":' * 40 + "{}" + "}" * 40), "nested more than"),
    ({"enum": ["x" * 1000] * 100}, "more than this worker takes"),
])
def test_other_schemas_past_the_grammars_reach_are_refused(schema: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_format(schema)


# -- whatever the body, a refusal or a body: never another error ---------------------------

_NUMBERS = st.sampled_from(["1e400", "-1e999", "1e-999", "1" * 401, "0", "-0.0", "1E+2"])
_LEAVES = st.one_of(_NUMBERS, st.just("null"), st.just("true"),
                    st.text(max_size=8).map(json.dumps))
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
    | st.dictionaries(st.sampled_from(["model", "keep_alive", "options", "num_ctx", "format",
                                       "messages", "content", "stop", "input", "context",
                                       "maxLength", "pattern", "x"]),
                      inner, max_size=4).map(
        lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"),
    max_leaves=20)


@pytest.mark.hypothesis
@given(st.sampled_from(sorted(FIELDS)), _JSON, st.booleans())
def test_any_body_is_forwarded_or_refused_with_a_reason(endpoint: str, rest: str,
                                                        named: bool) -> None:
    body = f'{{"model": "{SHARED}", "options": {rest}, "keep_alive": {rest}}}' if named \
        else rest
    try:
        out = canonical_body(endpoint, body, SHARED, LIMITS)
    except BodyRefused as exc:
        assert str(exc)
    else:
        json.loads(out.body)


# -- the work of fitting a chat into its context ------------------------------------------


def chat_of(count: int, size: int, endpoint: str = "/api/chat") -> dict[str, Any]:
    return {"model": SHARED, "messages": [
        {"role": "user", "content": "x" * size} for _ in range(count)]}


@pytest.mark.parametrize("endpoint", ["/api/chat", "/v1/chat/completions"])
@pytest.mark.parametrize("count,size", [(1000, 64), (100, 4000), (1000, 4000), (300, 100)])
def test_a_chat_ollama_would_reread_for_every_dropped_message_is_refused(
        endpoint: str, count: int, size: int) -> None:
    """Measured on the real Ollama: 1,000 messages of 64 bytes took 45 s of CPU, 100 of
    4 KB 17 s, 1,000 of 4 KB over ten minutes, none of it stopped by the client leaving."""
    with pytest.raises(BodyRefused, match="the chat is too long for this machine"):
        forward(endpoint, chat_of(count, size))


@pytest.mark.parametrize("count,size", [(40, 2000), (200, 20), (1, 30_000), (60, 500)])
def test_a_chat_that_fits_its_context_or_nearly_is_served(count: int, size: int) -> None:
    forward("/api/chat", chat_of(count, size))
    forward("/v1/chat/completions", chat_of(count, size))


def test_a_larger_context_holds_a_longer_chat() -> None:
    with pytest.raises(BodyRefused, match="too long"):
        forward("/api/chat", chat_of(300, 200))
    forward("/api/chat", chat_of(300, 200), Ceilings(context=131_072))
    forward("/api/chat", {**chat_of(300, 200), "options": {"num_ctx": 131_072}},
            Ceilings(context=131_072))


def test_images_and_tools_weigh_as_ollama_reads_them() -> None:
    image = "QUJD" * 100_000  # 400 KB of base64: not text, never tokenized
    forward("/api/chat", {"model": SHARED, "messages": [
        {"role": "user", "content": "hi", "images": [image]}] * 4})
    # tools are rendered on every pass: a chat that would fit is long with large tools
    tools = [{"type": "function", "function": {"description": "d" * 8000}}] * 4
    forward("/api/chat", chat_of(200, 10))
    with pytest.raises(BodyRefused, match="too long"):
        forward("/api/chat", {**chat_of(200, 10), "tools": tools})

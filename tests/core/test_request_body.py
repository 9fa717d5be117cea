"""The body the worker forwards, read the way Ollama reads it: by Ollama's own Go types.

Each attack of the hostile-hub trial is here, as the hub would send it, and
the forwarded body is decoded by ``tests/godecode`` (Ollama's ``api`` and
``openai`` packages). The property at the end does the same for arbitrary
bodies: whatever the hub writes, Ollama sees the shared model, by its exact
name, and every ceiling holds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.endpoints import ALLOWED_ENDPOINTS
from ghubai_tray.core.request_body import (
    FIELDS,
    OPTION_FIELDS,
    BodyRefused,
    Canonical,
    Ceilings,
    Kind,
    canonical_body,
    go_fold,
    keep_alive_seconds,
)
from tests.testbed.godecode import GoDecoder, assert_within_ceilings

pytestmark = pytest.mark.go

SHARED = "llama3.2:1b"
LIMITS = Ceilings()


@pytest.fixture(scope="module")
def go() -> Iterator[GoDecoder]:
    decoder = GoDecoder()
    yield decoder
    decoder.close()


def forwarded(endpoint: str, body: dict[str, Any] | str, model: str = SHARED) -> Canonical:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return canonical_body(endpoint, text, model, LIMITS)


# -- the trial's attacks, one by one ---------------------------------------------------

CHAT = {"model": SHARED, "messages": [{"role": "user", "content": "hi"}]}


def test_without_the_worker_the_key_trick_runs_the_unshared_model(go: GoDecoder) -> None:
    """The premise, from Ollama's own decoder: the last of two folding keys wins."""
    for key in ("Model", "MODEL", "mODEL"):
        body = json.dumps(CHAT)[:-1] + f', "{key}": "secret:latest"}}'
        assert go.decode("/api/chat", body)["model"] == "secret:latest"


@pytest.mark.parametrize("key", ["Model", "MODEL", "mOdEl"])
def test_a_second_model_key_is_refused(key: str, go: GoDecoder) -> None:
    body = json.dumps(CHAT)[:-1] + f', "{key}": "gpt-oss:120b-cloud"}}'
    assert go.decode("/api/chat", body)["model"] == "gpt-oss:120b-cloud"
    with pytest.raises(BodyRefused, match="spells"):
        forwarded("/api/chat", body)


@pytest.mark.parametrize("key", ["\u212aeep_alive", "keep_alive", "Keep_Alive"])
def test_folded_spellings_of_a_field_are_refused_and_duplicates_too(key: str) -> None:
    body = json.dumps({**CHAT, "keep_alive": "5m"})[:-1] + f', "{key}": -1}}'
    with pytest.raises(BodyRefused, match="spells|more than once"):
        forwarded("/api/chat", body)


def test_the_long_s_and_kelvin_sign_fold_like_go(go: GoDecoder) -> None:
    # "\u017ftream" is "stream" to Go; the worker refuses it rather than guess.
    assert go.decode("/api/chat", json.dumps({**CHAT, "\u017ftream": False}))["model"] == SHARED
    assert go_fold("\u017ftream") == "stream" and go_fold("\u212a") == "k"
    with pytest.raises(BodyRefused, match="spells"):
        forwarded("/api/chat", {**CHAT, "\u017ftream": False})


@pytest.mark.parametrize("endpoint", ALLOWED_ENDPOINTS)
def test_the_model_is_the_shared_models_exact_name(endpoint: str, go: GoDecoder) -> None:
    body = {"model": "LLAMA3.2:1B", "messages": [{"role": "user", "content": "x"}],
            "prompt": "x", "input": "x"}
    body = {k: v for k, v in body.items() if k in FIELDS[endpoint]}
    result = forwarded(endpoint, body)
    assert_within_ceilings(go.decode(result.path, result.body), result.path)


HARMFUL: dict[str, tuple[str, dict[str, Any]]] = {
    "keep-alive-forever": ("/api/chat", {**CHAT, "keep_alive": -1}),
    "keep-alive-long": ("/api/chat", {**CHAT, "keep_alive": "1000000h"}),
    "keep-alive-negative-duration": ("/api/generate", {"model": SHARED, "prompt": "x",
                                                       "keep_alive": "-1m"}),
    "huge-context": ("/api/chat", {**CHAT, "options": {"num_ctx": 1_048_576}}),
    "endless-output": ("/api/generate", {"model": SHARED, "prompt": "x",
                                         "options": {"num_predict": -1}}),
    "fill-context": ("/api/chat", {**CHAT, "options": {"num_predict": -2}}),
    "zero-output-means-endless": ("/api/chat", {**CHAT, "options": {"num_predict": 0}}),
    "cpu-takeover": ("/api/chat", {**CHAT, "options": {"num_gpu": 0, "num_thread": 256,
                                                       "main_gpu": 3, "use_mmap": False,
                                                       "num_batch": 65536}}),
    "template-bomb": ("/api/generate", {"model": SHARED, "prompt": "x",
                                        "template": "{{range $i := .}}" * 50, "raw": True}),
    "debug-render": ("/api/chat", {**CHAT, "_debug_render_only": True}),
    "v1-debug-render": ("/v1/chat/completions", {**CHAT, "_debug_render_only": True}),
    "v1-endless": ("/v1/chat/completions", {**CHAT, "max_tokens": -1}),
    "v1-huge-completion": ("/v1/chat/completions", {**CHAT, "max_completion_tokens": 10**9}),
    "v1-completions-huge": ("/v1/completions", {"model": SHARED, "prompt": "x",
                                                "max_tokens": 10**7}),
    "embed-context": ("/api/embed", {"model": SHARED, "input": "x",
                                     "options": {"num_ctx": 999_999, "num_gpu": 0}}),
    "image-generation-steps": ("/api/generate", {"model": SHARED, "prompt": "x",
                                                 "steps": 100000, "width": 9000}),
}


@pytest.mark.parametrize("endpoint,body", HARMFUL.values(), ids=HARMFUL.keys())
def test_harmful_parameters_never_reach_ollama(endpoint: str, body: dict[str, Any],
                                                go: GoDecoder) -> None:
    raw = go.decode(endpoint, json.dumps(body))
    result = forwarded(endpoint, body)
    assert_within_ceilings(go.decode(result.path, result.body), result.path)
    assert result.limited, "the owner is told what was limited"
    with pytest.raises(AssertionError):  # and the hub's own body would have done harm
        assert_within_ceilings(raw, endpoint)


def test_what_the_hub_asks_within_the_ceilings_is_kept(go: GoDecoder) -> None:
    body = {**CHAT, "keep_alive": "90s", "stream": False, "format": "json",
            "options": {"num_ctx": 2048, "num_predict": 100, "temperature": 0.2,
                        "stop": ["\n"], "seed": 7}}
    result = forwarded("/api/chat", body)
    sent = json.loads(result.body)
    assert sent["keep_alive"] == 90 and sent["stream"] is False and sent["format"] == "json"
    assert sent["options"] == body["options"]
    assert not result.limited
    view = go.decode("/api/chat", result.body)
    assert (view["num_ctx"], view["num_predict"], view["keep_alive"]) == (2048, 100, 90)


def test_the_smaller_of_the_two_openai_token_limits_goes_out_as_max_tokens() -> None:
    sent = json.loads(forwarded("/v1/chat/completions",
                                {**CHAT, "max_tokens": 300, "max_completion_tokens": 200}).body)
    assert sent["options"]["num_predict"] == 200  # Ollama's max_tokens, served natively
    assert json.loads(forwarded("/v1/chat/completions", CHAT).body
                      )["options"]["num_predict"] == 4096


def test_unknown_fields_are_left_out() -> None:
    sent = json.loads(forwarded("/api/chat", {**CHAT, "future_field": 1, "x": {"y": 2}}).body)
    assert "future_field" not in sent and "x" not in sent


IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(100)).decode()


def test_images_are_counted_across_messages_and_measured(go: GoDecoder) -> None:
    body: dict[str, Any] = {"model": SHARED, "messages": [
        {"role": "user", "content": "x", "images": [IMAGE] * 2}] * 2}
    assert_within_ceilings(go.decode("/api/chat", forwarded("/api/chat", body).body),
                           "/api/chat")
    body["messages"] = body["messages"] * 2
    with pytest.raises(BodyRefused, match="more than 4 image"):
        forwarded("/api/chat", body)
    big = {"model": SHARED, "prompt": "x", "images": ["A" * (14 * 1024 * 1024)]}
    with pytest.raises(BodyRefused, match="an image of the request is"):
        forwarded("/api/generate", big)


def test_a_folded_images_key_in_a_message_cannot_hide_images(go: GoDecoder) -> None:
    message = {"role": "user", "content": "x", "\u0130mages": [IMAGE] * 9}
    assert go.decode("/api/chat", json.dumps({"model": SHARED, "messages": [message]})
                     )["images"] is None  # U+0130 is not a fold of i in Go: left out by both
    message = {"role": "user", "content": "x", "IMAGES": [IMAGE] * 9}
    assert len(go.decode("/api/chat", json.dumps({"model": SHARED, "messages": [message]}))
               ["images"]) == 9
    with pytest.raises(BodyRefused, match="spells"):
        forwarded("/api/chat", {"model": SHARED, "messages": [message]})


def test_openai_images_only_from_data_urls(go: GoDecoder) -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + IMAGE}}
    body: dict[str, Any] = {"model": SHARED, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it"}, part]}]}
    result = forwarded("/v1/chat/completions", body)
    assert go.decode(result.path, result.body)["images"] == [108]
    remote = {"type": "image_url", "image_url": "http://192.0.2.1/cat.png"}
    body["messages"][0]["content"] = [remote]
    with pytest.raises(BodyRefused, match="data: URLs"):
        forwarded("/v1/chat/completions", body)
    body["messages"][0]["content"] = [part] * 5
    with pytest.raises(BodyRefused, match="more than 4 image"):
        forwarded("/v1/chat/completions", body)


REFUSED: dict[str, tuple[str, str]] = {
    "duplicate-nested": ('{"model":"llama3.2:1b","options":{"seed":1,"seed":2}}', "more than once"),
    "nan": ('{"model":"llama3.2:1b","options":{"temperature":NaN}}', "not JSON"),
    "deep": ('{"model":"llama3.2:1b","format":' + "[" * 5000 + "]" * 5000 + "}",
             "nested too deeply"),
    "stream-not-bool": ('{"model":"llama3.2:1b","stream":"yes"}', "true or false"),
    "options-not-object": ('{"model":"llama3.2:1b","options":[1]}', "must be an object"),
    "keep-alive-no-unit": ('{"model":"llama3.2:1b","keep_alive":"300"}', "not a duration"),
    "keep-alive-object": ('{"model":"llama3.2:1b","keep_alive":{}}', "number or a duration"),
    "ctx-text": ('{"model":"llama3.2:1b","options":{"num_ctx":"8192"}}', "must be a number"),
    "model-null": ('{"model":null}', "names no model"),
    "other-model": ('{"model":"mistral:7b"}', "different model"),
    "array": ("[]", "not a JSON object"),
}


@pytest.mark.parametrize("text,reason", REFUSED.values(), ids=REFUSED.keys())
def test_bodies_two_readers_could_disagree_on_are_refused(text: str, reason: str) -> None:
    with pytest.raises(BodyRefused, match=reason):
        forwarded("/api/generate", text)


@pytest.mark.parametrize("text,seconds", [("5m", 300), ("1h30m", 5400), ("1.5s", 1.5),
                                          ("0", 0), ("-1m", -60), ("250ms", 0.25),
                                          ("2µs", 2e-6), (7, 7), (-1, -1)])
def test_keep_alive_is_read_as_go_reads_durations(text: Any, seconds: float) -> None:
    assert keep_alive_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "m", "5", "5 m", "5M", "1d", "--5m", ".m"])
def test_keep_alive_texts_go_would_refuse_are_refused(text: str, go: GoDecoder) -> None:
    assert go.decode("/api/embed", json.dumps({"model": SHARED, "keep_alive": text}))["error"]
    with pytest.raises(BodyRefused):
        keep_alive_seconds(text)


def test_every_runner_option_is_dropped_and_every_decision_has_a_reason() -> None:
    for name in ("num_gpu", "num_thread", "main_gpu", "use_mlock", "use_mmap", "numa",
                 "low_vram", "num_batch"):
        assert OPTION_FIELDS[name].kind is Kind.DROP and OPTION_FIELDS[name].why
    for table in FIELDS.values():
        assert all(rule.why for rule in table.values() if rule.kind is Kind.DROP)
        assert all(name == go_fold(name) for name in table)
    assert set(FIELDS) == set(ALLOWED_ENDPOINTS)


# -- arbitrary bodies --------------------------------------------------------------------

ALL_NAMES = sorted({n for t in FIELDS.values() for n in t} | set(OPTION_FIELDS)
                   | {"messages", "images", "content", "role"})


def _spelled(name: str, variant: int) -> str:
    """A field name as a hub might spell it: exactly, in other cases, or with the runes Go
    folds onto ASCII letters (the Kelvin sign, the long s) or that it does not (dotless i)."""
    return (name, name.upper(), name.capitalize(), name.replace("k", "\u212a"),
            name.replace("s", "\u017f"), name.replace("i", "\u0131"))[variant]


KEYS = st.one_of(st.builds(_spelled, st.sampled_from(ALL_NAMES), st.integers(0, 5)),
                 st.text(max_size=8))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["5m", "-1", "-1h", "1000000h", "0", SHARED, "secret",
                                     "data:image/png;base64,AAAA", IMAGE]),
                    st.text(max_size=10))
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4)
                      | st.lists(st.tuples(KEYS, kids), max_size=5), max_leaves=20)


def _render(value: Any) -> str:
    """JSON text; lists of pairs become objects, so keys may repeat as a hub could write."""
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        return "{" + ",".join(f"{json.dumps(k)}:{_render(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render(v) for v in value) + "]"
    return json.dumps(value)


BODIES = st.tuples(st.sampled_from(["LLAMA3.2:1b", SHARED, "secret"]),
                   st.lists(st.tuples(KEYS, VALUES), max_size=8)).map(
    lambda mp: "{" + ",".join([f'"model":{json.dumps(mp[0])}']
                              + [f"{json.dumps(k)}:{_render(v)}" for k, v in mp[1]]) + "}")


@given(endpoint=st.sampled_from(ALLOWED_ENDPOINTS), body=BODIES,
       limits=st.builds(Ceilings, keep_alive=st.sampled_from([0.0, 60.0, 300.0]),
                        context=st.sampled_from([256, 8192]),
                        output_tokens=st.sampled_from([1, 4096]),
                        images=st.sampled_from([0, 1, 4]),
                        image_bytes=st.sampled_from([1, 1024])))
def test_whatever_the_hub_writes_ollama_sees_only_the_shared_model_within_the_ceilings(
        endpoint: str, body: str, limits: Ceilings, go: GoDecoder) -> None:
    try:
        result = canonical_body(endpoint, body, SHARED, limits)
    except BodyRefused as exc:
        assert str(exc)
        return
    view = go.decode(result.path, result.body)
    if view.get("error"):
        return  # Ollama answers 400 and runs nothing
    assert_within_ceilings(view, result.path, limits=limits)

"""``validate_request``: what the hub may ask, refused in plain words otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.endpoints import ALLOWED_ENDPOINTS
from ghubai_tray.core.errors import RequestRejected
from ghubai_tray.core.validation import request_id_of, validate_request

SHARED = ("llama3.2:1b", "Mistral:7b")
LIMIT = 1024


def payload(**changes: Any) -> list[Any]:
    base: dict[str, Any] = {"requestId": "r1", "model": "llama3.2:1b",
                            "endpointUri": "/api/chat",
                            "requestBody": json.dumps({"model": "llama3.2:1b", "stream": True})}
    base.update(changes)
    return [{k: v for k, v in base.items() if v is not ...}]


def test_a_good_request_passes_with_our_own_constants() -> None:
    req = validate_request(payload(model="mistral:7B", requestBody='{"model":"MISTRAL:7b"}'),
                           SHARED, LIMIT)
    # The body forwarded is the worker's own: the model spelled as shared, the ceilings set.
    assert (req.request_id, req.model, req.endpoint) == ("r1", "Mistral:7b", "/api/chat")
    assert json.loads(req.body) == {"model": "Mistral:7b", "keep_alive": 300,
                                    "options": {"num_ctx": 8192, "num_predict": 4096}}
    assert req.endpoint is ALLOWED_ENDPOINTS[1]


def test_property_names_match_case_insensitively() -> None:
    args = [{"RequestId": "r1", "MODEL": "llama3.2:1b", "endpointuri": "/v1/embeddings",
             "requestbody": '{"model":"llama3.2:1b","input":"x"}'}]
    assert validate_request(args, SHARED, LIMIT).endpoint == "/v1/embeddings"


REFUSALS: dict[str, tuple[Any, str | None, str]] = {
    "not-a-list": ({"requestId": "r1"}, None, "cannot read"),
    "two-arguments": ([{"requestId": "r1"}, {}], "r1", "cannot read"),
    "argument-not-object": (["r1"], None, "cannot read"),
    "no-id": (payload(requestId=...), None, "no usable request id"),
    "empty-id": (payload(requestId=""), None, "no usable request id"),
    "numeric-id": (payload(requestId=7), None, "no usable request id"),
    "huge-id": (payload(requestId="x" * 129), None, "no usable request id"),
    "control-char-id": (payload(requestId="a\nb"), None, "no usable request id"),
    "management-endpoint": (payload(endpointUri="/api/pull"), "r1", "not an inference endpoint"),
    "dot-segments": (payload(endpointUri="/api/chat/../pull"), "r1", "dot segments"),
    "absolute-url": (payload(endpointUri="http://evil/api/chat"), "r1", "scheme"),
    "no-endpoint": (payload(endpointUri=...), "r1", "not a text"),
    "unshared-model": (payload(model="phi3"), "r1", "not shared"),
    "no-model": (payload(model=...), "r1", "names no model"),
    "no-body": (payload(requestBody=...), "r1", "no body"),
    "body-not-json": (payload(requestBody="{nope"), "r1", "not JSON"),
    "body-an-array": (payload(requestBody="[]"), "r1", "not a JSON object"),
    "body-other-model": (payload(requestBody='{"model":"phi3"}'), "r1", "different model"),
    "body-without-model": (payload(requestBody='{"prompt":"x"}'), "r1", "names no model"),
    "body-second-model-key": (payload(requestBody='{"model":"llama3.2:1b","Model":"phi3"}'),
                              "r1", "spells 'Model' differently"),
    "body-too-large": (payload(requestBody=json.dumps({"model": "llama3.2:1b",
                                                       "prompt": "é" * 600})),
                       "r1", "more than this worker's limit"),
    "lone-surrogate": (payload(requestBody='{"model":"llama3.2:1b","p":"\ud800"}'),
                       "r1", "not valid text"),
}


@pytest.mark.parametrize("args,request_id,reason", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals(args: Any, request_id: str | None, reason: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        validate_request(args, SHARED, LIMIT)
    assert caught.value.request_id == request_id
    assert reason in caught.value.reason


JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=12), kids, max_size=4), max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={
    "requestId": JUNK | st.text(max_size=140), "model": JUNK | st.sampled_from(SHARED),
    "endpointUri": JUNK | st.sampled_from(ALLOWED_ENDPOINTS) | st.text(max_size=70),
    "requestBody": JUNK | st.text(max_size=50) | st.builds(
        lambda m, extra: json.dumps({"model": m, **extra}), st.sampled_from(SHARED + ("x",)),
        st.dictionaries(st.text(max_size=5), JUNK, max_size=3))})


@given(st.one_of(JUNK, st.lists(FIELDS, min_size=0, max_size=2)))
def test_anything_is_accepted_safely_or_refused(args: Any) -> None:
    try:
        req = validate_request(args, SHARED, LIMIT)
    except RequestRejected as exc:
        assert exc.reason
        assert exc.request_id is None or exc.request_id == request_id_of(args)
        return
    assert req.endpoint in ALLOWED_ENDPOINTS
    assert req.model in SHARED
    assert json.loads(req.body)["model"] == req.model

"""``parse_tags``: the seed's three shapes plus cloud models; everything else is an error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.errors import TagsParseError
from ghubai_tray.core.tags import LocalModel, parse_tags
from tests.testbed.ollama import ModelInfo, go_time

REAL = json.dumps({"models": [ModelInfo("llama3.2:1b").tag(go_time()),
                              ModelInfo("gpt-oss:120b-cloud", remote_model="gpt-oss:120b")
                              .tag(go_time())]})

ACCEPTED = {
    "real-ollama": (REAL, [LocalModel("llama3.2:1b"), LocalModel("gpt-oss:120b-cloud", True)]),
    "seed-format-1": ('{"models":[{"name":"llama2"},{"model":"mistral"}]}',
                      [LocalModel("llama2"), LocalModel("mistral")]),
    "seed-format-2": ('[{"name":"llama2"},"mistral"]',
                      [LocalModel("llama2"), LocalModel("mistral")]),
    "seed-format-3": ('["llama2","mistral"]', [LocalModel("llama2"), LocalModel("mistral")]),
    "remote-only-entry": ('[{"remote_model":"kimi-k2:1t"}]', [LocalModel("kimi-k2:1t", True)]),
    "empty-object": ('{"models":[]}', []),
    "go-nil-slice": ('{"models":null}', []),
    "trimmed-and-deduplicated": ('["  Llama2 ", "llama2", "MISTRAL", "mistral", "phi"]',
                                 [LocalModel("Llama2"), LocalModel("MISTRAL"), LocalModel("phi")]),
    "nameless-entries-skipped": ('[{"size":1},{"name":"  "},"", "a"]', [LocalModel("a")]),
    "name-wins-over-model": ('[{"name":"x","model":"y"}]', [LocalModel("x")]),
}

REFUSED = {
    "html": "<!DOCTYPE html><html><body>Sign in</body></html>",
    "garbage": b"\x00\xffnot json{",
    "empty": "",
    "number": "42",
    "object-without-models": '{"data":[]}',
    "models-not-a-list": '{"models":{"name":"x"}}',
    "entry-a-number": "[1]",
    "entry-a-list": '[["x"]]',
}


@pytest.mark.parametrize("body,expected", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_shapes(body: str, expected: list[LocalModel]) -> None:
    assert list(parse_tags(body)) == expected


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_refused_shapes(body: str | bytes) -> None:
    with pytest.raises(TagsParseError):
        parse_tags(body)


NAMES = st.text(min_size=1, max_size=30)


@given(st.lists(NAMES, max_size=20), st.sampled_from(["object", "bare", "strings"]))
def test_any_names_any_shape(names: list[str], shape: str) -> None:
    if shape == "object":
        body = json.dumps({"models": [{"name": n, "model": n} for n in names]})
    elif shape == "bare":
        body = json.dumps([{"name": n} for n in names])
    else:
        body = json.dumps(names)
    result = [m.name for m in parse_tags(body)]
    folded = [n.casefold() for n in result]
    assert len(folded) == len(set(folded)), "deduplicated case-insensitively"
    assert all(n == n.strip() and n for n in result), "trimmed, never empty"
    expected = [n.strip() for n in names if n.strip() and n.strip().isprintable()]
    first: dict[str, str] = {}
    for n in expected:
        first.setdefault(n.casefold(), n)
    assert result == list(first.values()), "order of first appearance kept"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_fail_cleanly(body: bytes) -> None:
    try:
        models = parse_tags(body)
    except TagsParseError:
        return
    assert all(isinstance(m, LocalModel) for m in models)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.sampled_from(["models", "name", "model", "remote_model",
                                                       "x"]), kids, max_size=3),
                    max_leaves=15))
def test_arbitrary_json_parse_or_fail_cleanly(doc: object) -> None:
    try:
        parse_tags(json.dumps(doc))
    except TagsParseError as exc:
        assert str(exc).startswith("Ollama's model list") or "entry" in str(exc)


def test_lm_studios_lists_say_what_is_in_memory_and_which_instances() -> None:
    from ghubai_tray.core.tags import instances_of, lmstudio_instances, parse_model_list

    v0 = json.dumps({"object": "list", "data": [
        {"id": "a", "type": "llm", "state": "loaded"},
        {"id": "b", "type": "vlm", "state": "not-loaded"},
        {"id": "e", "type": "embeddings", "state": "loaded"},
        {"id": "c"}]})
    assert [(m.name, m.loaded) for m in parse_model_list(v0)] == [
        ("a", True), ("b", False), ("c", None)]
    v1 = json.dumps({"models": [
        {"key": "pub/A", "loaded_instances": [{"id": "pub/A"}, {"id": "pub/A:2"}]},
        {"key": "b", "loaded_instances": []}, {"key": 3}, "junk",
        {"key": "c", "loaded_instances": [{"id": 5}, {"id": "c"}]}]})
    loaded = lmstudio_instances(v1)
    assert loaded == {"pub/a": ["pub/A", "pub/A:2"], "c": ["c"]}
    assert instances_of("PUB/A", loaded) == ["pub/A", "pub/A:2"]
    assert instances_of("b", loaded) == []
    assert instances_of("pub/A:2", {"x": ["pub/A:2"]}) == ["pub/A:2"]
    for junk in ("not json", "[]", '{"models": {}}', '{"data": []}'):
        assert lmstudio_instances(junk) is None

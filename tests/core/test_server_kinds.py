"""Telling local model servers apart by what only one kind answers (core/server_kinds.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.server_kinds import (
    PROBES,
    ServerIdentity,
    ServerKind,
    identify,
)
from tests.testbed.model_servers import KOBOLD_VERSION, LLAMA_BUILD, ROUTES, Kind

OLLAMA = {"/api/version": {"version": "0.12.6"}, "/v1/models": {"object": "list", "data": [
    {"id": "llama3.2:1b", "object": "model", "created": 1, "owned_by": "library"}]}}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


@pytest.mark.parametrize("answers,expected", [
    (OLLAMA, ServerIdentity(ServerKind.OLLAMA, "0.12.6")),
    (ROUTES[Kind.KOBOLDCPP], ServerIdentity(ServerKind.KOBOLDCPP, KOBOLD_VERSION)),
    (ROUTES[Kind.LMSTUDIO], ServerIdentity(ServerKind.LMSTUDIO)),
    (ROUTES[Kind.LLAMACPP], ServerIdentity(ServerKind.LLAMACPP, LLAMA_BUILD)),
    ({"/v1/models": {"object": "list", "data": []}}, ServerIdentity(ServerKind.OPENAI)),
    ({}, None),
    ({"/api/version": {"version": "0.12.6", "extra": 1}}, None),
    ({"/api/version": {"version": ""}}, None),
    ({"/props": {"total_slots": 1}}, None),
    ({"/api/extra/version": {"result": "ok"}}, None),
])
def test_each_kind_is_told_by_what_only_it_answers(answers: dict[str, Any],
                                                   expected: ServerIdentity | None) -> None:
    assert identify(answers) == expected


def kind_of(answers: dict[str, Any]) -> ServerKind | None:
    found = identify(answers)
    return found.kind if found else None


def test_koboldcpp_is_koboldcpp_though_it_answers_as_ollama_and_llama_cpp_too() -> None:
    answers = ROUTES[Kind.KOBOLDCPP]
    assert kind_of({"/api/version": answers["/api/version"]}) is ServerKind.OLLAMA
    assert kind_of({"/props": answers["/props"]}) is ServerKind.LLAMACPP
    assert kind_of(answers) is ServerKind.KOBOLDCPP
    assert str(identify(answers)) == f"KoboldCpp {KOBOLD_VERSION}"


def test_names_and_versions_read_as_the_owner_sees_them() -> None:
    assert str(ServerIdentity(ServerKind.OLLAMA, "0.12.6")) == "Ollama 0.12.6"
    assert str(ServerIdentity(ServerKind.LMSTUDIO)) == "LM Studio"
    assert str(ServerIdentity(ServerKind.OPENAI)) == "an OpenAI-compatible server"
    odd = identify({"/api/extra/version": {"result": "KoboldCpp", "version": "1.0\n\x1b[31mred"
                                           + "9" * 99}})
    assert odd is not None and odd.version is not None
    assert odd.version.isprintable() and len(odd.version) <= 40 and "\x1b" not in odd.version


@given(st.dictionaries(st.sampled_from(PROBES), JSON))
def test_any_answers_identify_something_or_nothing_and_never_raise(
        answers: dict[str, Any]) -> None:
    found = identify(answers)
    if found is not None:
        assert found.kind in ServerKind
        assert found.version is None or (found.version.isprintable()
                                         and len(found.version) <= 40)


def test_what_each_kind_cannot_do_is_said() -> None:
    from ghubai_tray.core.server_kinds import ServerKind, not_available

    assert not_available(ServerKind.OLLAMA) is None
    assert not_available(ServerKind.LLAMACPP) == ("freeing memory on pause is not available "
                                                  "with it")
    assert not_available(ServerKind.LMSTUDIO) == "owner first is not available with it"
    for kind in (ServerKind.KOBOLDCPP, ServerKind.OPENAI):
        assert not_available(kind) == ("owner first and freeing memory on pause are not "
                                       "available with it")


def test_llama_servers_working_slots_are_counted_and_anything_else_is_no_answer() -> None:
    import json

    from ghubai_tray.core.local_use import busy_slots, others_working

    slots = [{"id": 0, "is_processing": True}, {"id": 1, "is_processing": False},
             {"id": 2, "is_processing": "yes"}]
    assert busy_slots(json.dumps(slots).encode()) == 1
    for junk in (b"{}", b"not json", b"[1, 2]", b'{"error": "disabled"}', b"[[[[" * 300):
        assert busy_slots(junk) is None
    assert busy_slots(b"[]") == 0
    assert others_working(2, 1) and not others_working(1, 1) and not others_working(None, 0)

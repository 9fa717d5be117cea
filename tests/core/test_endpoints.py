"""The inference allowlist: exact paths only, every trick refused (hypothesis-driven)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ghubai_tray.core.endpoints import ALLOWED_ENDPOINTS, EndpointRefused, allowed_endpoint
from tests.adversarial import PATH_PIECES


@pytest.mark.parametrize("path", ALLOWED_ENDPOINTS)
def test_every_allowlisted_path_is_accepted_as_our_constant(path: str) -> None:
    got = allowed_endpoint("".join(path))  # a distinct string object with equal text
    assert got == path and got is ALLOWED_ENDPOINTS[ALLOWED_ENDPOINTS.index(path)]


@pytest.mark.parametrize(("raw", "why"), [
    ("/api/pull", "not an inference endpoint"),
    ("/api/delete", "not an inference endpoint"),
    ("/api/blobs/sha256:abc", "scheme or port"),
    ("/api/chat/../pull", "dot segments"),
    ("/api/./chat", "dot segments"),
    ("/api/chat/", "not an inference endpoint"),
    ("/API/CHAT", "not an inference endpoint"),
    ("//evil.example/api/chat", "not a plain absolute path"),
    ("api/chat", "not a plain absolute path"),
    ("http://127.0.0.1:11434/api/chat", "scheme or port"),
    ("/api/chat?x=1", "a query"),
    ("/api/chat#frag", "a fragment"),
    ("/api/%70ull", "percent-encoding"),
    ("/api/chat%2F..%2Fpull", "percent-encoding"),
    ("/api\\chat", "a backslash"),
    ("/api/chat ", "characters no endpoint has"),
    ("/api/chat\n", "characters no endpoint has"),
    ("/api/chat\x00", "characters no endpoint has"),
    ("/api/ch\u0430t", "characters no endpoint has"),  # Cyrillic a
    ("/api/chat\uff0fpull", "characters no endpoint has"),  # fullwidth solidus
    ("/user@host/api/chat", "a user name"),
    ("", "not a plain absolute path"),
    ("/" * 200, "too long"),
], ids=lambda v: repr(v)[:40])
def test_tricks_are_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(EndpointRefused, match=why.replace("?", r"\?")):
        allowed_endpoint(raw)


@pytest.mark.parametrize("raw", [None, 3, ["/api/chat"], {"path": "/api/chat"}, b"/api/chat"])
def test_non_text_is_refused(raw: object) -> None:
    with pytest.raises(EndpointRefused, match="not a text"):
        allowed_endpoint(raw)


@given(st.text())
@example("/api/chat")
def test_any_text_is_either_refused_or_exactly_allowlisted(raw: str) -> None:
    try:
        got = allowed_endpoint(raw)
    except EndpointRefused as exc:
        assert str(exc)
    else:
        assert raw in ALLOWED_ENDPOINTS and got == raw


_PIECES = st.sampled_from(PATH_PIECES)


@given(st.sampled_from(ALLOWED_ENDPOINTS), st.lists(_PIECES, min_size=1, max_size=6),
       st.booleans())
def test_allowlisted_path_with_anything_added_is_refused(base: str, extra: list[str],
                                                        before: bool) -> None:
    tail = "".join(extra)
    raw = tail + base if before else base + tail
    if raw in ALLOWED_ENDPOINTS:  # e.g. "/api/embed" + "dings"-like coincidences
        return
    with pytest.raises(EndpointRefused):
        allowed_endpoint(raw)

"""Fragment splitting: lossless, and never over the hub's limit as the worker encodes it."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysignalr.messages import InvocationMessage

from ghubai_tray.adapters.hub import encode
from ghubai_tray.core.fragments import (
    MAX_FRAGMENT_COST,
    MESSAGE_LIMIT,
    escaped_cost,
    fragment_cost,
    split_fragment,
)
from ghubai_tray.core.validation import MAX_REQUEST_ID

TEXT = st.text(alphabet=st.characters(codec="utf-8"))  # what a strict UTF-8 decode can give


def encoded_size(text: str) -> int:
    """Size of the JSON string body as the worker's encoder (orjson) writes it."""
    return len(orjson.dumps(text)) - 2


@given(st.characters(codec="utf-8"))
def test_the_cost_of_a_character_is_exactly_what_the_encoder_writes(char: str) -> None:
    assert escaped_cost(char) == encoded_size(char)


@given(TEXT)
def test_fragment_cost_is_exactly_the_encoded_size(text: str) -> None:
    assert fragment_cost(text) == sum(escaped_cost(c) for c in text) == encoded_size(text)


@given(TEXT, st.integers(min_value=12, max_value=300))
def test_split_is_lossless_and_within_the_limit(text: str, limit: int) -> None:
    pieces = split_fragment(text, limit)
    assert "".join(pieces) == text
    assert all(pieces)
    for piece in pieces:
        assert fragment_cost(piece) <= limit
        assert encoded_size(piece) <= limit


@pytest.mark.parametrize(("text", "count"), [
    ("", 0), ("a" * MAX_FRAGMENT_COST, 1), ("a" * (MAX_FRAGMENT_COST + 1), 2),
    ('"' * MAX_FRAGMENT_COST, 2), ("\x01" * 10_000, 2), ("\U0001f600" * 5000, 1),
    ("\U0001f600" * 8000, 2),
], ids=["empty", "exactly-the-limit", "one-over", "quotes-double", "controls", "emoji",
        "more-emoji"])
def test_split_counts(text: str, count: int) -> None:
    assert len(split_fragment(text)) == count


def test_a_12_kb_tool_call_event_goes_out_whole() -> None:
    event = json.dumps({"message": {"tool_calls": [{"function": {"name": "write_file",
                        "arguments": {"content": "line\n" * 2400}}}]}})
    assert len(event) > 12_000 and split_fragment(event) == [event]


@settings(max_examples=50)  # each example splits ~100 kB; the kinds of text are few
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
               min_size=1, max_size=MAX_REQUEST_ID).filter(str.isprintable),
       st.sampled_from(["a", "\u00e9\"\n", "\x01", "\U0001f600", "\\"]))
def test_every_fragment_fits_the_hub_limit_in_its_exact_message(request_id: str,
                                                                 unit: str) -> None:
    body = unit * (3 * MESSAGE_LIMIT // len(unit))
    for piece in split_fragment(body):
        message = InvocationMessage(invocation_id=None, target="StreamInferenceResponse",
                                    arguments=[{"requestId": request_id, "tokenFragment": piece,
                                                "isFinal": False}])
        assert len(encode(message).encode()) <= MESSAGE_LIMIT


def test_limit_too_small_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        split_fragment("abc", 5)

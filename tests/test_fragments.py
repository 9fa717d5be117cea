"""Fragment splitting: lossless, never over the limit with any JSON encoder (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.fragments import (
    MAX_FRAGMENT_COST,
    escaped_cost,
    fragment_cost,
    split_fragment,
)


def encoded_sizes(text: str) -> tuple[int, int]:
    """Size of the JSON string body under both common encoder settings."""
    return (len(json.dumps(text, ensure_ascii=True).encode()) - 2,
            len(json.dumps(text, ensure_ascii=False).encode()) - 2)


@given(st.characters(codec="utf-8"))
def test_cost_bounds_every_encoder(char: str) -> None:
    assert max(encoded_sizes(char)) <= escaped_cost(char)


@given(st.text())
def test_fragment_cost_is_the_sum_of_character_costs(text: str) -> None:
    assert fragment_cost(text) == sum(escaped_cost(c) for c in text)


@given(st.text(), st.integers(min_value=12, max_value=300))
def test_split_is_lossless_and_within_the_limit(text: str, limit: int) -> None:
    pieces = split_fragment(text, limit)
    assert "".join(pieces) == text
    assert all(pieces)
    for piece in pieces:
        assert fragment_cost(piece) <= limit
        assert max(encoded_sizes(piece)) <= limit


@pytest.mark.parametrize(("text", "count"), [
    ("", 0), ("a" * MAX_FRAGMENT_COST, 1), ("a" * (MAX_FRAGMENT_COST + 1), 2),
    ('"' * MAX_FRAGMENT_COST, 2), ("\x01" * 10_000, 4), ("\U0001f600" * 5000, 4),
], ids=["empty", "exactly-16KiB", "one-over", "quotes-double", "controls", "emoji"])
def test_split_counts(text: str, count: int) -> None:
    assert len(split_fragment(text)) == count


def test_a_split_body_fits_the_hub_limit_with_its_envelope() -> None:
    body = json.dumps({"choices": [{"message": {"content": "\u00e9\"\n" * 40_000}}]})
    for piece in split_fragment(body):
        message = json.dumps({"type": 1, "target": "StreamInferenceResponse", "arguments": [
            {"requestId": "r" * 128, "tokenFragment": piece, "isFinal": False}]})
        assert len(message.encode()) + 1 <= 32 * 1024


def test_limit_too_small_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        split_fragment("abc", 5)

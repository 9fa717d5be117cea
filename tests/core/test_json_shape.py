"""The shape scan counts exactly what a parse would build, and stops at the bound."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.json_shape import ShapeLimits, ShapeRefused, check_shape

WIDE = ShapeLimits(values=10**9, depth=10**6)

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # strings full of brackets, commas, quotes and backslashes
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(), inner, max_size=6),
    max_leaves=40)


def built(value: Any, depth: int = 0) -> tuple[int, int, int]:
    """(values built, empty containers, depth) of a parsed value, counted the slow way."""
    if isinstance(value, dict | list):
        children = list(value.values()) if isinstance(value, dict) else value
        counts = [built(child, depth + 1) for child in children]
        return (1 + sum(c[0] for c in counts), int(not children) + sum(c[1] for c in counts),
                max([depth + 1, *(c[2] for c in counts)]))
    return 1, 0, depth


@pytest.mark.hypothesis
@given(values, st.sampled_from([None, 1, 4]), st.booleans())
def test_the_scan_counts_what_the_parser_builds(value: Any, indent: int | None,
                                                ascii_only: bool) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    count, empty, depth = built(json.loads(text))
    assert check_shape(text, WIDE, "it") == ShapeLimits(count + empty, depth)
    # one less than either figure is refused, by name
    if count + empty > 1:
        with pytest.raises(ShapeRefused, match="holds more than"):
            check_shape(text, ShapeLimits(count + empty - 1, depth), "it")
    if depth:
        with pytest.raises(ShapeRefused, match="nested too deeply"):
            check_shape(text, ShapeLimits(count + empty, depth - 1), "it")


@pytest.mark.parametrize("text", ['"\\"\\"\\"' * 100_000, '["abc', '{"a": "\\', '"'])
def test_an_unterminated_string_ends_the_scan_at_once(text: str) -> None:
    check_shape(text, ShapeLimits(10, 10), "it")


def test_a_hostile_shape_is_refused_whatever_its_size() -> None:
    """29 MB of empty objects (1.3 GB of dicts when parsed) are refused, as 1 MB is."""
    limits = ShapeLimits(values=262_144, depth=64)
    for copies in (300_000, 10_000_000):
        with pytest.raises(ShapeRefused, match="more than 262,144 values"):
            check_shape("[" + "{}," * copies + "{}]", limits, "the request body")


def test_deep_nesting_is_refused_before_the_parser_recurses() -> None:
    with pytest.raises(ShapeRefused, match=r"nested too deeply \(more than 64 levels\)"):
        check_shape("[" * 100_000, ShapeLimits(10**6, 64), "the request body")

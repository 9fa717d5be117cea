"""Structured-output schemas that Ollama's runner can turn into a grammar without dying.

Ollama turns a request's ``format`` (and ``/v1``'s ``response_format``) into a
llama.cpp grammar. Each bounded repetition in the schema (``maxLength: 5000``,
``maxItems``, a pattern's ``{n,m}``) becomes a repetition in the grammar, and
llama.cpp's grammar parser refuses one whose rule count times its bound
reaches 2000 ("number of repetitions exceeds sane defaults"). Ollama 0.17's
runner then carries on with no grammar and dies with SIGSEGV, taking every
request on that model with it, the owner's own included. An innocent
``{"summary": {"type": "string", "maxLength": 5000}}`` does it.

So the worker reads every schema before Ollama does and refuses, with the
reason, one that holds:

- a repetition bound over :data:`MAX_REPEAT` (half of llama.cpp's threshold,
  so that a repeated rule of two elements still fits), or a bound that is not
  a whole number from 0;
- a pattern quantifier whose bound times the literal it repeats reaches
  llama.cpp's threshold;
- more than :data:`MAX_TOTAL_REPEAT` of repetition in all (each bound becomes
  as many grammar rules, which the runner builds and walks per token);
- a ``$ref`` that is not local (``#/...``), a bound on a number no float64 holds
  exactly, or a schema bigger or deeper than any real one.

Keywords are found anywhere in the value, not only where a validator would
look: the wrapper around a ``/v1`` schema is read by Go's decoder, which
folds key case, so a check by exact path could be walked around.

Pure: a value in, :class:`ValueError` with the reason (completing "the field
...") or nothing out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

LLAMA_CPP_REPETITION_THRESHOLD = 2000
MAX_REPEAT = 1000
MAX_TOTAL_REPEAT = 16_384
MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_EXACT = 2**53  # integer bounds past this are not exact in a float64
REPEAT_KEYWORDS = frozenset({
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
    "minContains", "maxContains"})
RANGE_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_CLASS_ESCAPES = frozenset("dDwWsSbB")
_SPECIAL = frozenset("()[]{}|*+?^$.")


def check_format(value: Any) -> None:
    """Refuse a ``format`` / ``response_format`` value the runner's grammar cannot take."""
    if isinstance(value, str) or value is None:
        return  # "json", or a value Ollama refuses by itself
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        raise ValueError("is not a schema this worker can read") from None
    if size > MAX_SCHEMA_BYTES:
        raise ValueError(f"is a schema of {size:,} bytes, more than this worker takes "
                         f"({MAX_SCHEMA_BYTES:,})")
    total = 0
    for key, item, depth in _walk(value, 0):
        if depth > MAX_SCHEMA_DEPTH:
            raise ValueError(f"is a schema nested more than {MAX_SCHEMA_DEPTH} levels deep")
        if key in REPEAT_KEYWORDS:
            total += _repeat(key, item)
        elif key == "pattern" and isinstance(item, str):
            total += _pattern_repeats(item)
        elif key in RANGE_KEYWORDS:
            _range(key, item)
        elif key == "$ref" and isinstance(item, str) and not item.startswith("#"):
            raise ValueError(f"has a $ref to {item[:60]!r}: only references inside the "
                             "schema (#/...) are taken")
        if total > MAX_TOTAL_REPEAT:
            raise ValueError(f"is a schema with more than {MAX_TOTAL_REPEAT:,} repetitions "
                             "in all, more than the model's grammar can take")


def _walk(value: Any, depth: int) -> Iterator[tuple[str | None, Any, int]]:
    """Every (key, value, depth) in ``value``; list items come with no key."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item, depth + 1
            yield from _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield None, item, depth + 1
            yield from _walk(item, depth + 1)


def _repeat(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) \
            or value < 0:
        raise ValueError(f"has {key} {json.dumps(value)[:24]}: it must be a whole number "
                         "from 0")
    if value > MAX_REPEAT:
        raise ValueError(f"has {key} {int(value):,}: the model's grammar takes at most "
                         f"{MAX_REPEAT:,}")
    return int(value)


def _range(key: str, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and abs(value) > MAX_EXACT:
        raise ValueError(f"has {key} {json.dumps(value)[:24]}: at most {MAX_EXACT:,} either "
                         "way")


def _pattern_repeats(pattern: str) -> int:
    """The repetition a pattern's quantifiers ask for; ValueError past the grammar's limits.

    A quantifier repeats what precedes it: a group, a class or an escape count
    as one rule; a run of literal characters may become one literal of that
    many elements, so its length multiplies the bound.
    """
    total, run, i, in_class = 0, 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1: i + 2]
            run = 1 if escaped in _CLASS_ESCAPES else run + 1
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            i += 1
            continue
        if char == "[":
            in_class, run = True, 1
        elif char == "{":
            end = pattern.find("}", i)
            bound = _quantifier(pattern[i + 1: end]) if end > 0 else None
            if bound is not None:
                if bound > MAX_REPEAT or max(run, 1) * bound >= LLAMA_CPP_REPETITION_THRESHOLD:
                    raise ValueError(f"has the pattern quantifier {pattern[i:end + 1][:24]}: "
                                     "the model's grammar cannot take that many repetitions")
                total += bound
                i, run = end + 1, 0
                continue
            run += 1
        elif char in _SPECIAL:
            run = 1 if char in ").]" else 0
        else:
            run += 1
        i += 1
    return total


def _quantifier(text: str) -> int | None:
    """The largest bound of ``{n}``, ``{n,}`` or ``{n,m}`` (its inside), else None."""
    low, comma, high = text.partition(",")
    if not _digits(low) or (high and not _digits(high)):
        return None
    return max(_number(low), _number(high) if high else 0)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _number(text: str) -> int:
    return int(text) if len(text) <= 9 else 10**9  # past any bound, without a huge int

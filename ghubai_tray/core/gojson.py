"""JSON written the way Go's ``encoding/json`` writes it, so a translated answer is
byte for byte what Ollama's own OpenAI layer would have sent.

Three things set Go's output apart from Python's ``json.dumps``:

- strings: ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026``,
  and U+2028 and U+2029 are escaped (``json.Marshal`` is made safe to embed in
  HTML); the other escapes (``\\n``, ``\\b``, ``\\u001f``...) are the same since Go 1.22;
- floats: the shortest digits that read back as the same float64, in plain
  notation between 1e-6 and 1e21 and ``1e+21`` / ``1e-7`` style outside it
  (``1.0`` is ``1``);
- numbers Ollama wrote that the worker passes on unchanged keep their text
  (:class:`Raw`): Go writes a float32 embedding with float32 digits, and
  reading them as Python floats and writing them again would not.

Objects keep the order of the dict given: the callers build them in the order of
the Go struct's fields. Everything here is pure.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                            "\u2028": "\\u2028", "\u2029": "\\u2029"})


class Raw(str):
    """A number's JSON text, written back exactly as it was read."""

    __slots__ = ()


def go_string(text: str) -> str:
    """A JSON string as ``json.Marshal`` writes it (lone surrogates become U+FFFD)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    encoded = json.dumps(text, ensure_ascii=False)
    return encoded.translate(_HTML_SAFE)


def go_float(value: float) -> str:
    """A float64 as ``json.Marshal`` writes it."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} has no JSON form")
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(repr(value)).normalize(), "f")
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    shown = "".join(map(str, digits))
    power = exponent + len(shown) - 1
    mantissa = shown[0] + ("." + shown[1:] if len(shown) > 1 else "")
    # Go writes at least two exponent digits, then shortens "e-07" to "e-7".
    if -10 < power < 0:
        return f"{'-' if sign else ''}{mantissa}e-{-power}"
    return f"{'-' if sign else ''}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"


def go_dumps(value: Any) -> str:
    """``value`` as compact JSON, written as Go writes it (see the module's notes)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, Raw):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(go_string(value))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_float(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(f"{',' if i else ''}{go_string(key)}:")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} has no JSON form")


def go_sorted(value: Any) -> Any:
    """``value`` as Go holds JSON read into ``any``: objects become maps, which Go
    writes with their keys sorted, and every number a float64."""
    if isinstance(value, dict):
        return {key: go_sorted(value[key]) for key in sorted(value, key=_utf8)}
    if isinstance(value, list):
        return [go_sorted(item) for item in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return float(value)


def _utf8(key: str) -> bytes:
    # Go sorts map keys as strings, byte by byte of their UTF-8.
    return key.encode("utf-8", "replace")

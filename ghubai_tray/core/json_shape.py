"""A linear look at a JSON text's shape, before anything of it is parsed.

Python's ``json`` builds one object for every value it reads, and a list or
dict costs far more than the two bytes that wrote it: 29 MB of ``{},`` became
1.3 GB of dicts and held the event loop for 4.5 s before any check could run.
So the worker first counts what a text would build (every container and every
value after a comma) and how deeply it nests, and refuses a text over either
bound without building anything. The scan stops at the bound, so its own time
grows with the bytes (strings are skipped by one regular-expression step each,
in C), never with their shape.

Pure: text in, :class:`ShapeRefused` or nothing out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A string (its escapes skipped whole), or one structural character. A string
# that never ends matches too, with no closing quote, so that the scan can stop
# there instead of retrying from every later quote (quadratic on '"\"\"\"...').
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*("?)|[\[\]{},]', re.DOTALL)


class ShapeRefused(ValueError):
    """The text would build more, or nest deeper, than allowed; the text says which."""


@dataclass(frozen=True)
class ShapeLimits:
    """How much one JSON text may build: values (containers included) and nesting."""

    values: int
    depth: int


def check_shape(text: str, limits: ShapeLimits, what: str) -> ShapeLimits:
    """What parsing ``text`` would build, or :class:`ShapeRefused` past ``limits``.

    ``what`` names the text in the refusal. The count is what a parser builds,
    plus one for each empty container: a comma adds one value, an opening
    bracket one container. The scan stops at the first bound crossed. A text
    that is not JSON at all is let through, for the parser to refuse in its
    own words.
    """
    values, depth, deepest = 1, 0, 0
    for token in _TOKEN.finditer(text):
        char = token.group()[0]
        if char == '"':
            if not token.group(1):
                break  # an unterminated string: not JSON, the parser says so
            continue
        if char in "[{":
            depth += 1
            values += 1
            deepest = max(deepest, depth)
            if depth > limits.depth:
                raise ShapeRefused(f"{what} is nested too deeply (more than {limits.depth} "
                                   "levels)")
        elif char == ",":
            values += 1
        else:
            depth -= 1
        if values > limits.values:
            raise ShapeRefused(f"{what} holds more than {limits.values:,} values")
    return ShapeLimits(values, deepest)

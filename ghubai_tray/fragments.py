"""Cutting response text into fragments that can never trip the hub's size limit.

The hub closes the whole connection (every request on it) when one incoming
message exceeds 32 KiB, separator included. What counts is the *encoded*
message, and JSON escaping can multiply a text's size: a quote or backslash
takes 2 bytes, a control character up to 6, and an encoder that escapes
non-ASCII writes 6 bytes per character (12 outside the BMP). So fragments are
measured by a worst-case cost that holds for any JSON encoder, and kept under
16 KiB of it, which leaves room for the envelope (target, request id, flags).
"""

from __future__ import annotations

MAX_FRAGMENT_COST = 16 * 1024
_SHORT_ESCAPES = frozenset('"\\\b\f\n\r\t')


def escaped_cost(char: str) -> int:
    """Bytes ``char`` can take inside a JSON string, with whichever encoder."""
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return 2 if char in '"\\' else 1
    if code < 0x20:
        return 2 if char in _SHORT_ESCAPES else 6
    return 12 if code > 0xFFFF else 6


def fragment_cost(text: str) -> int:
    """Worst-case encoded size of ``text`` as a JSON string body (quotes excluded)."""
    if text.isascii() and text.isprintable():
        # The common case (a JSON line from Ollama), counted without a loop over characters:
        # only quotes and backslashes grow, to two bytes each.
        return len(text) + text.count('"') + text.count("\\")
    return sum(escaped_cost(c) for c in text)


def split_fragment(text: str, limit: int = MAX_FRAGMENT_COST) -> list[str]:
    """Cut ``text`` into consecutive pieces each costing at most ``limit``.

    Joined, the pieces give ``text`` back; no piece is empty, and no character
    is cut in two. A text within the limit comes back as one piece.
    """
    if limit < 12:
        raise ValueError("the limit must hold at least one character of any kind")
    if fragment_cost(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    start, cost = 0, 0
    for i, char in enumerate(text):
        c = escaped_cost(char)
        if cost + c > limit:
            pieces.append(text[start:i])
            start, cost = i, 0
        cost += c
    pieces.append(text[start:])
    return pieces

"""Cutting response text into fragments that fit the hub's message limit exactly.

The hub closes the whole connection (every request on it) when one incoming
message exceeds 32 KiB, separator included, so no message may. What counts is
the *encoded* message, and the worker is the encoder: orjson
(:func:`ghubai_tray.adapters.hub.encode`), which writes non-ASCII characters as their
UTF-8 bytes and escapes only quotes, backslashes (2 bytes) and control
characters (2 or 6). So a fragment is measured by exactly what it will take
on the wire, and may use everything the envelope (target, request id, flags)
leaves of the 32 KiB: one stream event of about 31 kB (a tool call writing a
12 kB file, say) goes through whole.
"""

from __future__ import annotations

MESSAGE_LIMIT = 32 * 1024  # the hub's MaximumReceiveMessageSize, separator included
ENVELOPE = 1024  # the invocation around a fragment, with the longest request id (<= 612 B)
MAX_FRAGMENT_COST = MESSAGE_LIMIT - ENVELOPE
_SHORT_ESCAPES = frozenset('"\\\b\f\n\r\t')


def escaped_cost(char: str) -> int:
    """Bytes ``char`` takes inside a JSON string as the worker's encoder writes it."""
    code = ord(char)
    if 0x20 <= code < 0x80:
        return 2 if char in '"\\' else 1
    if code < 0x20:
        return 2 if char in _SHORT_ESCAPES else 6
    return 2 if code < 0x800 else 3 if code < 0x10000 else 4


def fragment_cost(text: str) -> int:
    """Encoded size of ``text`` as a JSON string body (quotes excluded)."""
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

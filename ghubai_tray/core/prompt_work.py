"""How much work fitting a chat into its context costs Ollama, bounded before it starts.

Ollama fits a chat into the context by dropping messages from the front, one
at a time, and rendering and tokenizing everything that is left after each
drop (``chatPrompt`` in ``server/prompt.go``, 0.17), until what is left fits.
It does not look at the client's disconnect while it does. So the work grows
with the messages dropped times the text left: measured on the real Ollama
0.17.4 here (CPU, the tiny test model, a context of 8,192), 1,000 messages of
64 bytes (a 64 KB body) took 45 s of CPU, 100 messages of 4 KB took 17 s, and
1,000 of 4 KB ran for over ten minutes; Pause, Quit and the client leaving
change none of it.

The worker cannot tokenize, but it can bound the loop from above: a token
covers at least one byte of text, and a chat template adds at most
:data:`TEMPLATE_TOKENS` tokens around a message, so the loop surely stops
once the text left is at most the context in those terms. Until then every
drop costs the bytes left plus :data:`RENDER_COST` per message left (what
rendering one message costs beside its bytes, from the same measurements:
about 84 microseconds against 0.85 per byte). A chat whose bound passes
:data:`MAX_WORK` (about three seconds of one core on that machine) is refused
with the reason; a chat that fits its context is never refused.

Pure: sizes in, a number or a refusal out.
"""

from __future__ import annotations

from collections.abc import Sequence

TEMPLATE_TOKENS = 16  # tokens a chat template adds around one message, at most
RENDER_COST = 100  # rendering one message, in bytes of tokenizing
MAX_WORK = 4_000_000  # in bytes of tokenizing: about 3 s of one core here


def truncation_work(message_bytes: Sequence[int], fixed_bytes: int, context: int) -> int:
    """An upper bound of the work Ollama's fitting loop does for these messages.

    ``message_bytes``: the text of each message, in order; ``fixed_bytes``: text
    rendered on every pass whatever is dropped (the tools); ``context``: the
    context in tokens. The loop's first pass renders everything; each further
    pass drops the first message left.
    """
    left = sum(message_bytes) + fixed_bytes
    count = len(message_bytes)
    work = 0
    for size in message_bytes:
        work += left + RENDER_COST * count
        if left + TEMPLATE_TOKENS * count <= context or work > MAX_WORK:
            break  # surely fits now (the loop stops), or past the bound already
        left -= size
        count -= 1
    return work

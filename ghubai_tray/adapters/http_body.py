"""Reading an HTTP answer's body whole, but never more than a limit.

Whatever answers at an address the app asks (a hub's negotiate, the releases feed, a
release's small files) is a stranger: its body is read as it arrives, decoded (so that
a compressed answer counts at its real size), and refused once it passes ``limit``
instead of being held in memory whole. The refusal is the caller's exception, in the
caller's words.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx


async def body_within(response: httpx.Response, limit: int,
                      refuse: Callable[[], Exception]) -> bytes:
    """The body, or ``refuse()`` raised as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > limit:
            raise refuse()
    return bytes(body)

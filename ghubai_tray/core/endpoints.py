"""Which Ollama endpoints the hub may reach, and how a requested path is judged.

The hub names the Ollama endpoint of each request. Everything Ollama serves
besides inference (pull, push, create, copy, delete, blobs, ...) changes the
donor's machine, so a hub must never reach it, whatever path tricks it tries.

The rule is deliberately blunt: the path must be *exactly* one of the
allowlisted paths, and the value used afterwards is our own constant, never
the hub's string. Anything that could be read two ways by two parsers
(percent-encoding, dot segments, doubled or back slashes, a scheme, a host, a
query, a fragment, whitespace, non-ASCII look-alikes) is refused outright
rather than normalised, because normalising is where such tricks win.
"""

from __future__ import annotations

ALLOWED_ENDPOINTS: tuple[str, ...] = (
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
)
_BY_PATH = {p: p for p in ALLOWED_ENDPOINTS}
MAX_ENDPOINT_LENGTH = 64


class EndpointRefused(ValueError):
    """The hub asked for a path outside the inference allowlist; the text says why."""


def allowed_endpoint(raw: object) -> str:
    """Return the allowlisted endpoint ``raw`` names, or raise :class:`EndpointRefused`.

    The returned string is one of :data:`ALLOWED_ENDPOINTS` (the same object),
    so nothing of the hub's own spelling reaches the HTTP request.
    """
    if not isinstance(raw, str):
        raise EndpointRefused("the endpoint is not a text")
    shown = raw if len(raw) <= MAX_ENDPOINT_LENGTH else raw[:MAX_ENDPOINT_LENGTH] + "..."
    if len(raw) > MAX_ENDPOINT_LENGTH:
        raise EndpointRefused(f"the endpoint {shown!r} is too long")
    if not raw.isascii() or not raw.isprintable() or any(c.isspace() for c in raw):
        raise EndpointRefused(f"the endpoint {shown!r} has characters no endpoint has")
    for mark, what in (("%", "percent-encoding"), ("\\", "a backslash"), ("?", "a query"),
                       ("#", "a fragment"), (":", "a scheme or port"), ("@", "a user name")):
        if mark in raw:
            raise EndpointRefused(f"the endpoint {shown!r} contains {what}")
    if not raw.startswith("/") or raw.startswith("//"):
        raise EndpointRefused(f"the endpoint {shown!r} is not a plain absolute path")
    if any(segment in (".", "..") for segment in raw.split("/")):
        raise EndpointRefused(f"the endpoint {shown!r} contains dot segments")
    endpoint = _BY_PATH.get(raw)
    if endpoint is None:
        raise EndpointRefused(
            f"{shown!r} is not an inference endpoint; this worker only runs inference"
        )
    return endpoint

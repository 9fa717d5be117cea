"""A failed request's final chunk, in the shape its client already knows how to read.

The hub hands the client whatever the fragments say. A plain ``[error] ...``
text (the original worker's form) is not JSON: a non-streamed answer then
becomes an HTTP 500 with a parse message, which OpenAI SDKs retry twice, and a
streamed one an SSE line no SDK can parse. So a failure ends in the error
object of the client's own API: OpenAI's ``{"error": {"message", "type",
"code"}}`` for ``/v1`` requests, which OpenAI SDKs raise as an API error, and
Ollama's ``{"error": "..."}`` line for native ones, which is exactly what
Ollama itself sends when a stream fails.
"""

from __future__ import annotations

import json

ERROR_PREFIX = "[error] "  # how the worker marks a failed final internally


def is_openai(endpoint: object, target: str = "") -> bool:
    """Whether a request's client speaks OpenAI's API (else Ollama's)."""
    return target.casefold() == "requestopenai" or (
        isinstance(endpoint, str) and endpoint.startswith("/v1/"))


def client_error(reason: str, openai: bool, *, refused: bool = False) -> str:
    """The final fragment for a request that failed (or was refused) for ``reason``."""
    if openai:
        error = {"message": reason,
                 "type": "invalid_request_error" if refused else "api_error",
                 "code": "request_refused" if refused else "provider_error"}
        return json.dumps({"error": error}, ensure_ascii=False)
    return json.dumps({"error": reason}, ensure_ascii=False)


def final_fragment(text: str, openai: bool, *, refused: bool = False) -> str:
    """What a final carries: "" on success, the client's error object otherwise."""
    if text.startswith(ERROR_PREFIX):
        return client_error(text[len(ERROR_PREFIX):], openai, refused=refused)
    return text

"""Judging an inference request from the hub before anything of it reaches Ollama.

The hub is trusted to route work, not to act on the donor's machine. So an
``InferenceRequest`` is accepted only when every part is what inference needs:
a usable request id, an endpoint on the allowlist (see
:mod:`ghubai_tray.core.endpoints`), a model this worker shares right now, and a
body within the size limit that :mod:`ghubai_tray.core.request_body` can rebuild
for that same model within the owner's ceilings. What is forwarded is the
rebuilt body, never the hub's bytes (otherwise a request routed for a shared
model could run an unshared one). A refusal carries a reason in plain words
for the final chunk.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ghubai_tray.core.endpoints import EndpointRefused, allowed_endpoint
from ghubai_tray.core.errors import RequestRejected
from ghubai_tray.core.request_body import BodyRefused, Canonical, Ceilings, canonical_body
from ghubai_tray.core.server_kinds import ServerKind

MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class InferenceRequest:
    """A request that passed every check; ``endpoint`` is our own allowlist constant,
    ``body`` the worker's own serialisation, and ``canonical`` says what was capped."""

    request_id: str
    model: str
    endpoint: str
    body: bytes
    canonical: Canonical | None = None

    @property
    def path(self) -> str:
        """Where the body is posted: Ollama serves a ``/v1`` request by its native API,
        another server a native request by its ``/v1`` API."""
        return self.canonical.path if self.canonical and self.canonical.path else self.endpoint

    @property
    def openai(self) -> bool:
        """Whether the client speaks OpenAI's API (its errors take OpenAI's shape)."""
        return self.endpoint.startswith("/v1/")


def _field(obj: dict[str, Any], name: str) -> Any:
    # ASP.NET matches property names case-insensitively; so do we.
    folded = name.casefold()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.casefold() == folded), None)


def usable_request_id(value: Any) -> str | None:
    """The request id if a final chunk can be addressed to it, else None."""
    if (isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID and value.isprintable()
            and value.strip() == value):
        return value
    return None


def request_id_of(arguments: Any) -> str | None:
    """The usable request id in an invocation's arguments, whatever else is wrong."""
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], dict):
        return usable_request_id(_field(arguments[0], "requestId"))
    return None


def endpoint_of(arguments: Any) -> Any:
    """The endpoint an invocation names, whatever else is wrong (for the shape of a refusal)."""
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], dict):
        return _field(arguments[0], "endpointUri")
    return None


def validate_request(
    arguments: Any, shared_models: Collection[str], max_body_bytes: int,
    ceilings: Ceilings | None = None, server: ServerKind = ServerKind.OLLAMA,
) -> InferenceRequest:
    """Return the checked request or raise :class:`RequestRejected` with a plain reason."""
    if not isinstance(arguments, list) or len(arguments) != 1 or not isinstance(arguments[0], dict):
        raise RequestRejected("the hub sent a request this worker cannot read",
                              request_id_of(arguments))
    payload = arguments[0]
    request_id = usable_request_id(_field(payload, "requestId"))
    if request_id is None:
        raise RequestRejected("the request has no usable request id")

    def refuse(reason: str) -> RequestRejected:
        return RequestRejected(reason, request_id)

    try:
        endpoint = allowed_endpoint(_field(payload, "endpointUri"))
    except EndpointRefused as exc:
        raise refuse(str(exc)) from None

    model = _field(payload, "model")
    if not isinstance(model, str) or not model.strip():
        raise refuse("the request names no model")
    shared = {m.casefold(): m for m in shared_models}
    if model.casefold() not in shared:
        raise refuse(f"the model {model[:80]!r} is not shared by this worker")
    exact = shared[model.casefold()]

    body = _field(payload, "requestBody")
    if not isinstance(body, str):
        raise refuse("the request has no body")
    try:  # an ASCII body is measured without a copy of it (it may be 30 MB)
        size = len(body) if body.isascii() else len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise refuse("the request body is not valid text") from None
    if size > max_body_bytes:
        raise refuse(f"the request body is {size:,} bytes, more than this worker's "
                     f"limit of {max_body_bytes:,}")
    try:
        canonical = canonical_body(endpoint, body, exact, ceilings or Ceilings(), server)
    except BodyRefused as exc:
        raise refuse(str(exc)) from None
    return InferenceRequest(request_id, exact, endpoint, canonical.body, canonical)

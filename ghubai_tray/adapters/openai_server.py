"""A model server that speaks OpenAI's API: llama.cpp's ``llama-server``, LM Studio,
KoboldCpp, vLLM, LocalAI, Jan, llama-cpp-python's server.

What the worker needs of one beyond the base's relay is its model list: OpenAI's
``/v1/models``, or, for LM Studio, its own ``/api/v0/models``, which says which
models are embedding ones. None of them tells which models a request of the
worker's left in memory, nor unloads on request through an API all share, so
owner first and freeing memory on a pause are not available here, and the worker
says so (docs/MODEL_SERVERS.md) instead of pretending.
"""

from __future__ import annotations

import ssl

import httpx

from ghubai_tray.adapters.local_server import LocalServerClient, read_limited, unreachable_reason
from ghubai_tray.core.errors import OllamaAnswerError, OllamaUnreachable
from ghubai_tray.core.framing import status_error
from ghubai_tray.core.local_use import busy_slots
from ghubai_tray.core.server_kinds import NAMES, ServerKind
from ghubai_tray.core.tags import LocalModel, parse_model_list

LIST_TIMEOUT = 5.0
MAX_LIST_BYTES = 8 * 1024 * 1024
MAX_SLOTS_BYTES = 1024 * 1024


class OpenAIServerClient(LocalServerClient):
    """One connection pool to an OpenAI-compatible server of the ``kind`` identified."""

    def __init__(self, base_url: str, kind: ServerKind, verify: ssl.SSLContext | bool = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, verify, transport)
        self.kind = kind
        self.name = NAMES[kind]

    async def tags(self) -> tuple[LocalModel, ...]:
        """The models the server has; OllamaUnreachable, OllamaAnswerError or
        TagsParseError as for Ollama's list."""
        path = "/api/v0/models" if self.kind is ServerKind.LMSTUDIO else "/v1/models"
        try:
            async with self._client.stream("GET", path, timeout=LIST_TIMEOUT) as response:
                body = await read_limited(response, MAX_LIST_BYTES)
        except httpx.HTTPError as exc:
            raise OllamaUnreachable(unreachable_reason(exc, self.base_url, self.name)) from None
        if response.status_code != 200:
            raise OllamaAnswerError(status_error(response.status_code, body, self.name))
        return parse_model_list(body, self.name)

    async def loaded_models(self) -> list[str]:
        return []  # none of these servers says which requests left a model loaded

    async def loaded_expiries(self) -> dict[str, str] | None:
        return None  # no look, rather than a wrong one: owner first is not available

    async def unload(self, model: str) -> bool:
        return False  # no API all of them share: freeing memory on a pause is not available

    async def busy_slots(self) -> int | None:
        """How many of ``llama-server``'s slots are working now (``GET /slots``); None
        for another kind, or when it cannot tell (started with ``--no-slots``)."""
        if self.kind is not ServerKind.LLAMACPP:
            return None
        try:
            async with self._client.stream("GET", "/slots", timeout=LIST_TIMEOUT) as response:
                if response.status_code != 200:
                    return None
                body = await read_limited(response, MAX_SLOTS_BYTES)
        except httpx.HTTPError:
            return None
        return busy_slots(body)

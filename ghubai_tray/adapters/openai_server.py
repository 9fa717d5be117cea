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

from ghubai_tray.adapters.local_server import LocalServerClient
from ghubai_tray.core.local_use import busy_slots
from ghubai_tray.core.server_kinds import NAMES, ServerKind
from ghubai_tray.core.tags import LocalModel, instances_of, lmstudio_instances, parse_model_list

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
        self._listed: dict[str, bool | None] = {}  # folded name -> in memory, as last listed
        # the models the worker used, by folded name: their name, and whether they were in
        # memory before its first use (False: the hub's request loaded them)
        self._first_use: dict[str, tuple[str, bool]] = {}

    async def tags(self) -> tuple[LocalModel, ...]:
        """The models the server has; OllamaUnreachable, OllamaAnswerError or
        TagsParseError as for Ollama's list."""
        path = "/api/v0/models" if self.kind is ServerKind.LMSTUDIO else "/v1/models"
        models = parse_model_list(await self._listing(path, MAX_LIST_BYTES, LIST_TIMEOUT),
                                  self.name)
        self._listed = {m.name.casefold(): m.loaded for m in models}
        return models

    async def loaded_models(self) -> list[str]:
        return []  # none of these servers says which requests left a model loaded

    async def loaded_expiries(self) -> dict[str, str] | None:
        return None  # no look, rather than a wrong one: owner first is not available

    def note_use(self, model: str) -> None:
        """A request of the worker's on ``model`` starts: remember, the first time, whether
        the server had it in memory (as last listed; not known counts as loaded, so that
        a model of the owner's is never taken for the hub's)."""
        key = model.casefold()
        if self.kind is ServerKind.LMSTUDIO and key not in self._first_use:
            self._first_use[key] = (model, self._listed.get(key) is not False)

    async def hub_loaded(self) -> list[str] | None:
        """The models in memory that the hub's requests loaded (LM Studio 0.4+); None
        where the server cannot say (another kind, an older LM Studio)."""
        loaded = await self._instances()
        if loaded is None:
            return None
        return [name for name, was_loaded in self._first_use.values()
                if not was_loaded and instances_of(name, loaded)]

    async def unload(self, model: str) -> bool:
        """Unload ``model``'s instances (LM Studio 0.4+); False where the server cannot."""
        loaded = await self._instances()
        if loaded is None:
            return False
        done = True
        for instance in instances_of(model, loaded):
            try:
                response = await self._client.post("/api/v1/models/unload",
                                                   json={"instance_id": instance}, timeout=30.0)
            except httpx.HTTPError:
                return False
            done = done and response.status_code == 200
        if done:
            self._first_use.pop(model.casefold(), None)  # a next use loads it again
        return done

    async def _instances(self) -> dict[str, list[str]] | None:
        if self.kind is not ServerKind.LMSTUDIO:
            return None
        body = await self._get_ok("/api/v1/models", MAX_LIST_BYTES, LIST_TIMEOUT)
        return lmstudio_instances(body) if body is not None else None

    async def busy_slots(self) -> int | None:
        """How many of ``llama-server``'s slots are working now (``GET /slots``); None
        for another kind, or when it cannot tell (started with ``--no-slots``)."""
        if self.kind is not ServerKind.LLAMACPP:
            return None
        body = await self._get_ok("/slots", MAX_SLOTS_BYTES, LIST_TIMEOUT)
        return busy_slots(body) if body is not None else None

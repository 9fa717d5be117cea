"""Ollama's own API: its model list, what it holds in memory, and unloading.

The HTTP of inference and of telling servers apart is the base's
(:mod:`ghubai_tray.adapters.local_server`); this adapter adds what only Ollama
answers: ``/api/tags``, ``/api/ps`` and ``keep_alive: 0``.
"""

from __future__ import annotations

import httpx

from ghubai_tray.adapters.local_server import LocalServerClient
from ghubai_tray.core.tags import LocalModel, parse_tags

TAGS_TIMEOUT = 5.0
MAX_TAGS_BYTES = 8 * 1024 * 1024


class OllamaClient(LocalServerClient):
    """One connection pool to Ollama; build with the base URL and the TLS context."""

    name = "Ollama"

    async def tags(self) -> tuple[LocalModel, ...]:
        """The models Ollama has; OllamaUnreachable, OllamaAnswerError or TagsParseError."""
        return parse_tags(await self._listing("/api/tags", MAX_TAGS_BYTES, TAGS_TIMEOUT))

    async def loaded_models(self) -> list[str]:
        """Models Ollama holds in memory now (``/api/ps``); empty when it cannot tell."""
        try:
            response = await self._client.get("/api/ps", timeout=TAGS_TIMEOUT)
            models = response.json().get("models") or []
            return [m["name"] for m in models
                    if isinstance(m, dict) and isinstance(m.get("name"), str)]
        except (httpx.HTTPError, ValueError, AttributeError):
            return []

    async def loaded_expiries(self) -> dict[str, str] | None:
        """Each model in memory and its ``expires_at`` (``/api/ps``); None when Ollama
        cannot be asked or answers something else (no look, rather than a wrong one)."""
        try:
            response = await self._client.get("/api/ps", timeout=TAGS_TIMEOUT)
            if response.status_code != 200:
                return None
            models = response.json().get("models")
            if not isinstance(models, list):
                return None
            return {str(m["name"]): str(m.get("expires_at")) for m in models
                    if isinstance(m, dict) and isinstance(m.get("name"), str)}
        except (httpx.HTTPError, ValueError, AttributeError):
            return None

    async def unload(self, model: str) -> bool:
        """Ask Ollama to free ``model``'s memory now (``keep_alive: 0``, no prompt)."""
        try:
            response = await self._client.post(
                "/api/generate", json={"model": model, "keep_alive": 0}, timeout=30.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def busy_slots(self) -> int | None:
        return None  # Ollama's use is read from /api/ps instead (core/local_use.py)

    def note_use(self, model: str) -> None:
        pass  # Ollama says itself which models a use left loaded (/api/ps)

    async def hub_loaded(self) -> list[str] | None:
        return None  # read from /api/ps and the worker's own uses instead (worker/gpu.py)

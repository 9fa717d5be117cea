"""Which local model server answers at an address: Ollama, or another one that may imitate it.

Several servers answer Ollama's own routes as well as theirs: KoboldCpp (since 1.117)
emulates Ollama's ``/api/tags``, ``/api/version``, ``/api/chat`` and ``/api/generate``,
OpenAI's ``/v1/models`` and llama.cpp's ``/props`` all at once. Asking ``/api/tags``
alone would take any of them for Ollama, and the owner's limits are written for
Ollama's parameters: another server reads the same body its own way. So the address is
identified by what only one kind says, most specific first (docs/MODEL_SERVERS.md):

1. ``GET /api/extra/version`` answering ``{"result": "KoboldCpp", "version": ...}``;
2. ``GET /api/v0/models`` answering LM Studio's list (``data`` entries with ``state``
   and ``compatibility_type``);
3. ``GET /props`` answering llama.cpp's ``llama-server`` settings (``build_info``, or
   ``default_generation_settings`` with ``total_slots``);
4. ``GET /api/version`` answering Ollama's ``{"version": "X.Y.Z"}``;
5. ``GET /v1/models`` answering an OpenAI list (``object: list``, ``data``): some
   other OpenAI-compatible server (llama-cpp-python, vLLM, LocalAI, Jan...).

Pure: the adapter asks the paths (:data:`PROBES`, in this order) and hands each
answer's JSON here (None for a refusal, an error or what is not JSON).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

PROBES = ("/api/extra/version", "/api/v0/models", "/props", "/api/version", "/v1/models")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


class ServerKind(enum.Enum):
    OLLAMA = "ollama"
    KOBOLDCPP = "koboldcpp"
    LMSTUDIO = "lmstudio"
    LLAMACPP = "llamacpp"
    OPENAI = "openai"


NAMES = {ServerKind.OLLAMA: "Ollama", ServerKind.KOBOLDCPP: "KoboldCpp",
         ServerKind.LMSTUDIO: "LM Studio", ServerKind.LLAMACPP: "llama.cpp's llama-server",
         ServerKind.OPENAI: "an OpenAI-compatible server"}


# How the owner's messages name the server they use ("Paused: you are using llama-server").
SHORT = {ServerKind.OLLAMA: "Ollama", ServerKind.KOBOLDCPP: "KoboldCpp",
         ServerKind.LMSTUDIO: "LM Studio", ServerKind.LLAMACPP: "llama-server",
         ServerKind.OPENAI: "the model server"}


def not_available(kind: ServerKind) -> str | None:
    """Which rules cannot work with ``kind``, in the owner's words (None: all can).

    Owner first needs the server to say that somebody else uses it: Ollama's ``/api/ps``
    or ``llama-server``'s ``/slots``. Freeing memory needs an unload and a list of what
    is in memory: Ollama's, and LM Studio's (0.4+).
    """
    if kind is ServerKind.OLLAMA:
        return None
    if kind is ServerKind.LLAMACPP:
        return "freeing memory on pause is not available with it"
    if kind is ServerKind.LMSTUDIO:  # it unloads (0.4+), but says nothing of who used what
        return "owner first is not available with it"
    return "owner first and freeing memory on pause are not available with it"


@dataclass(frozen=True)
class ServerIdentity:
    kind: ServerKind
    version: str | None = None

    def __str__(self) -> str:
        return NAMES[self.kind] + (f" {self.version}" if self.version else "")


def _version(value: Any) -> str | None:
    """A version as the server gave it, made safe to print (a stranger could send any)."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    text = _PRINTABLE.sub("", str(value)).strip()[:40]
    return text or None


def _list_of_objects(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    return [entry for entry in value if isinstance(entry, dict)]


def is_kobold(answer: Any) -> ServerIdentity | None:
    if isinstance(answer, dict) and isinstance(answer.get("result"), str) \
            and answer["result"].casefold().startswith("koboldcpp"):
        return ServerIdentity(ServerKind.KOBOLDCPP, _version(answer.get("version")))
    return None


def is_lmstudio(answer: Any) -> ServerIdentity | None:
    entries = _list_of_objects(answer.get("data")) if isinstance(answer, dict) else None
    if entries is not None and answer.get("object") == "list" and (
            not entries or any("state" in e and "compatibility_type" in e for e in entries)):
        return ServerIdentity(ServerKind.LMSTUDIO)
    return None


def is_llamacpp(answer: Any) -> ServerIdentity | None:
    if not isinstance(answer, dict):
        return None
    settings = answer.get("default_generation_settings")
    if "build_info" in answer or (isinstance(settings, dict) and "total_slots" in answer):
        return ServerIdentity(ServerKind.LLAMACPP, _version(answer.get("build_info")))
    return None


def is_ollama(answer: Any) -> ServerIdentity | None:
    if isinstance(answer, dict) and set(answer) == {"version"} \
            and (version := _version(answer["version"])) is not None:
        return ServerIdentity(ServerKind.OLLAMA, version)
    return None


def is_openai(answer: Any) -> ServerIdentity | None:
    if isinstance(answer, dict) and answer.get("object") == "list" \
            and _list_of_objects(answer.get("data")) is not None:
        return ServerIdentity(ServerKind.OPENAI)
    return None


RECOGNISERS = dict(zip(PROBES, (is_kobold, is_lmstudio, is_llamacpp, is_ollama, is_openai),
                       strict=True))


def identify(answers: dict[str, Any]) -> ServerIdentity | None:
    """The server the probes' answers describe (``answers``: path -> JSON or None), the
    most specific first; None when nothing answered as any known kind does."""
    for path in PROBES:
        found = RECOGNISERS[path](answers.get(path))
        if found is not None:
            return found
    return None

"""Reading Ollama's model list (``GET /api/tags``) into model names.

Real Ollama answers ``{"models": [{"name": ..., "model": ...}, ...]}``; older
and third-party servers answer a bare array of such objects, or of strings
(the seed README's three shapes). Newer Ollama also lists *cloud* models,
marked by ``remote_model``: they run on ollama.com under the owner's account,
not on their GPU, so the worker reports them as remote and never shares them
unless the owner names them explicitly (see :mod:`ghubai_tray.core.sharing`).

Anything else (an HTML login page from a proxy, non-JSON, other shapes) is a
:class:`TagsParseError`, never a silently empty list: an empty list would
quietly stop all sharing, while an error tells the owner why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ghubai_tray.core.errors import TagsParseError

MAX_MODEL_NAME = 256  # Ollama's own names are far shorter; longer is not a model name


@dataclass(frozen=True)
class LocalModel:
    """One model Ollama has: its name and whether it runs remotely (a cloud model)."""

    name: str
    remote: bool = False
    loaded: bool | None = None  # in memory now, where the server says (LM Studio's list)


def _entry_name(entry: Any) -> tuple[str, bool] | None:
    if isinstance(entry, str):
        return entry, False
    if not isinstance(entry, dict):
        raise TagsParseError("a model entry is neither a name nor an object")
    remote = entry.get("remote_model")
    is_remote = isinstance(remote, str) and bool(remote.strip())
    for key in ("name", "model", "remote_model"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value, is_remote
    return None  # an entry without any name is skipped, as the seed worker did


def parse_tags(body: bytes | str) -> tuple[LocalModel, ...]:
    """Return the models in an ``/api/tags`` answer, or raise :class:`TagsParseError`.

    Names are trimmed, deduplicated case-insensitively (the hub matches them
    that way) and kept in Ollama's order; the first spelling wins.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TagsParseError("Ollama's model list is not JSON") from None
    if isinstance(data, dict):
        if "models" not in data:
            raise TagsParseError("Ollama's model list has no \"models\" field")
        data = data["models"]
        if data is None:  # Go encodes an empty slice declared as nil this way
            data = []
    if not isinstance(data, list):
        raise TagsParseError("Ollama's model list is not a list")
    models: list[LocalModel] = []
    seen: set[str] = set()
    for entry in data:
        named = _entry_name(entry)
        if named is None:
            continue
        name = named[0].strip()
        if not name or len(name) > MAX_MODEL_NAME or not name.isprintable():
            continue
        key = name.casefold()
        if key not in seen:
            seen.add(key)
            models.append(LocalModel(name, named[1]))
    return tuple(models)


# LM Studio's own list says what each model is; only these answer a chat.
_LMSTUDIO_CHAT_TYPES = ("llm", "vlm")


def parse_model_list(body: bytes | str, server: str = "the model server") -> tuple[LocalModel, ...]:
    """The models in an OpenAI ``/v1/models`` list (``{"object": "list", "data": [{"id":
    ...}]}``), or in LM Studio's ``/api/v0/models`` (the same, each with its ``type``:
    embedding models are left out, as they answer no chat); :class:`TagsParseError`
    for anything else, never a silently empty list."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TagsParseError(f"{server}'s model list is not JSON") from None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise TagsParseError(f"{server}'s model list has no \"data\" list")
    models: list[LocalModel] = []
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        kind = entry.get("type")
        if isinstance(kind, str) and kind not in _LMSTUDIO_CHAT_TYPES:
            continue
        name = entry["id"].strip()
        if not name or len(name) > MAX_MODEL_NAME or not name.isprintable():
            continue
        if name.casefold() not in seen:
            seen.add(name.casefold())
            state = entry.get("state")
            models.append(LocalModel(name, loaded=state == "loaded"
                                     if isinstance(state, str) else None))
    return tuple(models)


def lmstudio_instances(body: bytes | str) -> dict[str, list[str]] | None:
    """LM Studio's ``/api/v1/models`` (0.4+): each model's key (folded) and the ids of its
    instances in memory (``loaded_instances[].id``), those loaded only; None for
    anything else (an older LM Studio answers 404)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    loaded: dict[str, list[str]] = {}
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("key"), str):
            continue
        instances = model.get("loaded_instances")
        ids = [i["id"] for i in instances if isinstance(i, dict) and isinstance(i.get("id"), str)
               ] if isinstance(instances, list) else []
        if ids:
            loaded[model["key"].casefold()] = ids
    return loaded


def instances_of(name: str, loaded: dict[str, list[str]]) -> list[str]:
    """The instances in memory of the model the worker knows as ``name``: those of the
    model keyed so, or, where the keys differ from the names of the older list, those
    whose own id is the name (LM Studio names an instance by its model's key, and a
    second one ``key:2``)."""
    if name.casefold() in loaded:
        return loaded[name.casefold()]
    return [i for ids in loaded.values() for i in ids
            if i.casefold() == name.casefold() or i.casefold().startswith(f"{name.casefold()}:")]

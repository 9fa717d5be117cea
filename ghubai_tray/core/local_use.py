"""Is someone on this computer using Ollama? Read from two looks at ``/api/ps``.

Pure. Ollama sets a model's ``expires_at`` when a request on it ends (its
keep-alive from then), so between two looks a model that appeared, or whose
``expires_at`` moved, was used by somebody. If the worker itself used it in
between (a hub request, or unloading it), that somebody may be the hub, and the
look says nothing; otherwise it was the owner (a chat, an editor plug-in, a
script). A model that disappeared was unloaded, which is no use. The first look
is only a baseline: models loaded before the worker started say nothing of who
loaded them, and a restart must not pause sharing for the hold time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Loaded = Mapping[str, str]  # model name -> its expires_at, as Ollama wrote it


def model_key(name: str) -> str:
    """``Llama3.2`` and ``llama3.2:latest`` are one model to Ollama."""
    name = name.strip().casefold()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def local_use(before: Loaded | None, now: Loaded, used_by_worker: Iterable[str]) -> bool:
    """Whether Ollama served someone other than the worker between the two looks."""
    if before is None:
        return False
    ours = {model_key(m) for m in used_by_worker}
    earlier = {model_key(m): expires for m, expires in before.items()}
    for model, expires in now.items():
        key = model_key(model)
        if key not in ours and earlier.get(key) != expires:
            return True
    return False

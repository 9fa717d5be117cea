"""Is someone on this computer using Ollama? Read from two looks at ``/api/ps``.

Pure. Ollama sets a model's ``expires_at`` when a request on it ends (its
keep-alive from then), so between two looks a model that appeared, or whose
``expires_at`` moved, was used by somebody. If the worker itself used it in
between (a hub request, or unloading it), that somebody may be the hub, and the
look says nothing of who, unless the new expiry is not the one the worker's
own ``keep_alive`` would leave: then somebody used it after the worker did.
Otherwise it was the owner (a chat, an editor plug-in, a script). A use of the
worker's counts only once Ollama accepted it: a request Ollama refuses at once
moves no expiry, and a hub sending such requests every few seconds must not
hide the owner. A model that disappeared was unloaded, which is no use. The first look
is only a baseline: models loaded before the worker started say nothing of who
loaded them, and a restart must not pause sharing for the hold time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

Loaded = Mapping[str, str]  # model name -> its expires_at, as Ollama wrote it
# model key -> the expiries the worker's own uses of it would leave, in seconds since the
# epoch; None where the worker cannot know (a use still running, or one that named no
# keep-alive, so Ollama's default applies)
Used = Mapping[str, frozenset[float | None]]
# How far Ollama's expiry may be from the one the worker's use would leave: Ollama sets it
# a moment after the answer's last byte, which the worker reads a moment later.
EXPIRY_TOLERANCE = 3.0


def model_key(name: str) -> str:
    """``Llama3.2`` and ``llama3.2:latest`` are one model to Ollama."""
    name = name.strip().casefold()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def used_models(names: Iterable[str]) -> Used:
    """Uses of the worker's on ``names`` whose expiries are not known."""
    return {model_key(name): frozenset({None}) for name in names}


def merged(*useds: Used) -> Used:
    out: dict[str, frozenset[float | None]] = {}
    for used in useds:
        for key, expiries in used.items():
            out[key] = out.get(key, frozenset()) | expiries
    return out


_FRACTION = re.compile(r"(\.\d{6})\d+")


def expiry_seconds(text: str) -> float | None:
    """Ollama's ``expires_at`` (RFC 3339, nanoseconds) in seconds since the epoch."""
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00")
                                      ).timestamp()
    except (ValueError, TypeError):
        return None


def local_use(before: Loaded | None, now: Loaded, used_by_worker: Used | Iterable[str]) -> bool:
    """Whether Ollama served someone other than the worker between the two looks."""
    if before is None:
        return False
    ours = (used_by_worker if isinstance(used_by_worker, Mapping)
            else used_models(used_by_worker))
    ours = {model_key(m): expiries for m, expiries in ours.items()}
    earlier = {model_key(m): expires for m, expires in before.items()}
    for model, expires in now.items():
        key = model_key(model)
        if earlier.get(key) == expires:
            continue
        if key not in ours or not _could_be_ours(expires, ours[key]):
            return True
    return False


def _could_be_ours(expires: str, expected: frozenset[float | None]) -> bool:
    if None in expected:
        return True
    seen = expiry_seconds(expires)
    if seen is None:
        return True  # an expiry we cannot read says nothing of who
    return any(e is not None and abs(seen - e) <= EXPIRY_TOLERANCE for e in expected)


def loaded_by_worker(loaded: Loaded, last: Mapping[str, float | None]) -> list[str]:
    """The models in memory that the worker's use left there: the worker used them, and
    nobody since (their expiry is the one the worker's last use would leave). What the
    owner loaded, or used after the worker, is the owner's: pausing leaves it alone."""
    return [model for model, expires in loaded.items()
            if model_key(model) in last
            and _could_be_ours(expires, frozenset({last[model_key(model)]}))]


def busy_slots(body: bytes) -> int | None:
    """How many of ``llama-server``'s slots are working, from its ``/slots`` answer (a
    list of slots, each with ``is_processing``); None for anything else."""
    try:
        slots = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(slots, list) or not all(isinstance(s, dict) for s in slots):
        return None
    return sum(1 for slot in slots if slot.get("is_processing") is True)


def others_working(busy: int | None, worker_running: int) -> bool:
    """Whether a server's working slots are more than the worker's own requests there:
    somebody else (the owner) uses it. ``worker_running`` is the larger of the counts
    taken just before and just after the look, so a request of the worker's that starts
    or ends while the server is asked is never taken for the owner's."""
    return busy is not None and busy > worker_running

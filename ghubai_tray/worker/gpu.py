"""Giving the GPU back: once nothing runs for the hub, unload the shared models.

A manual pause and a rule's pause (``free_gpu_when_paused``, on by default) both
end here: the owner wants their GPU's memory back, not only no new requests.
"""

from __future__ import annotations

import logging

from ghubai_tray.core.local_use import model_key
from ghubai_tray.worker.ports import OllamaLink
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")


async def free_gpu_once_idle(store: StateStore, ollama: OllamaLink) -> None:
    """Once the last request has ended, unload the shared models Ollama holds in memory
    (``keep_alive: 0``); nothing when sharing resumed meanwhile."""
    try:
        await store.wait_for(
            lambda s: (s.active == 0 and s.queued == 0) or not s.holding,
            timeout=store.snapshot.settings.total_timeout + 60, what="requests to end")
    except TimeoutError:
        return
    snap = store.snapshot
    if not snap.holding:
        return
    shared = {model_key(m) for m in snap.shared_models}  # as the owner-first rule compares
    client = ollama.client
    for model in await client.loaded_models():
        if model_key(model) not in shared:
            continue
        with ollama.using(model, keep_alive=0) as use:
            freed = await client.unload(model)
            if freed:
                use.accept()
        if freed:
            log.info("freed the GPU memory held by %s", model)

"""Giving the GPU back: once nothing runs for the hub, unload what the hub loaded.

A manual pause and a rule's pause (``free_gpu_when_paused``, on by default) both
end here: the owner wants their GPU's memory back, not only no new requests.
"""

from __future__ import annotations

import logging

from ghubai_tray.core.server_kinds import ServerKind
from ghubai_tray.worker.ports import Ollama, OllamaLink
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")


async def free_gpu_once_idle(store: StateStore, ollama: OllamaLink) -> None:
    """Once the last request has ended, unload the models the hub's requests left in
    Ollama's memory (``keep_alive: 0``); nothing when sharing resumed meanwhile. A model
    the owner loaded, or used after the hub did, stays: it is the owner's."""
    try:
        await store.wait_for(
            lambda s: (s.active == 0 and s.queued == 0) or not s.holding,
            timeout=store.snapshot.settings.total_timeout + 60, what="requests to end")
    except TimeoutError:
        return
    if not store.snapshot.holding:
        return
    client = ollama.client
    if store.snapshot.server_kind is not ServerKind.OLLAMA:
        await _free_other(client)
        return
    loaded = await client.loaded_expiries()
    if loaded is None:
        log.warning("Ollama did not say which models it holds: none was unloaded")
        return
    hubs = ollama.loaded_by_worker(loaded)
    if kept := [m for m in loaded if m not in hubs]:
        log.info("left loaded, as they are yours (not the hub's): %s", ", ".join(kept))
    freed = []
    for model in hubs:
        with ollama.using(model, keep_alive=0) as use:
            if await client.unload(model):
                use.accept()
                freed.append(model)
    if freed:  # one line, once every unload was asked
        log.info("freed the GPU memory held by %s", ", ".join(freed))


async def _free_other(client: Ollama) -> None:
    """A server other than Ollama: unload what the hub's requests loaded, where the
    server says what is in memory and unloads on request (LM Studio 0.4+)."""
    hubs = await client.hub_loaded()
    if hubs is None:
        log.info("%s cannot be asked to free its memory: freeing memory on pause is not "
                 "available with it", client.name)
        return
    freed = [model for model in hubs if await client.unload(model)]
    if freed:
        log.info("freed the memory %s held for the hub: %s", client.name, ", ".join(freed))

"""Faults, repeated: the hub dies under load again and again; each time nothing hangs.

What each test claims it asserts: every request in flight ends (on the worker's
side, its Ollama request is cancelled so the GPU stops) promptly, and the
worker is registered again as soon as the hub is back.
"""

from __future__ import annotations

import time

from ghubai_tray.state import State, TokenChanged
from tests.testbed.ollama import OllamaStandIn
from tests.worker_bed import TOKEN, running_bed

MODELS = ("llama3.2:1b", "mistral:7b")
LONG = {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "a long story"}]}
PROMPT = 1.0  # seconds: how soon an abandoned generation must stop


async def test_hub_killed_mid_stream_20_times() -> None:
    ollama = OllamaStandIn(token_delay=0.05, reply_tokens=["word "] * 10_000)
    async with running_bed(ollama=ollama) as bed:
        for round_ in range(20):
            await bed.registered(*MODELS)
            requests = [await bed.request("/api/chat", LONG) for _ in range(2)]
            for req in requests:
                await anext(aiter(req.stream()))  # generating now
            before = len(ollama.cancellations)
            killed = time.monotonic()
            await bed.hub.restart()  # the process dies: sockets dropped, nothing said
            target = before + 2
            await ollama.wait_until(lambda: len(ollama.cancellations) >= target,  # noqa: B023
                                    10, f"round {round_}: both generations cancelled")
            stopped_after = time.monotonic() - killed
            assert stopped_after < PROMPT, f"round {round_}: Ollama ran {stopped_after:.2f} s on"
            assert ollama.active == 0
        await bed.registered(*MODELS)
        assert bed.worker.snapshot.active == 0 and bed.worker.snapshot.queued == 0


async def test_token_revoked_mid_stream_then_restored() -> None:
    ollama = OllamaStandIn(token_delay=0.05, reply_tokens=["word "] * 10_000)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered(*MODELS)
        req = await bed.request("/api/chat", LONG)
        await anext(aiter(req.stream()))
        bed.hub.tokens.clear()  # revoked: the next negotiate is refused with 401
        await bed.hub.close_connections(error="Token revoked.", allow_reconnect=True)
        await ollama.wait_until(lambda: ollama.cancellations, 10, "the generation cancelled")
        await bed.worker.wait_for(lambda s: s.state is State.AUTH_REJECTED, 15, "rejection")
        bed.hub.tokens.add(TOKEN)  # restored by the hub's operator; the owner nudges it
        bed.worker.submit(TokenChanged())
        await bed.registered(*MODELS)

"""``make soak``: steady load with random faults for a while; memory must stay flat.

The worker runs as its own process (``--headless``) against the test hub and
the Ollama stand-in. Four streams run all the time; every few seconds one
fault strikes at random (hub restarted, connections dropped, a Close with or
without allowReconnect, negotiate failing with 503, Ollama answering 503,
HTML, an error mid-stream or dying mid-stream). The worker's RSS is sampled
throughout. It fails (exit 1) if the worker dies, if a request on a live
connection never ends, or if memory grows: the median RSS of the last quarter
must stay within 15 MB of the second quarter's (the first is warm-up).

    python -m bench.soak [--seconds 600]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from bench.common import memory_of, worker_env
from tests.testbed.hub import AuthMode, GridHub, HubRequest
from tests.testbed.ollama import Fault, ModelInfo, OllamaStandIn

TOKEN = "soak-token"
MODEL = "llama3.2:1b"
GROWTH_LIMIT_MB = 15.0


async def fault(rng: random.Random, hub: GridHub, ollama: OllamaStandIn) -> str:
    kind = rng.choice(["restart", "drop", "close", "close-final", "negotiate-503",
                       "ollama-503", "ollama-html", "ollama-mid-stream", "ollama-disconnect"])
    if kind == "restart":
        await hub.restart()
    elif kind == "drop":
        await hub.drop_connections()
    elif kind == "close":
        await hub.close_connections(error="Server is restarting.", allow_reconnect=True)
    elif kind == "close-final":
        await hub.close_connections(error="Go away.", allow_reconnect=False)
    elif kind == "negotiate-503":
        hub.fail_negotiate(503, times=2)
        await hub.drop_connections()
    else:
        ollama.fault = {"ollama-503": Fault.BUSY, "ollama-html": Fault.HTML,
                        "ollama-mid-stream": Fault.MID_STREAM,
                        "ollama-disconnect": Fault.DISCONNECT}[kind]
        await asyncio.sleep(0.5)  # a few requests meet it
        ollama.fault = Fault.NONE
    return kind


async def soak(seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    ollama = OllamaStandIn(token_delay=0.01, reply_tokens=["word "] * 100,
                           models=[ModelInfo(MODEL)])
    await hub.start()
    await ollama.start()
    env = worker_env(hub.url, ollama.url, TOKEN, concurrency=4)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", "--headless", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []
    served = faults = stuck = 0
    start = time.monotonic()

    def ended(req: HubRequest) -> Callable[[], bool]:
        """Done, or its connection is gone (the hub then forgets it, as GridHub does)."""
        return lambda: req.done.is_set() or req.connection_id not in hub.connections

    stopping = asyncio.Event()

    async def stream_forever() -> None:
        nonlocal served, stuck
        while not stopping.is_set():
            if hub.node_for(MODEL) is None:
                await hub.wait_until(lambda: hub.node_for(MODEL), 120, "registration")
            try:
                req: HubRequest = await hub.dispatch(MODEL, "/api/generate",
                                                     {"model": MODEL, "prompt": "x"})
            except (AssertionError, KeyError):
                continue  # the node went away between the check and the dispatch
            try:
                await hub.wait_until(ended(req), 30, "an end")
            except AssertionError:
                stuck += 1  # 30 s on a live connection without a final chunk: a defect
            else:
                served += req.done.is_set()

    streams = [asyncio.create_task(stream_forever()) for _ in range(4)]
    try:
        await hub.wait_until(lambda: hub.node_for(MODEL), 60, "registration")
        next_fault = time.monotonic() + rng.uniform(3, 8)
        while time.monotonic() - start < seconds:
            if worker.returncode is not None:
                print("the worker died", file=sys.stderr)
                return 1
            samples.append((time.monotonic() - start, memory_of(worker.pid).rss))
            if time.monotonic() >= next_fault:
                kind = await fault(rng, hub, ollama)
                faults += 1
                print(f"[soak] {time.monotonic() - start:6.1f} s  fault: {kind}", flush=True)
                next_fault = time.monotonic() + rng.uniform(3, 8)
            await asyncio.sleep(1)
        await hub.wait_until(lambda: hub.node_for(MODEL), 60, "the final registration")
    finally:
        stopping.set()  # the streams stop by themselves too, not only by cancellation
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 30)
        await hub.stop()
        await ollama.stop()

    return 0 if report(samples, seconds, faults, served, stuck) else 1


def report(samples: list[tuple[float, float]], seconds: float, faults: int, served: int,
           stuck: int) -> bool:
    """Print the RSS table and the verdict; True when memory stayed flat and nothing hung."""
    quarter = max(1, len(samples) // 4)
    early = statistics.median(rss for _, rss in samples[quarter:2 * quarter])
    late = statistics.median(rss for _, rss in samples[-quarter:])
    print(f"\n### Soak: {seconds:.0f} s, {faults} faults, {served} requests served\n")
    print("| time | worker RSS |\n|---:|---:|")
    step = max(1, len(samples) // 12)
    for t, rss in samples[::step]:
        print(f"| {t:5.0f} s | {rss:6.1f} MB |")
    print(f"\nRSS median, second quarter {early:.1f} MB, last quarter {late:.1f} MB "
          f"(growth {late - early:+.1f} MB, limit {GROWTH_LIMIT_MB:g}); "
          f"requests left hanging on a live connection: {stuck}")
    return late - early <= GROWTH_LIMIT_MB and stuck == 0 and served > 0

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="GhubAi Tray soak test")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args.seconds, args.seed)))

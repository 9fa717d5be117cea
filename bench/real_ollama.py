"""``make bench-ollama``: the real Ollama (built by ``make setup``) direct and through the worker.

Two figures, each against its baseline in the same run: the time to the first
token straight from Ollama and through the worker and the test hub (native
``/api/chat`` and ``/v1/chat/completions``, streamed, on the tiny generated
model), and the time from Pause, once the last request has ended, until
Ollama's ``/api/ps`` is empty (the worker unloads the shared models). With
``--write`` the table replaces its section of bench/RESULTS.md.

    python -m bench.real_ollama [--quick] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from bench.common import worker_env
from bench.run import ROOT, arrivals, machine
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.real_ollama import MODEL, OLLAMA_VERSION, RealOllama

TOKEN = "bench-token"
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- real-ollama:begin -->", "<!-- real-ollama:end -->"
BODY = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "the sky is"}]}


async def measure(quick: bool) -> list[str]:
    runs = 5 if quick else 20
    ollama = RealOllama()
    url = await ollama.start()
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    env = worker_env(hub.url, url, TOKEN)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ghubai_tray",
                                                "--headless", env=env,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    rows = ["| endpoint | first token direct p50 | through the worker p50 | added |",
            "|---|---:|---:|---:|"]
    try:
        await hub.wait_until(lambda: hub.node_for(MODEL), 60, "the worker to register")
        async with httpx.AsyncClient(timeout=120) as client:
            for endpoint, body in (("/api/chat", {**BODY, "options": {"num_predict": 8}}),
                                   ("/v1/chat/completions", {**BODY, "max_tokens": 8})):
                sse = endpoint.startswith("/v1")
                await arrivals(client, f"{url}{endpoint}", body, sse)  # the model loaded
                direct, relayed = [], []
                for _ in range(runs):
                    direct.append((await arrivals(client, f"{url}{endpoint}", body, sse))[0])
                    t0 = time.perf_counter()
                    req = await hub.dispatch(MODEL, endpoint, body)
                    await anext(aiter(req.stream()))
                    relayed.append(time.perf_counter() - t0)
                    await req.wait(120)
                d, r = statistics.median(direct), statistics.median(relayed)
                rows.append(f"| `{endpoint}` | {d * 1000:.1f} ms | {r * 1000:.1f} ms | "
                            f"{(r - d) * 1000:+.1f} ms |")
            rows += ["", await pause_to_unloaded(client, url)]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        await hub.stop()
        await ollama.stop()
    return rows


async def pause_to_unloaded(client: httpx.AsyncClient, url: str) -> str:
    """Pause to ``/api/ps`` empty, the last request already ended.

    A headless worker cannot be paused from outside yet (a control channel is still to
    come), so this worker runs in this process and gets Pause as the tray sends it.
    """
    from ghubai_tray.adapters.credentials import TokenSource
    from ghubai_tray.core.settings import Settings
    from ghubai_tray.core.state import Pause, PauseMode, Stop
    from ghubai_tray.worker import Worker

    hub = GridHub()
    await hub.start()
    worker = Worker(Settings(hub_url=hub.url, ollama_url=url, machine_name="bench"),
                    lambda _: TokenSource(None, "bench"), poll_interval=0.2)
    task = asyncio.create_task(worker.run())
    try:
        await hub.wait_until(lambda: hub.node_for(MODEL), 60, "registration")
        req = await hub.dispatch(MODEL, "/api/chat", {**BODY, "stream": False})
        await req.wait(120)
        worker.submit(Pause(PauseMode.AFTER_CURRENT))
        t0 = time.perf_counter()
        while (await client.get(f"{url}/api/ps")).json()["models"]:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
    finally:
        worker.submit(Stop(grace=1.0))
        await asyncio.wait_for(task, 30)
        await hub.stop()
    return (f"From Pause (the last request already ended) to Ollama's `/api/ps` empty: "
            f"**{elapsed * 1000:.0f} ms**.")


def write_section(begin: str, end: str, heading: str, rows: list[str], how: str) -> None:
    """Replace the section between ``begin`` and ``end`` of bench/RESULTS.md (or add it)."""
    section = "\n".join([begin, heading, "", f"Measured {machine()}, with {how}.", "",
                         *rows, end])
    text = RESULTS.read_text()
    if begin in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    Path(RESULTS).write_text(text)


def write(rows: list[str]) -> None:
    write_section(BEGIN, END, f"### The real Ollama ({OLLAMA_VERSION}, tiny model, CPU)", rows,
                  "`python -m bench.real_ollama`")


def main(description: str, measure: Callable[[bool], Coroutine[Any, Any, list[str]]],
         write: Callable[[list[str]], None]) -> None:
    """A benchmark's command line: ``--quick`` for fewer runs, ``--write`` to keep it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--write", action="store_true", help="keep the table in RESULTS.md")
    arguments = parser.parse_args()
    table = asyncio.run(measure(arguments.quick))
    print("\n".join(table))
    if arguments.write:
        write(table)


if __name__ == "__main__":
    main("GhubAi Tray and the real Ollama", measure, write)

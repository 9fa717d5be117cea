"""``make bench-servers``: the relay with llama.cpp's ``llama-server`` beside the real Ollama.

For each real server built by ``make setup``, on the tiny generated model, streamed,
each figure against its baseline in the same run: the time to the first token straight
from the server and through a headless worker and the test hub; the time between
chunks (the stream's pace) the same two ways; and the worker process's CPU time per
relayed chunk, read from /proc, less what it spends idle over the same time (its
polls and heartbeats, measured just before). ``llama-server`` is asked twice through the worker:
with OpenAI's request (passed through) and with Ollama's ``/api/chat`` (translated to
``/v1/chat/completions`` and its answer written back as Ollama's lines); its direct
baseline is its own ``/v1/chat/completions``, the only chat it has. With ``--write``
the table replaces its section of bench/RESULTS.md.

    python -m bench.model_servers [--quick] [--write]
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common import worker_env
from bench.real_ollama import main, write_section
from bench.run import CLOCK_TICKS, arrivals
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.llama_cpp_server import LlamaCppServer
from tests.testbed.llm import MODEL_ALIAS
from tests.testbed.real_ollama import MODEL as OLLAMA_MODEL
from tests.testbed.real_ollama import RealOllama

TOKEN = "bench-token"
BEGIN, END = "<!-- model-servers:begin -->", "<!-- model-servers:end -->"
TOKENS = 64
MESSAGES = [{"role": "user", "content": "the sky is"}]


@dataclass(frozen=True)
class Case:
    server: str
    model: str
    endpoint: str  # what the hub's client asks
    direct: str  # the server's own endpoint the baseline asks


def _body(case: Case, endpoint: str) -> dict[str, Any]:
    if endpoint.startswith("/v1"):
        return {"model": case.model, "stream": True, "max_tokens": TOKENS, "temperature": 0,
                "messages": MESSAGES}
    return {"model": case.model, "stream": True, "messages": MESSAGES,
            "options": {"num_predict": TOKENS, "temperature": 0}}


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def _idle_cpu_rate(pid: int, seconds: float = 3.0) -> float:
    """The worker's CPU seconds per second with nothing to relay (its polls and
    heartbeats), taken off each request's figure so that it is the relay's alone."""
    before = _cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (_cpu_seconds(pid) - before) / seconds


async def _relayed(hub: GridHub, case: Case, body: dict[str, Any]) -> list[float]:
    target = "RequestOpenAI" if case.endpoint.startswith("/v1") else "RequestInference"
    started = time.perf_counter()
    request = await hub.dispatch(case.model, case.endpoint, body, target)
    times = []
    async for _ in request.stream():
        times.append(time.perf_counter() - started)
    await request.wait(120)
    return times


async def measure_server(url: str, cases: list[Case], runs: int) -> list[str]:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", "--headless",
        env={**worker_env(hub.url, url, TOKEN), "GHUBAI_OWNER_FIRST": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        await hub.wait_until(lambda: hub.node_for(cases[0].model), 60, "the worker to register")
        async with httpx.AsyncClient(timeout=120) as client:
            for case in cases:
                direct_body = _body(case, case.direct)
                relay_body = _body(case, case.endpoint)
                await arrivals(client, f"{url}{case.direct}", direct_body, True)  # loaded
                idle = await _idle_cpu_rate(proc.pid)
                direct, relayed, cpu, chunks = [], [], 0.0, 0
                for _ in range(runs):
                    direct.append(await arrivals(client, f"{url}{case.direct}", direct_body,
                                                 case.direct.startswith("/v1")))
                    before, started = _cpu_seconds(proc.pid), time.perf_counter()
                    times = await _relayed(hub, case, relay_body)
                    cpu += (_cpu_seconds(proc.pid) - before
                            - idle * (time.perf_counter() - started))
                    chunks += len(times)
                    relayed.append(times)
                first_d = statistics.median(t[0] for t in direct)
                first_r = statistics.median(t[0] for t in relayed)
                gap_d = statistics.median(g for t in direct for g in _gaps(t))
                gap_r = statistics.median(g for t in relayed for g in _gaps(t))
                rows.append(
                    f"| {case.server} | `{case.endpoint}` | {first_d * 1000:.1f} ms | "
                    f"{first_r * 1000:.1f} ms | {(first_r - first_d) * 1000:+.1f} ms | "
                    f"{gap_d * 1000:.2f} ms | {gap_r * 1000:.2f} ms | "
                    f"{cpu / runs * 1000:.1f} ms ({cpu / max(chunks, 1) * 1e6:.0f} µs) |")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        await hub.stop()
    return rows


async def measure(quick: bool) -> list[str]:
    runs = 5 if quick else 20
    rows = ["| server | the hub's request | first token direct p50 | through the worker p50 "
            "| added | chunk gap direct p50 | chunk gap relayed p50 "
            "| worker CPU per request (per chunk) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    ollama = RealOllama()
    url = await ollama.start()
    try:
        rows += await measure_server(url, [
            Case("Ollama", OLLAMA_MODEL, "/api/chat", "/api/chat"),
            Case("Ollama", OLLAMA_MODEL, "/v1/chat/completions", "/v1/chat/completions")],
            runs)
    finally:
        await ollama.stop()
    llama = LlamaCppServer()
    url = await asyncio.to_thread(llama.start_sync)
    try:
        rows += await measure_server(url, [
            Case("llama-server", MODEL_ALIAS, "/v1/chat/completions", "/v1/chat/completions"),
            Case("llama-server", MODEL_ALIAS, "/api/chat", "/v1/chat/completions")], runs)
    finally:
        await asyncio.to_thread(llama.stop_sync)
    return rows


def write(rows: list[str]) -> None:
    write_section(BEGIN, END, f"### The relay with each model server ({TOKENS} tokens, "
                  "tiny model, CPU)", rows, "`python -m bench.model_servers`")


if __name__ == "__main__":
    main("the relay with each real model server", measure, write)

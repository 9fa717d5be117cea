"""``python -m bench.hostile_cost``: what hostile bodies cost the real Ollama, direct and
through the worker, and what the worker itself holds for them.

For each attack of issue 22, sent once straight to Ollama (the client gives up after
:data:`CLIENT_WAIT` seconds, as a paused worker's connection would end) and once through
the test hub and a headless worker: Ollama's CPU seconds in the :data:`AFTER` seconds
after the client left (direct) or the worker answered, read from /proc. Ollama is
started afresh for each direct attack (the worst ones run for minutes). Then the
worker's peak RSS per MB of a hostile body and of a hostile hub record, and the context
and keep-alive Ollama used for requests that name none, under an owner's
``OLLAMA_CONTEXT_LENGTH=65536`` and the worker's ``max_keep_alive`` at 60 s. With
``--write`` the tables replace their section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import worker_env
from bench.real_ollama import write_section
from tests.processes import memory_mb
from tests.testbed.hub import RS, GridHub
from tests.testbed.real_ollama import MODEL, OLLAMA_VERSION, RealOllama

TOKEN = "bench-token"
CLIENT_WAIT = 10.0
AFTER = 5.0
BEGIN, END = "<!-- hostile-cost:begin -->", "<!-- hostile-cost:end -->"
CHAT_TAIL = {"stream": False, "options": {"num_predict": 1}}
SUMMARY = {"type": "object", "properties": {"summary": {"type": "string", "maxLength": 5000}}}

ATTACKS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "1,000,000 empty messages (3 MB)": ("/api/chat", lambda: {
        "model": MODEL, "messages": [{}] * 1_000_000, **CHAT_TAIL}),
    "1,000 messages of 64 bytes (64 KB)": ("/api/chat", lambda: {
        "model": MODEL, "messages": [{"role": "user", "content": "the sky is blue " * 4}]
        * 1000, **CHAT_TAIL}),
    "100,000 embedding inputs": ("/api/embed", lambda: {
        "model": MODEL, "input": ["a"] * 100_000}),
    "a 1,000,000-token context": ("/api/generate", lambda: {
        "model": MODEL, "prompt": "x", "context": [1] * 1_000_000, **CHAT_TAIL}),
    "a maxLength 5000 schema": ("/api/chat", lambda: {
        "model": MODEL, "format": SUMMARY, "messages": [{"role": "user", "content": "hi"}],
        **CHAT_TAIL}),
}


MEMORY_NOTE = ("\nA record over 3 MB per MB: websockets holds a message up to three times "
               "as it completes it (its read buffer, the frame's bytes, the decoded text) "
               "before the worker sees any of it.")
CONTEXT_NOTE = ("\nOllama's OpenAI layer reads neither `num_ctx` nor `keep_alive`: the "
                "worker serves `/v1` requests through the native API with the owner's "
                "ceilings, and writes the answer back as `/v1` would (docs/PROTOCOL.md).")


def owners_ollama() -> RealOllama:
    return RealOllama(environment={"OLLAMA_CONTEXT_LENGTH": "65536"}, n_ctx=131_072)


async def cpu_after(ollama: RealOllama, seconds: float) -> float:
    """Ollama's CPU seconds over the next ``seconds`` (the measure is the wait itself)."""
    start = ollama.cpu_seconds()
    await asyncio.sleep(seconds)
    return ollama.cpu_seconds() - start


async def direct(endpoint: str, body: dict[str, Any]) -> str:
    ollama = owners_ollama()
    url = await ollama.start()
    try:
        async with httpx.AsyncClient(timeout=CLIENT_WAIT) as client:
            await client.post(f"{url}/api/chat", json={  # a runner to watch
                "model": MODEL, "messages": [{"role": "user", "content": "hi"}], **CHAT_TAIL})
            runners = ollama.runners()
            try:
                answer = await client.post(f"{url}{endpoint}", json=body)
                status = f"{answer.status_code}"
            except httpx.TimeoutException:
                status = f"no answer in {CLIENT_WAIT:g} s"
        cpu = await cpu_after(ollama, AFTER)
        crashed = bool(runners) and not set(runners) & set(ollama.runners())
        return f"{status}{', runner crashed' if crashed else ''}: {cpu:.1f} s"
    finally:
        await ollama.stop()


async def measure() -> list[str]:
    rows = [f"| attack | straight to Ollama: answer, CPU in the {AFTER:g} s after the client "
            f"left ({CLIENT_WAIT:g} s) | through the worker: its answer | Ollama CPU in the "
            f"{AFTER:g} s after |", "|---|---|---|---:|"]
    ollama = owners_ollama()
    url = await ollama.start()
    hub = GridHub(tokens=[TOKEN])
    await hub.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", "--headless",
        # an owner's keep-alive shorter than Ollama's default, so that the table tells them
        # (owner first off: the bench's own requests straight to Ollama are no owner's)
        env={**worker_env(hub.url, url, TOKEN), "GHUBAI_MAX_KEEP_ALIVE": "60",
             "GHUBAI_OWNER_FIRST": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        await hub.wait_until(lambda: hub.node_for(MODEL), 60, "the worker to register")
        for name, (endpoint, body) in ATTACKS.items():
            straight = await direct(endpoint, body())
            request = await hub.dispatch(MODEL, endpoint, json.dumps(body()))
            answer = await request.wait(120)
            cpu = await cpu_after(ollama, AFTER)
            said = json.loads(answer).get("error", "served") if answer.startswith("{") \
                else answer
            rows.append(f"| {name} | {straight} | {said[:90]} | {cpu:.2f} s |")
        rows += ["", *await memory(hub, proc.pid), "",
                 *await context(url, hub), CONTEXT_NOTE]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        await hub.stop()
        await ollama.stop()
    return rows


async def memory(hub: GridHub, pid: int) -> list[str]:
    """Peak RSS growth per MB: a body first, then a larger record (the peak only rises)."""
    _, baseline = memory_mb(pid)
    body = json.dumps({"model": MODEL})[:-1] + ',"messages":[' + "{}," * 9_600_000 + "{}]}"
    await (await hub.dispatch(MODEL, "/api/chat", body)).wait(120)
    peak_body, _ = memory_mb(pid)
    node = hub.node_for(MODEL)
    assert node is not None
    record = '{"type":1,"target":"RequestInference","arguments":[' + "[]," * 27_000_000
    await hub.send_raw(node.connection_id, record + "[]]}" + RS)
    await hub.wait_until(lambda: hub.node_for(MODEL) is not None, 60, "the worker")
    await (await hub.dispatch(MODEL, "/api/chat", {"model": MODEL, "messages": [
        {"role": "user", "content": "hi"}], **CHAT_TAIL})).wait(120)
    peak_record, _ = memory_mb(pid)
    body_mb, record_mb = len(body) / 2**20, len(record) / 2**20
    return ["| hostile input | size | worker's peak RSS growth | per MB (goal ≤ 3) |",
            "|---|---:|---:|---:|",
            f"| a body of empty messages | {body_mb:.0f} MB | {peak_body - baseline:.0f} MB | "
            f"{(peak_body - baseline) / body_mb:.1f} |",
            f"| one hub record of `[]` | {record_mb:.0f} MB | {peak_record - baseline:.0f} MB "
            f"| {(peak_record - baseline) / record_mb:.1f} |",
            # said only when it is so (2.5 to 3.3 across runs)
            *([MEMORY_NOTE] if (peak_record - baseline) / record_mb > 3 else [])]


async def context(url: str, hub: GridHub) -> list[str]:
    rows = ["| request naming no context or keep-alive | context Ollama used | "
            "kept loaded for |", "|---|---:|---:|"]
    native = {"model": MODEL, "prompt": "hi", "stream": False}
    v1 = {"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=120) as client:
        for name, endpoint, body, through in (
                ("native, straight to Ollama", "/api/generate", native, False),
                ("native, through the worker", "/api/generate", native, True),
                ("`/v1`, straight to Ollama", "/v1/chat/completions", v1, False),
                ("`/v1`, through the worker", "/v1/chat/completions", v1, True)):
            if through:
                await (await hub.dispatch(MODEL, endpoint, body)).wait(120)
            else:
                await client.post(f"{url}{endpoint}", json=body)
            ended = datetime.now(UTC)
            (loaded,) = (await client.get(f"{url}/api/ps")).json()["models"]
            expires = datetime.fromisoformat(loaded["expires_at"][:26].rstrip("Z") + "+00:00")
            rows.append(f"| {name} | {loaded['context_length']:,} | "
                        f"{(expires - ended).total_seconds():.0f} s |")
    return rows


def write(rows: list[str]) -> None:
    write_section(BEGIN, END, f"### Hostile bodies and the real Ollama ({OLLAMA_VERSION}, "
                  "tiny model, CPU)", rows,
                  "`python -m bench.hostile_cost` (how: its docstring)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="What hostile bodies cost, and do not")
    parser.add_argument("--write", action="store_true", help="keep the tables in RESULTS.md")
    arguments = parser.parse_args()
    started = time.monotonic()
    table = asyncio.run(measure())
    print("\n".join(table))
    print(f"({time.monotonic() - started:.0f} s)")
    if arguments.write:
        write(table)

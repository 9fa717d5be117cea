"""``make demo``: the whole thing working, in one command, for a newcomer to watch.

Starts the test hub (port 5080), the Ollama stand-in (port 11500) or, with
``--llm``, the real Ollama (built by ``make setup``) on the tiny model, then
GhubAi Tray itself (the tray, or ``--headless``) with its own
settings and logs under ``.demo/`` (your real settings are not touched), and
asks the hub for a streamed chat completion every few seconds, printing the
answer as it arrives. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path

import httpx

from tests.processes import SPAWN_FLAGS, marked, python_for, stop_child
from tests.testbed._util import main_guard, on_stop_signals
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.real_ollama import MODEL as REAL_MODEL
from tests.testbed.real_ollama import RealOllama

TOKEN = "demo-token"


async def ask_forever(hub: GridHub, model: str, every: float) -> None:
    number = 0
    async with httpx.AsyncClient(timeout=120) as client:
        while True:
            await asyncio.sleep(every)
            number += 1
            if not hub.models():
                print(f"[demo] request {number}: no worker has registered yet", flush=True)
                continue
            body = {"model": model, "stream": True, "max_tokens": 24,
                    "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
            print(f"[demo] request {number}: ", end="", flush=True)
            async with client.stream("POST", f"{hub.base}/v1/chat/completions",
                                     json=body) as response:
                async for line in response.aiter_lines():
                    data = line.removeprefix("data: ").strip()
                    if not data or data == "[DONE]":
                        continue
                    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                        event = json.loads(data)
                        if "error" in event:
                            print(f"[error] {event['error'].get('message')}", end="", flush=True)
                            continue
                        delta = event["choices"][0]["delta"].get("content") or ""
                        print(delta, end="", flush=True)
            print(flush=True)


async def demo(args: argparse.Namespace) -> int:
    root = Path(".demo").resolve()
    hub = GridHub(port=args.hub_port, tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    backend: OllamaStandIn | RealOllama
    if args.llm:
        backend = RealOllama(port=args.ollama_port)
        model = REAL_MODEL
    else:
        backend = OllamaStandIn(port=args.ollama_port, token_delay=0.08)
        model = "llama3.2:1b"
    await backend.start()
    print(f"[demo] hub {hub.url} (token {TOKEN}), Ollama at {backend.url}", flush=True)
    env = {**os.environ, "HUB_URL": hub.url, "OLLAMA_LOCAL_URL": backend.url,
           "PROVIDER_TOKEN": TOKEN, "GHUBAI_CONFIG": str(root / "config.toml"),
           "GHUBAI_LOG_DIR": str(root / "logs"), "XDG_DATA_HOME": str(root / "data"),
           # "Start at login" in the demo writes the demo's autostart entry, not the user's
           "XDG_CONFIG_HOME": str(root / "xdg-config"),
           "GHUBAI_MACHINE_NAME": "demo-machine"}
    env = marked(env)
    command = [*python_for(env), "-m", "ghubai_tray"] + (["--headless"] if args.headless else [])
    app = await asyncio.create_subprocess_exec(*command, env=env, **SPAWN_FLAGS)
    asker = asyncio.create_task(ask_forever(hub, model, args.every))
    stop = asyncio.Event()
    on_stop_signals(stop.set)
    ended = asyncio.create_task(app.wait())
    await asyncio.wait([asyncio.create_task(stop.wait()), ended],
                       return_when=asyncio.FIRST_COMPLETED)
    asker.cancel()
    if app.returncode is None:
        stop_child(app, env)
        await app.wait()
    await backend.stop()
    await hub.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--llm", action="store_true", help="real tokens from the real Ollama")
    parser.add_argument("--headless", action="store_true", help="no tray icon")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between requests")
    parser.add_argument("--hub-port", type=int, default=5080)
    parser.add_argument("--ollama-port", type=int, default=11500)
    return asyncio.run(demo(parser.parse_args(argv)))


if __name__ == "__main__":
    main_guard(main)

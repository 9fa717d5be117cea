"""Running ``ghubai-tray`` as a real process, the way people run it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn

SEED_VARIABLES = ("HUB_URL", "PROVIDER_TOKEN", "OLLAMA_LOCAL_URL", "ALLOW_INVALID_CERTS")


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """Our config and logs in tmp_path, no keyring session, none of the seed's variables."""
    base = {k: v for k, v in os.environ.items()
            if k not in SEED_VARIABLES and not k.startswith(("GHUBAI_", "DBUS_"))}
    base.update(GHUBAI_CONFIG=str(tmp_path / "config" / "config.toml"),
                GHUBAI_LOG_DIR=str(tmp_path / "logs"), HOME=str(tmp_path / "home"),
                XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONUNBUFFERED="1")
    return base


def offline_environment(home: Path) -> dict[str, str]:
    """Configured, with a token, but nothing answers at the hub's or Ollama's address
    (port 9, discard): for tests of the app itself rather than of its connections."""
    from tests.worker_bed import TOKEN

    return {**clean_environment(home), "XDG_RUNTIME_DIR": str(home), "PROVIDER_TOKEN": TOKEN,
            "HUB_URL": "http://127.0.0.1:9/gridhub", "OLLAMA_LOCAL_URL": "http://127.0.0.1:9"}


async def cli(*args: str, env: dict[str, str], stdin: bytes = b"",
              timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@dataclass
class Headless:
    """A ``ghubai-tray --headless`` process between a test hub and an Ollama stand-in."""

    process: asyncio.subprocess.Process
    hub: GridHub
    ollama: OllamaStandIn
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@asynccontextmanager
async def headless_worker(tmp_path: Path, *, hub: GridHub | None = None,
                          ollama: OllamaStandIn | None = None, **variables: str
                          ) -> AsyncIterator[Headless]:
    """Start hub, stand-in and a headless worker (its models registered once this yields);
    stop all,
    the worker by SIGTERM, at the end. ``variables`` are added to its environment."""
    from tests.worker_bed import TOKEN

    hub = hub or GridHub(tokens=[TOKEN])
    ollama = ollama or OllamaStandIn()
    await hub.start()
    await ollama.start()
    env = {**clean_environment(tmp_path), "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
           "OLLAMA_LOCAL_URL": ollama.url, **variables}
    stderr_path = tmp_path / "worker-stderr.txt"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ghubai_tray", "--headless", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
    try:
        await hub.wait_until(lambda: any(n.models for n in hub.nodes.values()), 60,
                             "the headless worker to register its models")
        yield Headless(process, hub, ollama, stderr_path)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        await hub.stop()
        await ollama.stop()

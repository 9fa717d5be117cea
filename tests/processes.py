"""Running ``ghubai-tray`` as a real process, the way people run it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

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

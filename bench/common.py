"""What ``make bench`` and ``make soak`` share: a worker's environment and its memory."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def worker_env(hub_url: str, ollama_url: str, token: str, concurrency: int = 2) -> dict[str, str]:
    """The environment of a worker process with its config, logs and data in a fresh
    temporary folder, so that nothing of the user's own set-up takes part."""
    home = Path(tempfile.mkdtemp(prefix="ghubai-bench-"))
    return {**os.environ, "HUB_URL": hub_url, "PROVIDER_TOKEN": token,
            "OLLAMA_LOCAL_URL": ollama_url, "GHUBAI_CONFIG": str(home / "config.toml"),
            "GHUBAI_LOG_DIR": str(home / "logs"), "XDG_DATA_HOME": str(home / "data"),
            "XDG_RUNTIME_DIR": str(home), "GHUBAI_MAX_CONCURRENT_REQUESTS": str(concurrency),
            # the benchmarks' long streams (60,000 chunks) exceed the default output ceiling
            "GHUBAI_MAX_OUTPUT_TOKENS": "1048576"}


@dataclass(frozen=True)
class Memory:
    """RSS counts shared libraries in full; PSS splits them among their users;
    private is what this process alone holds (freed when it exits)."""

    rss: float
    pss: float
    private: float


def memory_of(pid: int) -> Memory:
    kb = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        kb[name] = int(value.split()[0])
    return Memory(rss=kb["Rss"] / 1024, pss=kb["Pss"] / 1024,
                  private=(kb["Private_Clean"] + kb["Private_Dirty"]) / 1024)

"""The real Ollama server, built from its Go module, serving the tiny generated model.

``make setup`` builds ``github.com/ollama/ollama`` at :data:`OLLAMA_VERSION` (CPU only)
into ``~/.cache/ghubai-tray/ollama-VERSION/`` once; Go module zips leave out Ollama's
``vendor/`` folder, so the three C++ headers it needs come from Debian
(``nlohmann-json3-dev``, ``libstb-dev``) and from PyPI's ``miniaudio`` sdist. This module
starts that binary with a private ``OLLAMA_MODELS`` and ``OLLAMA_HOST``, imports the tiny
GGUF of :mod:`tests.testbed.llm` as ``tiny-llama:latest`` (a Modelfile ``FROM`` the file),
and stops it again. ``python -m tests.testbed.real_ollama --port P`` prints its base URL
once the model is served and runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.testbed._util import SubprocessServer, cache_dir, main_guard, run_main
from tests.testbed.llm import write_tiny_model

OLLAMA_VERSION = "0.17.4"
MODEL = "tiny-llama:latest"
OLLAMA_MISSING = (f"the real Ollama ({OLLAMA_VERSION}) is not built, so the real-Ollama tests "
                  "cannot run: `make setup` builds it from its Go module (about 9 minutes once)")


def binary_path() -> Path:
    return cache_dir() / f"ollama-v{OLLAMA_VERSION}" / "ollama"


def real_ollama_available() -> bool:
    return binary_path().is_file() and os.access(binary_path(), os.X_OK)


class RealOllama(SubprocessServer):
    """``ollama serve`` on loopback with its own model folder; ``start_sync()`` returns its URL."""

    stop_wait = 15.0

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 environment: dict[str, str] | None = None, n_ctx: int = 512) -> None:
        """``environment``: more ``OLLAMA_*`` variables, as an owner sets them (say
        ``OLLAMA_CONTEXT_LENGTH``); ``n_ctx``: the context the tiny model was trained for,
        the most Ollama gives it."""
        super().__init__(host, port)
        self.environment = environment or {}
        self.n_ctx = n_ctx

    def _env(self, home: Path) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")},
                "OLLAMA_HOST": f"{self.host}:{self.port}", "OLLAMA_MODELS": str(home / "models"),
                "HOME": str(home), "OLLAMA_NO_CLOUD": "1", "OLLAMA_NUM_PARALLEL": "1",
                **self.environment}

    def start_sync(self, timeout: float = 120.0) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="ghubai-ollama-")
        home = Path(self._tmp.name)
        env = self._env(home)
        self.log_path = home / "ollama.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([str(binary_path()), "serve"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():  # readiness is an event we poll for
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop_sync()
                raise RuntimeError(f"Ollama did not start: {self._log_tail()}")
            time.sleep(0.1)
        model = write_tiny_model(home / "tiny.gguf", n_ctx=self.n_ctx)
        (home / "Modelfile").write_text(f"FROM {model}\n")
        created = subprocess.run([str(binary_path()), "create", MODEL.removesuffix(":latest"),
                                  "-f", str(home / "Modelfile")], env=env, capture_output=True,
                                 timeout=timeout, check=False)
        if created.returncode != 0:
            self.stop_sync()
            raise RuntimeError(f"ollama create failed: {created.stderr.decode()[-2000:]}")
        return self.url

    def _answers(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/api/version", timeout=2).status_code == 200
        return False

    def processes(self) -> list[int]:
        """The pids of ``ollama serve`` and of every runner it started (Linux)."""
        assert self.proc is not None
        found = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                # the parent pid is the 4th field, after "(name)", which may hold spaces
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == \
                        self.proc.pid:
                    found.append(int(entry.name))
        return found

    def runners(self) -> list[int]:
        """The pids of the model runners alive now: a runner that crashed has a new pid."""
        return [pid for pid in self.processes() if pid != (self.proc and self.proc.pid)]

    def cpu_seconds(self) -> float:
        """CPU time used so far by Ollama and its runners, from /proc: user and system time,
        and that of runners already ended (their parent's children times)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.processes():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += sum(int(f) for f in fields[11:15]) / ticks
        return total

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path else ""



def _build(args: argparse.Namespace) -> RealOllama:
    return RealOllama(args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    if not real_ollama_available():
        print(OLLAMA_MISSING, file=sys.stderr)
        return 1
    return run_main("The real Ollama on the tiny generated model", lambda parser: None, _build,
                    argv)


if __name__ == "__main__":
    main_guard(main)

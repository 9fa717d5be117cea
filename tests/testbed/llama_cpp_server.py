"""llama.cpp's own ``llama-server``, built from the llama.cpp source that the
llama-cpp-python sdist carries, serving the tiny generated model.

``make setup`` (``make llama-server-deps``) builds it once into
``~/.cache/ghubai-tray/llama-server-VERSION/`` with cmake: no web UI (it would be
fetched from a host this machine cannot reach), no curl, portable CPU code, static
libraries, so the one file runs on its own (about 10 minutes on 2 cores). This module
starts it on loopback and waits for ``/health`` to say ``ok``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.testbed._util import SubprocessServer, cache_dir
from tests.testbed.llm import MODEL_ALIAS, write_tiny_model

LLAMA_CPP_VERSION = "0.3.36"  # the llama-cpp-python release whose sdist is built (Makefile)
LLAMA_SERVER_MISSING = ("llama.cpp's llama-server is not built, so its tests cannot run: "
                        "`make setup` builds it (about 10 minutes once)")


def binary_path() -> Path:
    return cache_dir() / f"llama-server-{LLAMA_CPP_VERSION}" / "llama-server"


def llama_cpp_server_available() -> bool:
    return binary_path().is_file() and os.access(binary_path(), os.X_OK)


class LlamaCppServer(SubprocessServer):
    """``llama-server -m tiny.gguf`` on loopback; ``start_sync()`` returns its URL."""

    def start_sync(self, timeout: float = 120.0) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="ghubai-llama-server-")
        home = Path(self._tmp.name)
        model = write_tiny_model(home / "tiny.gguf")
        self.log_path = home / "llama-server.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(binary_path()), "-m", str(model), "--alias", MODEL_ALIAS, "--host",
                 self.host, "--port", str(self.port), "-c", "512", "-t", "1", "-np", "1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._ready():  # readiness is an event we poll for
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop_sync()
                raise RuntimeError(f"llama-server did not start: {tail}")
            time.sleep(0.1)
        return self.url

    def _ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(f"{self.url}/health", timeout=2)
            return answer.status_code == 200 and answer.json().get("status") == "ok"
        return False

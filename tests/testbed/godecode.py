"""Ollama's own reading of a request body: ``tests/godecode`` built against Ollama's Go types.

Ollama decodes with Go's encoding/json, which a Python model of it can only
approximate, so the hostile-hub tests ask Go itself: the helper is compiled
from ``tests/godecode`` against the pinned ``github.com/ollama/ollama`` module
(``api`` and ``openai`` packages) and reads bodies line by line. The binary is
cached outside the checkout, keyed by the helper's sources, like the
llama.cpp wheel; ``make setup`` builds it (about a minute the first time).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ghubai_tray.core.request_body import Ceilings
from tests.testbed._util import cache_dir

SOURCE = Path(__file__).resolve().parent.parent / "godecode"
GO_MISSING = ("Go is not installed, so the tests that read bodies with Ollama's own Go types "
              "cannot run: `make setup` needs Go (see docs/DEVELOPING.md)")


def godecode_dir() -> Path:
    return cache_dir() / "godecode"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("main.go", "bridge.go", "go.mod", "go.sum"):
        digest.update((SOURCE / name).read_bytes())
    return digest.hexdigest()[:16]


def go_available() -> bool:
    if sys.platform == "win32":
        return False  # a Linux program here (under Wine, /usr/local/go would even "exist")
    return shutil.which("go") is not None or Path("/usr/local/go/bin/go").exists()


def binary_path() -> Path:
    return godecode_dir() / f"godecode-{_fingerprint()}"


def build() -> Path:
    """The helper's binary, built once per version of its sources."""
    target = binary_path()
    if target.exists():
        return target
    go = shutil.which("go") or "/usr/local/go/bin/go"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    subprocess.run([go, "build", "-o", str(partial), "."], cwd=SOURCE, check=True,
                   env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"})
    partial.replace(target)
    return target


class GoDecoder:
    """One running helper; ``decode(endpoint, body)`` returns Ollama's view of the body."""

    def __init__(self) -> None:
        self._process = subprocess.Popen([str(build())], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, encoding="utf-8")
        self._lock = threading.Lock()

    def decode(self, endpoint: str, body: bytes | str) -> dict[str, Any]:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return self._ask({"endpoint": endpoint, "body": text})

    def _ask(self, question: dict[str, Any]) -> dict[str, Any]:
        """One line to the helper, its one line back."""
        assert self._process.stdin is not None and self._process.stdout is not None
        with self._lock:
            self._process.stdin.write(json.dumps(question) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the godecode helper ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def bridge(self, endpoint: str, body: str, worker: bytes | None = None,
               native: list[str] | None = None) -> dict[str, Any]:
        """Ollama's OpenAI middleware run on ``body`` (see ``bridge.go``): the HTTP
        status it gives, the native request it makes (and ``worker``'s, read and
        written the same way), and what its writer makes of the ``native`` answer."""
        return self._ask({"op": "bridge", "endpoint": endpoint, "body": body,
                          "worker": (worker or b"").decode("utf-8"), "native": native or []})

    def close(self) -> None:
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()
        self._process.wait(timeout=10)


DEFAULT_CEILINGS = Ceilings()


def assert_within_ceilings(view: dict[str, Any], endpoint: str, model: str = "llama3.2:1b",
                           limits: Ceilings = DEFAULT_CEILINGS) -> None:
    """What Ollama would act on is inference on ``model`` within ``limits``."""
    assert not view.get("error"), view
    assert view["model"] == model
    # Every request carries the owner's keep-alive and context (a /v1 one is posted to
    # the native endpoint that serves it: see ghubai_tray/core/openai_bridge.py).
    assert view["keep_alive"] is not None, "the request must carry the owner's keep-alive"
    assert 0 <= view["keep_alive"] <= limits.keep_alive
    assert 1 <= view["num_ctx"] <= limits.context
    if endpoint in ("/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions"):
        assert 1 <= view["num_predict"] <= limits.output_tokens
    assert view["num_gpu"] == -1 and view["num_thread"] == 0 and view["main_gpu"] == 0
    assert view["num_batch"] == 512 and view["use_mmap"] is None
    assert view["template"] == "" and view["raw"] is False
    assert view["debug_render_only"] is False and view["steps"] == 0
    images = view["images"] or []
    assert len(images) <= limits.images
    assert all(size <= limits.image_bytes for size in images)


if __name__ == "__main__":
    print(build())

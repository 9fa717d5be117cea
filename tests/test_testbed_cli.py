"""Each test-bed server runs on its own: ``python -m tests.testbed.X`` prints its URL."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run_until_url(args: list[str], probe: str, expect: str | int) -> None:
    with subprocess.Popen([sys.executable, "-m", *args, "--port", "0"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()  # printed once the server is ready
            assert url.startswith("http://127.0.0.1:"), url
            base = url.removesuffix("/gridhub")
            method = "POST" if probe.endswith("negotiate") else "GET"
            resp = httpx.request(method, base + probe, timeout=30)
            if isinstance(expect, int):
                assert resp.status_code == expect
            else:
                assert expect in resp.text
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0


def test_hub_runs_standalone() -> None:
    _run_until_url(["tests.testbed.hub", "--token", "t"], "/gridhub/negotiate", 401)


def test_ollama_runs_standalone() -> None:
    _run_until_url(["tests.testbed.ollama"], "/", "Ollama is running")


@pytest.mark.llm
def test_llm_runs_standalone() -> None:
    _run_until_url(["tests.testbed.llm"], "/v1/models", "tiny-llama")

"""Each test-bed server runs on its own: ``python -m tests.testbed.X`` prints its URL."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.processes import SPAWN_FLAGS, marked, python_for, stop_child

ROOT = Path(__file__).resolve().parent.parent


def _run_until_url(args: list[str], probe: str, expect: str | int) -> None:
    env = marked(os.environ)
    with subprocess.Popen([*python_for(env), "-m", *args, "--port", "0"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **SPAWN_FLAGS) as proc:
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
            stop_child(proc, env, interrupt=True)
            assert proc.wait(30) == 0


def test_hub_runs_standalone() -> None:
    _run_until_url(["tests.testbed.hub", "--token", "t"], "/gridhub/negotiate", 401)


def test_ollama_runs_standalone() -> None:
    _run_until_url(["tests.testbed.ollama"], "/", "Ollama is running")


@pytest.mark.llm
def test_llm_runs_standalone() -> None:
    _run_until_url(["tests.testbed.llm"], "/v1/models", "tiny-llama")


def test_demo_relays_requests_through_a_headless_worker(tmp_path: Path) -> None:
    # Ports 0: any free ones; the demo keeps its settings and logs under .demo/ in its cwd.
    env = marked({**os.environ, "PYTHONPATH": str(ROOT)})
    with subprocess.Popen([*python_for(env), "-m", "tests.testbed.demo", "--headless",
                           "--every", "0.5", "--hub-port", "0", "--ollama-port", "0"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, **SPAWN_FLAGS) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # the demo prints each answer as it streams in
                if "Rayleigh scattering" in line:
                    break
            else:
                raise AssertionError("the demo never printed an answer")
        finally:
            stop_child(proc, env, interrupt=True)
            assert proc.wait(30) == 0
    assert (tmp_path / ".demo" / "logs" / "ghubai-tray.log").exists()

"""The container image as an operator runs it: headless on the host's network, against the
test hub and the Ollama stand-in on loopback.

Run by ``make docker-check``, which installs Debian's Docker engine and debootstrap, starts
the engine, builds ``installer/Dockerfile`` on a Debian base (tests/testbed/container.py) and
sets ``GHUBAI_DOCKER_IMAGE``. Every check talks to the real engine and the real image.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.ollama import OllamaStandIn

IMAGE = os.environ.get("GHUBAI_DOCKER_IMAGE", "")
pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not IMAGE, reason="set GHUBAI_DOCKER_IMAGE (make docker-check "
                                                   "does)"),
              pytest.mark.skipif(sys.platform == "win32", reason="Docker's Linux engine")]
MODELS = ("llama3.2:1b", "mistral:7b")
# A token of this run's own: found anywhere in the image or the container's files, it came
# from the run, which nothing of it may keep.
TOKEN = f"container-token-{uuid.uuid4().hex}"
CANARY = "CANARY-container-prompt"


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def inspect(name: str, template: str) -> str:
    return docker("inspect", "-f", template, name)


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[tuple[str, GridHub]]:
    """The image running headless on the host's network, registered with the test hub; its
    own health check (``ghubai-tray doctor``) every 2 s instead of the image's 60 s."""
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    # 40 tokens 0.1 s apart: a request that lasts 4 s, streamed the whole time
    ollama = OllamaStandIn(token_delay=0.1, reply_tokens=[f"w{i} " for i in range(40)])
    await hub.start()
    await ollama.start()
    name = f"ghubai-check-{uuid.uuid4().hex[:8]}"
    try:
        docker("run", "-d", "--name", name, "--network", "host",
               "--health-interval", "2s", "--health-start-period", "5s",
               "-e", f"HUB_URL={hub.url}", "-e", f"OLLAMA_LOCAL_URL={ollama.url}",
               "-e", f"PROVIDER_TOKEN={TOKEN}", "-e", "GHUBAI_MACHINE_NAME=container", IMAGE)
        try:
            await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()),
                                 60, "the container's worker to register")
        except AssertionError:
            raise AssertionError(docker("logs", name)) from None
        yield name, hub
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60,
                       check=False)
        await hub.stop()
        await ollama.stop()


def _chat(number: int) -> dict[str, object]:
    return {"model": "llama3.2:1b", "stream": True,
            "messages": [{"role": "user", "content": f"{CANARY} {number}"}]}


async def test_the_image_relays_a_streamed_answer_runs_as_a_user_and_turns_healthy(
        container: tuple[str, GridHub]) -> None:
    name, hub = container
    req = await hub.dispatch("llama3.2:1b", "/api/chat", _chat(1))
    fragments = []
    async with asyncio.timeout(60):
        async for fragment in req.stream():
            fragments.append(fragment)
    lines = [json.loads(f) for f in fragments]
    assert len(lines) >= 40, "the answer came as one block, not streamed"
    assert lines[-1]["done"] is True and "error" not in lines[-1]
    assert "".join(line["message"]["content"] for line in lines) == "".join(
        f"w{i} " for i in range(40))

    assert inspect(name, "{{.Config.User}}") not in ("", "root", "0")
    assert docker("exec", name, "id", "-u") != "0"
    async with asyncio.timeout(90):
        while (health := inspect(name, "{{.State.Health.Status}}")) != "healthy":
            assert health in ("starting", "healthy"), docker("inspect", name)
            await asyncio.sleep(1)  # the engine's health check has no event to wait on
    status = docker("exec", name, "ghubai-tray", "status")
    assert "Sharing 2 models" in status, status
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True,
                          timeout=60, check=False)
    assert "state:" in logs.stderr + logs.stdout
    assert TOKEN not in logs.stderr + logs.stdout and CANARY not in logs.stderr + logs.stdout


async def test_docker_stop_lets_the_running_request_finish_and_exits_0(
        container: tuple[str, GridHub]) -> None:
    name, hub = container
    req = await hub.dispatch("llama3.2:1b", "/api/chat", _chat(2))
    first = await anext(aiter(req.stream()))
    assert json.loads(first)["done"] is False
    started = time.monotonic()
    # docker stop's own timeout (10 s, then SIGKILL): the image's grace must fit in it
    stopping = asyncio.create_task(asyncio.to_thread(docker, "stop", name))
    await req.wait(60)
    await stopping
    took = time.monotonic() - started
    final = json.loads(req.fragments[-1])
    assert final["done"] is True and "error" not in final, final
    assert len(req.fragments) >= 40
    assert inspect(name, "{{.State.ExitCode}}") == "0"
    assert took < 10, f"docker stop took {took:.1f} s"


async def test_no_token_in_the_images_layers_or_environment_or_the_containers_files(
        container: tuple[str, GridHub], tmp_path: Path) -> None:
    name, hub = container
    await (await hub.dispatch("llama3.2:1b", "/api/chat", _chat(3))).wait(60)
    env = json.loads(docker("image", "inspect", "-f", "{{json .Config.Env}}", IMAGE))
    assert not [e for e in env if e.split("=", 1)[0] in ("PROVIDER_TOKEN", "GHUBAI_TOKEN")]
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE)
    assert "PROVIDER_TOKEN" not in history
    image_tar = tmp_path / "image.tar"
    docker("save", "-o", str(image_tar), IMAGE, timeout=300)
    # what the running worker wrote (settings, logs, the ledger) is in the container's layer
    files_tar = tmp_path / "files.tar"
    docker("export", "-o", str(files_tar), name, timeout=300)
    for archive in (image_tar, files_tar):
        assert not _holds(archive, TOKEN.encode()), f"the token is in {archive.name}"
    assert not _holds(files_tar, CANARY.encode())
    # the scan does reach into the layers and the worker's own files
    assert _holds(image_tar, b"def run_headless(")
    assert _holds(files_tar, b"llama3.2:1b")
    written = docker("diff", name)
    assert "/home/ghubai" in written, written  # it did write its state, only not the token


def _holds(archive: Path, needle: bytes) -> bool:
    """Whether any file in the tar (and in the tars inside it: an image's layers) holds it."""
    with tarfile.open(archive) as outer:
        for member in outer:
            if not member.isfile():
                continue
            data = outer.extractfile(member)
            assert data is not None
            content = data.read()
            if needle in content:
                return True
            if member.name.endswith(".tar"):
                inner = archive.with_suffix(".inner.tar")
                inner.write_bytes(content)
                try:
                    if _holds(inner, needle):
                        return True
                finally:
                    inner.unlink()
    return False

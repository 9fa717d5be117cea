"""What the worker does at an address where a model server other than Ollama answers:
it says which server it is, and shares nothing (GhubAi Tray's limits are written for
Ollama's parameters, and KoboldCpp even answers Ollama's own routes)."""

from __future__ import annotations

import httpx
import pytest

from ghubai_tray.core import texts
from ghubai_tray.core.state import OllamaStatus
from tests.testbed.model_servers import KOBOLD_VERSION, LLAMA_BUILD, Kind, ModelServerStandIn
from tests.worker_bed import running_bed


@pytest.mark.parametrize("kind,shown", [
    (Kind.KOBOLDCPP, f"KoboldCpp {KOBOLD_VERSION}"),
    (Kind.LMSTUDIO, "LM Studio"),
    (Kind.LLAMACPP, f"llama.cpp's llama-server {LLAMA_BUILD}"),
])
async def test_another_server_is_named_and_nothing_is_shared(kind: Kind, shown: str) -> None:
    server = ModelServerStandIn(kind)
    await server.start()
    try:
        async with running_bed(ollama_url=server.url) as bed:
            snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.BAD_ANSWER,
                                             30, "the server to be told apart")
            assert snap.model_server == shown
            assert snap.ollama_reason == texts.NOT_OLLAMA.format(server=shown, url=server.url)
            assert snap.offered_models == ()
            await bed.hub.wait_until(lambda: bed.hub.registrations, 30, "a registration")
            assert all(r.models == () for r in bed.hub.registrations)
        # never asked for its models the Ollama way, nor anything but GET probes
        assert ("GET", "/api/tags") not in server.requests
        assert {m for m, _ in server.requests} == {"GET"}
    finally:
        await server.stop()


async def test_ollama_is_named_with_its_version() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        assert bed.worker.snapshot.model_server == "Ollama 0.12.6"


@pytest.mark.llm
async def test_llama_cpp_pythons_real_server_is_an_openai_compatible_one(
        llama_server: str) -> None:
    async with running_bed(ollama_url=llama_server) as bed:
        snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.BAD_ANSWER, 30,
                                         "the server to be told apart")
        assert snap.model_server == "an OpenAI-compatible server"
        assert snap.ollama_reason.startswith(f"{llama_server} is an OpenAI-compatible server, "
                                             "not Ollama: GhubAi Tray shares only Ollama's")
        assert snap.offered_models == ()


@pytest.mark.ollama
async def test_the_real_ollama_is_named_with_its_version(real_ollama: str) -> None:
    # what it says of itself: built from its Go module (not a release build, whose
    # version is linked in), it says 0.0.0
    version = httpx.get(f"{real_ollama}/api/version", timeout=30).json()["version"]
    async with running_bed(ollama_url=real_ollama) as bed:
        snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.REACHABLE, 60,
                                         "the real Ollama's models")
        assert snap.model_server == f"Ollama {version}"


@pytest.mark.llm
@pytest.mark.llamacpp
async def test_llama_cpps_own_server_is_named_with_its_build(llama_cpp_server: str) -> None:
    props = httpx.get(f"{llama_cpp_server}/props", timeout=30).json()
    async with running_bed(ollama_url=llama_cpp_server) as bed:
        snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.BAD_ANSWER, 30,
                                         "the server to be told apart")
        assert snap.model_server == f"llama.cpp's llama-server {props['build_info']}"
        assert snap.offered_models == ()

"""A hostile hub against the real worker: inference on shared models within the owner's limits,
and nothing more.

Each test is one attack from the hostile-hub trial, made through the test hub
against a live worker; what reached Ollama is judged by Ollama's own Go types
(``tests/godecode``) where it matters which field Ollama would act on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.config import Settings
from ghubai_tray.credentials import TokenSource
from ghubai_tray.errors import HubUnreachable
from ghubai_tray.hub import RS, incoming_limit, token_for_redirect
from ghubai_tray.state import Pause, PauseMode, Resume, State, Stop
from ghubai_tray.worker import MAX_PENDING_REFUSALS, Worker
from tests.processes import clean_environment
from tests.testbed.certs import LoopbackPKI, make_pki
from tests.testbed.godecode import GoDecoder
from tests.testbed.hub import GridHub, HubRequest
from tests.testbed.ollama import Fault, ModelInfo, OllamaStandIn
from tests.worker_bed import TOKEN, running_bed, with_settings

MODEL = "llama3.2:1b"
CHAT = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def go() -> Iterator[GoDecoder]:
    decoder = GoDecoder()
    yield decoder
    decoder.close()


def inference(ollama: OllamaStandIn) -> list[tuple[str, bytes]]:
    return [(r.path, r.body) for r in ollama.requests if r.method == "POST"]


async def final_of(request: HubRequest, timeout: float = 30.0) -> str:
    """The final chunk's fragment: "" when the request was served."""
    await request.wait(timeout)
    return str(request.chunks[-1]["tokenFragment"])


# -- 1 and 3: the body Ollama reads ------------------------------------------------------


@pytest.mark.go
async def test_a_second_model_key_never_runs_an_unshared_or_cloud_model(go: GoDecoder) -> None:
    ollama = OllamaStandIn(models=[ModelInfo(MODEL), ModelInfo("secret:latest"),
                                   ModelInfo("gpt-oss:120b-cloud", remote_model="gpt-oss:120b")])
    settings = with_settings(unshared_models=("secret:latest",))
    async with running_bed(ollama=ollama, settings=settings) as bed:
        await bed.registered(MODEL)
        for second in ("secret:latest", "gpt-oss:120b-cloud"):
            for key in ("Model", "MODEL", "mOdel"):
                body = json.dumps(CHAT)[:-1] + f', "{key}": "{second}"}}'
                assert go.decode("/api/chat", body)["model"] == second  # the trick, in Go
                final = await (await bed.request("/api/chat", body)).wait()
                assert final.startswith("[error] ") and "spells" in final
        assert inference(ollama) == [], "nothing of these requests reached Ollama"


@pytest.mark.go
async def test_what_reaches_ollama_is_the_shared_model_within_every_ceiling(
        go: GoDecoder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ghubai_tray")
    harmful = {**CHAT, "model": "LLAMA3.2:1B", "keep_alive": -1, "template": "{{.}}" * 99,
               "_debug_render_only": True,
               "options": {"num_ctx": 1_048_576, "num_predict": -1, "num_gpu": 0,
                           "num_thread": 256, "use_mmap": False, "seed": 3}}
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        assert await final_of(await bed.request("/api/chat", harmful, model="LLAMA3.2:1B")) == ""
        (path, body), = inference(bed.ollama)
        view = go.decode(path, body)
        assert view["model"] == MODEL and view["keep_alive"] == 300
        assert (view["num_ctx"], view["num_predict"]) == (8192, 4096)
        assert (view["num_gpu"], view["num_thread"], view["use_mmap"]) == (-1, 0, None)
        assert view["template"] == "" and not view["debug_render_only"]
        assert view["options"]["seed"] == 3, "what is harmless is kept"
        snap = bed.worker.snapshot
        assert snap.totals.limited == 1 and snap.activity.today.limited == 1
    assert any("limited by this machine's settings" in r.getMessage()
               and "num_ctx 1048576 -> 8192" in r.getMessage() for r in caplog.records)


# -- 4: resources the hub controls ---------------------------------------------------


def peak_and_now_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024)


async def test_a_message_past_the_limit_closes_and_reopens_without_memory_following(
        tmp_path: Path) -> None:
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
    await hub.start()
    await ollama.start()
    limit = incoming_limit(64 * 1024)
    env = {**clean_environment(tmp_path), "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
           "OLLAMA_LOCAL_URL": ollama.url, "GHUBAI_MAX_REQUEST_BODY": "64KiB"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ghubai_tray", "--headless", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await hub.wait_until(lambda: hub.node_for(MODEL), 60, "registration")
        assert await final_of(await hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
        _, baseline = peak_and_now_mb(worker.pid)
        for oversized in ("pieces", "one frame"):
            node = hub.node_for(MODEL)
            assert node is not None
            first = node.connection_id
            if oversized == "pieces":  # 64 MiB without a separator, in frames under the limit
                for _ in range(64 * 1024 * 1024 // (limit // 2)):
                    if first not in hub.connections:
                        break
                    await hub.send_raw(first, "x" * (limit // 2))
            else:
                await hub.send_raw(first, "y" * (limit + 1))
            await hub.wait_until(lambda old=first: old not in hub.connections, 30,  # type: ignore[misc]
                                 f"the worker to close the connection ({oversized})")
            await hub.wait_until(lambda old=first: (n := hub.node_for(MODEL)) is not None  # type: ignore[misc]
                                 and n.connection_id != old, 30, "a new registration")
        assert await final_of(await hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
        peak, _ = peak_and_now_mb(worker.pid)
        assert peak - baseline < 16, f"peak RSS {peak:.0f} MB from {baseline:.0f} MB"
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 30)
        await hub.stop()
        await ollama.stop()
    log = (tmp_path / "logs" / "ghubai-tray.log").read_text()
    assert log.count("larger than this worker's limit") >= 2, "each closed connection says why"


async def test_a_deeply_nested_body_or_message_gets_a_final_and_changes_nothing() -> None:
    async with running_bed(settings=with_settings(max_request_body=1024 * 1024)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        deep = '{"model":"llama3.2:1b","format":' + "[" * 5000 + "]" * 5000 + "}"
        final = await final_of(await bed.request("/api/chat", deep))
        assert final == "[error] the request body is nested too deeply"
        conn = next(iter(bed.hub.connections))
        await bed.hub.send_raw(conn, "[" * 50_000 + "]" * 50_000 + RS)
        assert await final_of(await bed.request("/api/chat", CHAT)) == ""
        assert conn in bed.hub.connections, "the same connection still serves"


async def test_refusals_a_hub_does_not_read_are_bounded_and_counted() -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        conn = next(iter(bed.hub.connections))
        bed.hub.stop_reading()
        batch, total = 1000, 60_000
        endpoint = "/api/" + "p" * 59  # the longest refusal reason, to fill the socket sooner
        for start in range(0, total, batch):
            records = "".join(json.dumps({"type": 1, "target": "RequestInference", "arguments": [
                {"requestId": f"junk-{i}", "model": MODEL, "endpointUri": endpoint,
                 "requestBody": "{}"}]}) + RS for i in range(start, start + batch))
            await bed.hub.send_raw(conn, records)
        await bed.worker.wait_for(lambda s: s.totals.refused == total, 60,
                                  "every junk request to be refused")
        await bed.worker.wait_for(lambda s: s.totals.unanswered > 0, 60,
                                  "refusals beyond the bound to be dropped")
        assert bed.worker._refusals_pending <= MAX_PENDING_REFUSALS
        assert len(asyncio.all_tasks()) < 10 * MAX_PENDING_REFUSALS
        bed.hub.stop_reading(False)
        await bed.registered(MODEL, "mistral:7b")
        assert await final_of(await bed.request("/api/chat", CHAT)) == ""


async def test_an_ollama_that_trickles_bytes_ends_the_request_after_idle_timeout() -> None:
    ollama = OllamaStandIn()
    ollama.fault, ollama.trickle_delay = Fault.TRICKLE, 0.25
    async with running_bed(ollama=ollama, settings=with_settings(idle_timeout=1.5)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        final = await final_of(await bed.request("/api/chat", CHAT), timeout=20)
        assert final == "[error] Ollama sent no complete part of the answer for 1.5 s"
        await ollama.wait_until(lambda: ollama.cancellations, 10, "Ollama to see the cancel")


# -- 5: the token goes only where the owner sent it -----------------------------------


@pytest.mark.parametrize("configured,target,own,expected", [
    ("https://hub.example/gridhub", "https://hub.example/other", None, "ours"),
    ("https://hub.example/gridhub", "https://hub.example:443/x", None, "ours"),
    ("https://hub.example/gridhub", "https://elsewhere.example/x", None, None),
    ("https://hub.example/gridhub", "https://hub.example:8443/x", None, None),
    ("https://hub.example/gridhub", "https://elsewhere.example/x", "theirs", "theirs"),
    ("http://hub.example/gridhub", "https://hub.example/gridhub", None, "ours"),
    ("http://hub.example/gridhub", "http://elsewhere.example/", None, None),
])
def test_the_token_follows_a_redirect_only_to_the_configured_origin(
        configured: str, target: str, own: str | None, expected: str | None) -> None:
    assert token_for_redirect(configured, target, own, "ours") == expected


@pytest.mark.parametrize("target", ["http://hub.example/gridhub", "ws://hub.example/",
                                    "file:///etc/passwd", "https:///nohost"])
def test_a_redirect_down_to_http_or_off_the_web_is_refused(target: str) -> None:
    with pytest.raises(HubUnreachable):
        token_for_redirect("https://hub.example/gridhub", target, "theirs", "ours")


async def test_a_redirect_elsewhere_never_receives_the_token() -> None:
    elsewhere = GridHub()
    await elsewhere.start()
    try:
        hub = GridHub(tokens=[TOKEN], redirect_to=elsewhere.url.replace("127.0.0.1", "localhost"))
        async with running_bed(hub=hub) as bed:
            await elsewhere.wait_until(lambda: elsewhere.nodes, 15, "the worker to register")
            assert elsewhere.http, "the worker went where it was sent"
            for record in elsewhere.http:
                assert TOKEN not in json.dumps(record.query) + json.dumps(record.headers)
            host = f"localhost:{elsewhere.port}"
            await bed.worker.wait_for(lambda s: host in s.reason, 15, "the real host named")
    finally:
        await elsewhere.stop()


async def test_a_redirect_from_https_to_http_is_refused(tmp_path: Any) -> None:
    pki: LoopbackPKI = make_pki(tmp_path)
    plain = GridHub()
    await plain.start()
    try:
        hub = GridHub(tokens=[TOKEN], tls=pki.server_context(), redirect_to=plain.url)
        async with running_bed(hub=hub, settings=with_settings(allow_invalid_certs=True)) as bed:
            snap = await bed.worker.wait_for(lambda s: "insecure address" in s.reason, 15,
                                             "the refusal")
            assert "from https to the insecure address 127.0.0.1" in snap.reason
            assert not plain.http, "nothing was sent to the plain http hub"
    finally:
        await plain.stop()


# -- 6: nothing the worker runs dies silently -------------------------------------------


async def test_a_failed_save_is_said_and_every_command_still_works() -> None:
    def full_disk(changes: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    async with running_bed(persist=full_disk) as bed:
        await bed.registered(MODEL, "mistral:7b")
        bed.worker.submit(Pause(PauseMode.NOW))
        snap = await bed.worker.wait_for(lambda s: s.notice is not None, 10, "the notice")
        assert snap.paused and snap.notice is not None
        assert "could not be saved (No space left on device)" in snap.notice
        await bed.registered()
        bed.worker.submit(Resume())
        await bed.worker.wait_for(lambda s: not s.paused, 10, "the resume after a failed save")
        await bed.registered(MODEL, "mistral:7b")


async def test_stop_works_while_a_command_hangs() -> None:
    released = threading.Event()

    def hanging_disk(changes: dict[str, Any]) -> None:
        released.wait(30)

    try:
        async with running_bed(persist=hanging_disk) as bed:
            await bed.registered(MODEL, "mistral:7b")
            bed.worker.submit(Pause(PauseMode.NOW))
            await bed.registered()
            bed.worker.submit(Stop(grace=0.5))
            await bed.worker.wait_for(lambda s: s.state is State.STOPPED, 5,
                                      "the worker to stop although a save hangs")
    finally:
        released.set()


async def test_a_loop_that_fails_is_logged_told_and_started_again(
        caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker(Settings(machine_name="n"), lambda url: TokenSource(None, "test"))
    runs: list[int] = []

    async def flaky_loop() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("a bug")

    await asyncio.wait_for(worker._supervised("discovery", flaky_loop), 10)
    assert len(runs) == 3
    assert worker.snapshot.notice is not None and "(discovery) failed" in worker.snapshot.notice
    assert sum("the discovery loop failed" in r.getMessage() for r in caplog.records) == 2
    assert all(r.exc_info for r in caplog.records if "loop failed" in r.getMessage())


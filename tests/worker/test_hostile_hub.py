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
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ghubai_tray.adapters import activity_file, logs
from ghubai_tray.adapters.config import save_settings
from ghubai_tray.adapters.hub import RS, incoming_limit, token_for_redirect
from ghubai_tray.adapters.owner_only import write_private_text
from ghubai_tray.adapters.single_instance import SingleInstance
from ghubai_tray.core import activity
from ghubai_tray.core.errors import HubUnreachable
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Pause, PauseMode, Resume, State, Stop
from ghubai_tray.desktop import system
from ghubai_tray.worker import MAX_PENDING_REFUSALS
from ghubai_tray.worker.runtime import SideJobs, supervised
from ghubai_tray.worker.store import StateStore
from tests.processes import clean_environment, cli, headless_worker, memory_mb
from tests.testbed._util import serve
from tests.testbed.certs import LoopbackPKI, make_pki
from tests.testbed.godecode import GoDecoder
from tests.testbed.hub import AuthMode, GridHub, HubRequest
from tests.testbed.ollama import Fault, ModelInfo, OllamaStandIn
from tests.worker_bed import TOKEN, Bed, failure_of, running_bed, with_settings

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
                final = await failure_of(await bed.request("/api/chat", body))
                assert "spells" in final
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


async def reconnected(hub: GridHub, old: str, why: str) -> None:
    """The worker closed connection ``old`` and registered on a new one."""
    await hub.wait_until(lambda: old not in hub.connections, 30,
                         f"the worker to close the connection ({why})")
    await hub.wait_until(lambda: (n := hub.node_for(MODEL)) is not None
                         and n.connection_id != old, 30, "a new registration")


async def test_a_message_past_the_limit_closes_and_reopens_without_memory_following(
        tmp_path: Path) -> None:
    limit = incoming_limit(64 * 1024)
    async with headless_worker(tmp_path, GHUBAI_MAX_REQUEST_BODY="64KiB") as run:
        hub, worker = run.hub, run.process
        assert await final_of(await hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
        _, baseline = memory_mb(worker.pid)
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
            await reconnected(hub, first, oversized)
        assert await final_of(await hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
        peak, _ = memory_mb(worker.pid)
        assert peak - baseline < 16, f"peak RSS {peak:.0f} MB from {baseline:.0f} MB"
    log = (tmp_path / "logs" / "ghubai-tray.log").read_text()
    assert log.count("larger than this worker's limit") >= 2, "each closed connection says why"


async def test_a_deeply_nested_body_or_message_gets_a_final_and_changes_nothing() -> None:
    async with running_bed(settings=with_settings(max_request_body=1024 * 1024)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        deep = '{"model":"llama3.2:1b","format":' + "[" * 5000 + "]" * 5000 + "}"
        final = await failure_of(await bed.request("/api/chat", deep))
        assert final == "the request body is nested too deeply (more than 64 levels)"
        conn = next(iter(bed.hub.connections))
        await bed.hub.send_raw(conn, "[" * 50_000 + "]" * 50_000 + RS)
        assert await final_of(await bed.request("/api/chat", CHAT)) == ""
        assert conn in bed.hub.connections, "the same connection still serves"


async def test_a_body_or_record_of_tiny_values_costs_the_worker_its_bytes_not_its_shape(
        tmp_path: Path) -> None:
    """29 MB of empty messages took 1.3 GB and held the loop 4.5 s; 80 MB of '[],' as one
    hub record, 1.9 GB. Now each is refused before it is parsed: the worker's peak RSS
    grows by about 3 MB per MB of body or record, the WebSocket reader's own floor (see
    below), with glibc giving freed buffers back (adapters/memory.py)."""
    async with headless_worker(tmp_path) as run:
        hub, worker = run.hub, run.process
        assert await final_of(await hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
        _, baseline = memory_mb(worker.pid)
        body = '{"model":"llama3.2:1b","messages":[' + "{}," * 9_600_000 + "{}]}"
        request = await hub.dispatch(MODEL, "/api/chat", body)
        assert json.loads(await final_of(request, 120)) == {
            "error": "the request body holds more than 262,144 values"}
        peak, _ = memory_mb(worker.pid)
        mb = len(body) / 1024 / 1024
        # measured 3.0 (5.0 with glibc's dynamic mmap threshold left on): the reader holds
        # the message up to three times as it completes it (see below)
        assert (peak - baseline) / mb <= 3.5, f"{peak - baseline:.0f} MB for a {mb:.0f} MB body"
        node = hub.node_for(MODEL)
        assert node is not None
        record = '{"type":1,"target":"RequestInference","arguments":[' + "[]," * 27_000_000
        await hub.send_raw(node.connection_id, record + "[]]}" + RS)
        assert await final_of(await hub.dispatch(MODEL, "/api/chat", CHAT), 120) == ""
        peak, _ = memory_mb(worker.pid)
        mb = len(record) / 1024 / 1024
        # websockets holds a message up to three times as it completes (its read buffer,
        # the frame's bytes, the decoded text); measured: 3.4 MB per MB, against 24 before the scan
        assert (peak - baseline) / mb <= 4, f"{peak - baseline:.0f} MB for a {mb:.0f} MB record"
    log = (tmp_path / "logs" / "ghubai-tray.log").read_text()
    assert "a message holds more than 65,536 values" in log


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
        assert bed.worker.refusals_pending <= MAX_PENDING_REFUSALS
        assert len(asyncio.all_tasks()) < 64, "one sender of refusals, not a task for each"
        bed.hub.stop_reading(False)
        assert await _served_after_the_flood(bed) == ""


async def test_a_burst_of_refusals_to_a_hub_that_reads_all_get_their_final() -> None:
    """300 requests at once, each refused (an unshared model, a refused body, a body no
    float64 holds): each client gets its one final (130 to 210 of them had none)."""
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        bodies: list[dict[str, Any] | str] = [
            CHAT, '{"model":"llama3.2:1b","keep_alive":1e400}',
                  '{"model":"llama3.2:1b","options":{"seed":' + "9" * 401 + "}}"]
        requests = await asyncio.gather(*(
            bed.request("/api/chat" if i % 4 else "/api/nope", bodies[i % 3],
                        model=MODEL if i % 5 else "mistral:7b")
            for i in range(300)))
        await asyncio.gather(*(r.wait(60) for r in requests))
        for request in requests:
            assert [c["isFinal"] for c in request.chunks].count(True) == 1, request.chunks
        assert bed.worker.snapshot.totals.unanswered == 0


async def _served_after_the_flood(bed: Bed) -> str:
    """A chat's final once the hub reads again. The worker may have given up the
    connection the hub did not read and come back on a new one; until the hub reads that
    close, the old node is still in its registry and a request routed there is lost, as
    on a real hub, whose client asks again: so does this test, on the new connection."""
    for _ in range(3):
        await bed.registered(MODEL, "mistral:7b")
        request = await bed.request("/api/chat", CHAT)
        await bed.hub.wait_until(partial(_settled, bed, request), 30,
                                 "the chat's final, or its connection to go")
        if request.done.is_set():
            return await final_of(request)
    raise AssertionError("three chats went to connections that closed")


def _settled(bed: Bed, request: HubRequest) -> bool:
    return request.done.is_set() or request.connection_id not in bed.hub.connections


async def test_an_ollama_that_trickles_bytes_ends_the_request_after_idle_timeout() -> None:
    ollama = OllamaStandIn()
    ollama.fault, ollama.trickle_delay = Fault.TRICKLE, 0.25
    async with running_bed(ollama=ollama, settings=with_settings(idle_timeout=1.5)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        final = await failure_of(await bed.request("/api/chat", CHAT), timeout=20)
        assert final == "Ollama sent no complete part of the answer for 1.5 s"
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


async def test_a_redirect_elsewhere_to_a_hub_wanting_a_token_says_ours_was_not_sent() -> None:
    """Withholding the token is right; calling the answer "refused the token" was not."""
    elsewhere = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await elsewhere.start()
    try:
        hub = GridHub(tokens=[TOKEN], redirect_to=elsewhere.url.replace("127.0.0.1", "localhost"))
        async with running_bed(hub=hub) as bed:
            snap = await bed.worker.wait_for(lambda s: s.connection is State.TOKEN_NEEDED, 15,
                                             "token needed")
            assert elsewhere.tokens_seen and set(elsewhere.tokens_seen) == {None}
            assert snap.reason == (
                f"the hub at localhost:{elsewhere.port} needs a provider token, and ours was "
                f"not sent: the hub at 127.0.0.1:{hub.port} sent the worker to this other "
                "address, and the token goes only to the address in Settings")
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
    store = StateStore(Settings(machine_name="n"), SideJobs())
    runs: list[int] = []

    async def flaky_loop() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("a bug")

    await asyncio.wait_for(supervised("discovery", flaky_loop, store.notice), 10)
    assert len(runs) == 3
    assert store.snapshot.notice is not None and "(discovery) failed" in store.snapshot.notice
    assert sum("the discovery loop failed" in r.getMessage() for r in caplog.records) == 2
    assert all(r.exc_info for r in caplog.records if "loop failed" in r.getMessage())



# -- 7: the smaller points ------------------------------------------------------------


async def test_doctor_never_prints_a_token_the_hub_echoes(tmp_path: Path) -> None:
    hub = GridHub(tokens=[TOKEN], negotiate_error="token {token} is\nnot welcome\x1b[2J")
    await hub.start()
    try:
        env = {**clean_environment(tmp_path), "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
               "OLLAMA_LOCAL_URL": "http://127.0.0.1:9"}
        code, out, err = await cli("doctor", env=env)
    finally:
        await hub.stop()
    assert code == 1
    assert TOKEN not in out + err
    hub_line = next(line for line in out.splitlines() if "] hub:" in line)
    assert "the hub refused the connection: token [redacted] is\\nnot welcome\\x1b[2J" in hub_line


async def test_a_close_text_cannot_forge_log_lines_or_flood_the_log(tmp_path: Path) -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        log_dir = tmp_path / "logs"
        saved = list(logging.getLogger().handlers), logging.getLogger().level
        try:
            logs.setup(to_stderr=False, directory=log_dir)
            forged = "bye\n2026-12-01 20:00:00 INFO    all is well " + TOKEN + "x" * (4 << 20)
            await bed.hub.close_connections(error=forged)
            await bed.registered(MODEL, "mistral:7b")
            for _ in range(1000):  # unknown messages, each one a warning
                await bed.hub.send_raw(next(iter(bed.hub.connections)),
                                       '{"type":99}' + RS)
            assert await final_of(await bed.request("/api/chat", CHAT)) == ""
        finally:
            root = logging.getLogger()
            for handler in list(root.handlers):
                handler.flush()
                if handler not in saved[0]:
                    root.removeHandler(handler)
                    handler.close()
            for handler in saved[0]:
                if handler not in root.handlers:
                    root.addHandler(handler)
            root.setLevel(saved[1])
    text = (log_dir / "ghubai-tray.log").read_text()
    assert not any(line.startswith("2026-12-01 20:00:00") for line in text.splitlines())
    assert TOKEN not in text
    assert len(text) < 64 * 1024, "one hub text cannot push the history out"
    unknown = [line for line in text.splitlines() if "unknown type" in line]
    assert 1 <= len(unknown) <= logs.BURST


async def test_a_hanging_keyring_makes_token_status_and_doctor_answer(tmp_path: Path) -> None:
    env = {**clean_environment(tmp_path), "HUB_URL": "http://127.0.0.1:9/gridhub",
           "OLLAMA_LOCAL_URL": "http://127.0.0.1:9",
           "PYTHON_KEYRING_BACKEND": "tests.hanging_keyring.Hanging",
           "GHUBAI_KEYRING_TIMEOUT": "1", "PYTHONPATH": str(Path(__file__).parent.parent.parent)}
    code, out, err = await cli("token", "status", env=env, timeout=30)
    assert code == 1 and "did not answer within 1 s" in out + err
    code, out, err = await cli("doctor", env=env, timeout=60)
    assert code == 1
    assert "[warn] token: the OS keyring did not answer within 1 s" in out
    assert "] hub:" in out, "the other checks still ran"


async def test_an_unwritable_log_folder_leaves_logging_to_stderr(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    async with headless_worker(tmp_path, GHUBAI_LOG_DIR=str(blocker / "logs")) as run:
        assert await final_of(await run.hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
    assert run.process.returncode == 0
    said = run.stderr
    assert said.count("cannot write the log file in") == 1
    assert "logging to the terminal only" in said and "Traceback" not in said


async def test_a_timed_pause_ends_by_the_wall_clock_whatever_it_does() -> None:
    start = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    now = [start]
    looks: list[datetime] = []

    def clock() -> datetime:  # the wall clock, as the test sets it
        looks.append(now[0])
        return now[0]

    async def looked_at(when: datetime) -> None:
        async with asyncio.timeout(10):
            while looks.count(when) < 3:
                await asyncio.sleep(0.02)

    async with running_bed(clock=clock, pause_check=0.05) as bed:
        await bed.registered(MODEL, "mistral:7b")
        bed.worker.submit(Pause(PauseMode.NOW, until=start + timedelta(hours=1)))
        await bed.registered()
        now[0] = start - timedelta(hours=5)  # the clock set back: still paused, as shown
        await looked_at(now[0])
        assert bed.worker.snapshot.paused
        now[0] = start + timedelta(hours=1, seconds=1)  # woke up after the end (suspend)
        await bed.worker.wait_for(lambda s: not s.paused, 5, "the pause to end on time")
        await bed.registered(MODEL, "mistral:7b")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes: on Windows the app writes "
                    "under %LOCALAPPDATA%, which the profile's ACL keeps to its user")
async def test_everything_the_app_writes_is_the_owners_alone(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    async with headless_worker(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"),
                               XDG_RUNTIME_DIR=str(tmp_path / "run")) as run:
        assert await final_of(await run.hub.dispatch(MODEL, "/api/chat", CHAT)) == ""
    written = [tmp_path / "logs", *(tmp_path / "logs").iterdir()]
    assert any(p.name == "ghubai-tray.log" for p in written), written
    data = tmp_path / "data" / "GhubAi"
    written += [data, *data.iterdir()]
    assert any(p.name == "ledger.sqlite3" for p in written), written
    save_settings({"max_context": 4096}, tmp_path / "cfg" / "config.toml")
    activity_file.save(tmp_path / "data" / "activity.json", activity.Activity())
    write_private_text(tmp_path / "logs" / "diagnostics.txt", "report")
    with SingleInstance(tmp_path / "run" / "lock") as first:
        assert first
        written += [tmp_path / "cfg", tmp_path / "cfg" / "config.toml", tmp_path / "data",
                    tmp_path / "data" / "activity.json", tmp_path / "logs" / "diagnostics.txt",
                    tmp_path / "run" / "lock"]
        for path in written:
            mode = path.stat().st_mode & 0o777
            assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


@pytest.mark.skipif(sys.platform == "win32", reason="Windows starts no child for these: "
                    "os.startfile and the Win32 clipboard (test_desktop_pieces)")
def test_children_get_no_provider_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real xdg-open and clipboard tool stand-in on PATH: each writes its environment down.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("xdg-open", "wl-copy", "xclip", "xsel"):
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\nenv > {tmp_path}/{tool}.tmp\n"
                          f"mv {tmp_path}/{tool}.tmp {tmp_path}/{tool}.env\ncat >/dev/null\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("PROVIDER_TOKEN", TOKEN)
    assert system.open_path(tmp_path)
    assert system.copy_text("diagnostics")
    for seen in (tmp_path / "xdg-open.env", tmp_path / "wl-copy.env"):  # wl-copy comes first
        wait_for_file(seen)
        text = seen.read_text()
        assert "PATH=" in text and TOKEN not in text and "PROVIDER_TOKEN" not in text


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


async def https_redirector(target_base: str) -> tuple[web.AppRunner, str]:
    """A plain-http front that answers every request with 307 to ``target_base`` (the same
    path and query), as ASP.NET's UseHttpsRedirection does."""
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{target_base}{request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner, port = await serve(app, "127.0.0.1", 0)
    return runner, f"http://127.0.0.1:{port}/gridhub"


@pytest.mark.parametrize("secure", [True, False], ids=["to-https-same-host", "elsewhere"])
async def test_an_http_redirect_takes_the_token_only_up_to_https_on_the_same_host(
        secure: bool, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port for the hub, which running_bed starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = GridHub(port=port, tokens=[TOKEN],
                     tls=make_pki(tmp_path).server_context() if secure else None)
    host = "127.0.0.1" if secure else "localhost"  # another host: not an upgrade
    runner, front = await https_redirector(target.base.replace("127.0.0.1", host))
    try:
        async with running_bed(hub=target, settings=with_settings(
                hub_url=front, allow_invalid_certs=True)) as bed:
            await target.wait_until(lambda: target.nodes, 15, "the worker to register")
            sent = [json.dumps(r.query) + json.dumps(r.headers) for r in target.http]
            assert any(TOKEN in s for s in sent) is secure
            await bed.worker.wait_for(lambda s: f"{host}:{target.port}" in s.reason, 15,
                                      "the host actually connected, named")
    finally:
        await runner.cleanup()

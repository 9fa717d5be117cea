"""The worker against the test hub and the Ollama stand-in: register, relay, refuse, recover."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import random
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.adapters import activity_file, ledger_db
from ghubai_tray.core.activity import Activity, Tally
from ghubai_tray.core.endpoints import ALLOWED_ENDPOINTS
from ghubai_tray.core.server_kinds import PROBES
from ghubai_tray.core.state import (
    ApplySettings,
    OllamaStatus,
    Pause,
    PauseMode,
    Resume,
    SetFreeGpuWhenPaused,
    SetModelShared,
    State,
)
from ghubai_tray.desktop.system import diagnostics
from tests.adversarial import ADVERSARIAL_PATHS
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.ollama import (
    DEFAULT_REPLY,
    Fault,
    ModelInfo,
    OllamaStandIn,
    TagsShape,
)
from tests.worker_bed import TOKEN, error_of, failure_of, running_bed, with_settings

CHAT = {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


def chat(stream: bool, **extra: Any) -> dict[str, Any]:
    return {**CHAT, "stream": stream, **extra}


async def test_registers_the_shared_models_and_tracks_registered() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        # the hub may be told "none yet" first, should it connect before the first look
        snap = await bed.worker.wait_for(lambda s: s.connection is State.REGISTERED
                                         and s.registered_models == 2, 10, "Registered")
        assert snap.ollama is OllamaStatus.REACHABLE
        assert snap.reason.startswith("sharing 2 models with 127.0.0.1:")
        assert [m.name for m in snap.models if m.shared] == ["llama3.2:1b", "mistral:7b"]


async def test_cloud_models_are_not_shared_unless_named() -> None:
    ollama = OllamaStandIn(models=[ModelInfo("llama3.2:1b"),
                                   ModelInfo("gpt-oss:120b-cloud", remote_model="gpt-oss:120b")])
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b")
        bed.worker.submit(SetModelShared("gpt-oss:120b-cloud", True))
        await bed.registered("llama3.2:1b", "gpt-oss:120b-cloud")


async def test_native_stream_relays_each_line_as_one_fragment_as_it_comes() -> None:
    ollama = OllamaStandIn(token_delay=0.05)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        first = await anext(aiter(req.stream()))
        assert json.loads(first)["message"]["content"] == DEFAULT_REPLY[0]
        assert ollama.active == 1, "the first line arrived while Ollama was still generating"
        await req.wait()
        lines = [json.loads(f) for f in req.fragments]
        assert "".join(line["message"]["content"] for line in lines) == "".join(DEFAULT_REPLY)
        assert lines[-1]["done"] is True
        assert req.chunks[-1] == {"requestId": req.request_id, "tokenFragment": "",
                                  "isFinal": True}
        assert [c["isFinal"] for c in req.chunks].count(True) == 1


async def test_openai_stream_relays_event_data_without_done_marker() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/v1/chat/completions", chat(True), target="RequestOpenAI")
        await req.wait()
        events = [json.loads(f) for f in req.fragments]
        assert all(e["object"] == "chat.completion.chunk" for e in events)
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
        assert text == "".join(DEFAULT_REPLY)
        assert req.chunks[-1]["tokenFragment"] == ""


@pytest.mark.parametrize("endpoint", ["/api/chat", "/api/generate", "/api/embed",
                                      "/api/embeddings", "/v1/chat/completions"])
async def test_non_streamed_answers_concatenate_to_ollamas_json(endpoint: str) -> None:
    body: dict[str, Any] = chat(False)
    if "embed" in endpoint or endpoint == "/api/generate":
        body = {"model": "llama3.2:1b", "prompt": "hi", "input": "hi", "stream": False}
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request(endpoint, body)
        doc = json.loads(await req.wait())
        assert isinstance(doc, dict) and "error" not in doc
        assert req.chunks[-1]["tokenFragment"] == ""


async def test_a_large_non_streamed_answer_arrives_in_fragments_under_the_limit() -> None:
    ollama = OllamaStandIn(reply_tokens=["é\"<" * 20_000])
    hub = GridHub(tokens=[TOKEN])
    async with running_bed(hub=hub, ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(False))
        doc = json.loads(await req.wait())
        assert doc["message"]["content"] == "é\"<" * 20_000
        assert len(req.fragments) > 3
        assert not hub.closes, "no message reached the hub's size limit"


FAULTS = {
    "busy": (Fault.BUSY, "Ollama answered 503: server busy, please try again.  "
                         "maximum pending requests exceeded"),
    "internal": (Fault.INTERNAL, "Ollama answered 500: llama runner process has "
                                 "terminated: exit status 2"),
    "mid-stream": (Fault.MID_STREAM, "Ollama: "),
    "html": (Fault.HTML, "Ollama's answer is not JSON"),
    "garbage": (Fault.GARBAGE, "Ollama's answer is not "),
    "disconnect": (Fault.DISCONNECT, "Ollama"),
}


@pytest.mark.parametrize("fault,final", FAULTS.values(), ids=FAULTS.keys())
async def test_ollama_failures_end_in_one_error_final(fault: Fault, final: str) -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.ollama.fault = fault
        req = await bed.request("/api/chat", chat(True))
        await req.wait()
        assert req.chunks[-1]["isFinal"] is True
        assert error_of(req.chunks[-1]["tokenFragment"]).startswith(final)
        assert sum(bool(c["isFinal"]) for c in req.chunks) == 1
        bed.ollama.fault = Fault.NONE
        again = await bed.request("/api/chat", chat(False))
        assert "error" not in json.loads(await again.wait()), "the worker is healthy afterwards"


async def test_model_not_found_in_ollama_is_reported_with_ollamas_words() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.ollama.models = [ModelInfo("mistral:7b")]  # gone since the last poll
        req = await bed.request("/api/chat", chat(True))
        await req.wait()
        assert error_of(req.chunks[-1]["tokenFragment"]) == ("Ollama answered 404: model "
                                                             "'llama3.2:1b' not found")


async def test_no_management_endpoint_is_ever_reached() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        requests = [await bed.request(e, chat(False)) for e in ADVERSARIAL_PATHS]
        for req in requests:
            await req.wait()
            assert req.chunks == [{"requestId": req.request_id, "isFinal": True,
                                   "tokenFragment": req.chunks[0]["tokenFragment"]}]
            assert error_of(req.chunks[0]["tokenFragment"])
        # Only the worker's own looks: the model list, what is loaded (owner first), and
        # which server this is (its GET probes, core/server_kinds.py).
        assert bed.ollama.requests == [r for r in bed.ollama.requests
                                       if r.path in ("/api/tags", "/api/ps", *PROBES)
                                       and r.method == "GET"]
        assert bed.ollama.management_requests == []
        assert bed.worker.snapshot.totals.refused == len(ADVERSARIAL_PATHS)


async def test_refusals_name_the_problem() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        other = await bed.request("/api/chat", {**chat(True), "model": "mistral:7b"})
        assert (await failure_of(other)).startswith("the request body asks for a different")
        node = next(iter(bed.hub.nodes.values()))
        await bed.hub.invoke(node.connection_id, "RequestInference",
                             {"requestId": "unshared-1", "model": "phi3", "endpointUri":
                              "/api/chat", "requestBody": json.dumps({"model": "phi3"})})
        await bed.hub.invoke(node.connection_id, "RequestInference", {"model": "phi3"})
        await bed.hub.invoke(node.connection_id, "RequestInference", "junk", 42)
        await bed.hub.wait_until(lambda: bed.hub.ignored_chunks, 10, "the refusal")
        assert bed.hub.ignored_chunks == [{"requestId": "unshared-1", "isFinal": True,
                                           "tokenFragment": json.dumps({"error": (
                                               "the model 'phi3' is not shared by this "
                                               "worker")})}]
        ok = await bed.request("/api/chat", chat(False))
        assert "error" not in json.loads(await ok.wait()), "junk did not hurt the worker"
        assert bed.worker.snapshot.totals.refused == 4


async def test_busy_worker_refuses_at_once_beyond_its_queue() -> None:
    ollama = OllamaStandIn(token_delay=0.1)
    async with running_bed(ollama=ollama, settings=with_settings(max_concurrent_requests=1)) \
            as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        requests = [await bed.request("/api/chat", chat(True)) for _ in range(6)]
        busy = requests[5]
        assert (await failure_of(busy)).startswith("this worker is busy (5 requests")
        await bed.worker.wait_for(lambda s: s.active == 1 and s.queued == 4, 10, "1 + 4 queued")
        await ollama.wait_until(lambda: ollama.active == 1, 10, "the first request in Ollama")
        peak = [0]
        bed.worker.subscribe(lambda s: peak.__setitem__(0, max(peak[0], s.active)))
        for req in requests[:5]:
            await req.wait()
            assert json.loads(req.fragments[-1])["done"] is True
        assert peak[0] == 1, "one request at a time reaches Ollama"


async def test_hub_drop_cancels_ollama_requests_and_the_worker_comes_back() -> None:
    ollama = OllamaStandIn(token_delay=0.3)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        await anext(aiter(req.stream()))
        first_connection = req.connection_id
        await bed.hub.drop_connections()
        await ollama.wait_until(lambda: ollama.cancellations, 10, "Ollama to see the cancel")
        await bed.registered("llama3.2:1b", "mistral:7b")
        assert next(iter(bed.hub.nodes)) != first_connection
        again = await bed.request("/api/chat", chat(False))
        assert "error" not in json.loads(await again.wait())


async def test_a_request_cut_by_a_dropped_connection_gets_its_final_on_the_next_one() -> None:
    # GhubAi keeps a request open until a final arrives, on any connection, and has no
    # timeout: without this final its client would wait for ever.
    ollama = OllamaStandIn(token_delay=0.3)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        native = await bed.request("/api/chat", chat(True))
        openai_ = await bed.request("/v1/chat/completions", chat(True), target="RequestOpenAI")
        await anext(aiter(native.stream()))
        await anext(aiter(openai_.stream()))
        first = native.connection_id
        await bed.hub.drop_connections()
        for req in (native, openai_):
            assert await failure_of(req, timeout=20) == (
                "the worker lost its connection to the hub during the answer; please send "
                "the request again")
            assert [c["isFinal"] for c in req.chunks].count(True) == 1
        assert json.loads(openai_.chunks[-1]["tokenFragment"])["error"]["type"] == "api_error"
        assert next(iter(bed.hub.nodes)) != first, "sent on the new connection"


async def test_pause_now_cancels_with_a_final_and_registers_nothing() -> None:
    ollama = OllamaStandIn(token_delay=0.3)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        await anext(aiter(req.stream()))
        bed.worker.submit(Pause(PauseMode.NOW))
        assert await failure_of(req) == "paused by the owner"
        await bed.registered()
        snap = await bed.worker.wait_for(lambda s: s.state.value == "paused", 10, "paused")
        assert snap.connection is State.REGISTERED
        await ollama.wait_until(lambda: ollama.cancellations, 10, "Ollama to see the cancel")
        bed.worker.submit(Resume())
        await bed.registered("llama3.2:1b", "mistral:7b")


async def test_ollama_away_registers_nothing_then_comes_back() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        port = bed.ollama.port
        await bed.ollama.stop()
        snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.UNREACHABLE, 10,
                                         "Ollama unreachable")
        assert snap.ollama_reason == f"Ollama is not reachable at {bed.ollama.url}: is it running?"
        await bed.registered()
        assert [m.name for m in snap.models] == ["llama3.2:1b", "mistral:7b"], "kept for the menu"
        bed.ollama.port = port
        await bed.ollama.start()
        await bed.registered("llama3.2:1b", "mistral:7b")


async def test_a_new_model_is_registered_without_waiting_for_the_heartbeat() -> None:
    async with running_bed(settings=with_settings(discovery_interval=3600)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.ollama.models.append(ModelInfo("qwen2.5:0.5b"))
        await bed.registered("llama3.2:1b", "mistral:7b", "qwen2.5:0.5b")


async def test_the_token_never_travels_in_invocations() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        await req.wait()
        sent = [f.data for f in bed.hub.frames if f.direction == "in"]
        assert sent and not any(TOKEN in data for data in sent)
        invocations = [m.message for m in bed.hub.messages
                       if m.direction == "in" and m.message.get("type") == 1]
        assert invocations and all(set(m) == {"type", "target", "arguments"}
                                   for m in invocations)
        first = bed.hub.http[0]
        assert first.path.endswith("/negotiate")


async def test_token_is_sent_on_the_very_first_request_both_ways() -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    async with running_bed(hub=hub) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        assert hub.http[0].path.endswith("/negotiate") and hub.http[0].status == 200
        assert all(r.status != 401 for r in hub.http)


async def test_many_concurrent_streams_each_end_once_in_order() -> None:
    async with running_bed(settings=with_settings(max_concurrent_requests=8)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        requests = [await bed.request("/api/generate", {"model": "llama3.2:1b", "prompt": "x"})
                    for _ in range(8)]
        for req in requests:
            await req.wait()
            tokens = [json.loads(f)["response"] for f in req.fragments]
            assert "".join(tokens) == "".join(DEFAULT_REPLY)
            assert [c["isFinal"] for c in req.chunks] == [False] * len(req.fragments) + [True]
        snap = bed.worker.snapshot
        assert snap.totals.served == 8 and snap.active == 0
        assert dict(snap.per_model)["llama3.2:1b"].served == 8


async def test_settings_change_of_sharing_re_registers() -> None:
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.worker.submit(SetModelShared("mistral:7b", False))
        await bed.registered("llama3.2:1b")
        snap = await bed.worker.wait_for(lambda s: s.shared_models == ("llama3.2:1b",), 10,
                                         "mistral unshared")
        assert [(m.name, m.shared) for m in snap.models] == [("llama3.2:1b", True),
                                                             ("mistral:7b", False)]


async def test_ollama_too_slow_between_chunks_hits_the_idle_timeout() -> None:
    ollama = OllamaStandIn(token_delay=3.0)
    async with running_bed(ollama=ollama, settings=with_settings(idle_timeout=0.5)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        assert await failure_of(req) == "Ollama sent no complete part of the answer for 0.5 s"
        await ollama.wait_until(lambda: ollama.cancellations, 10, "Ollama to see the cancel")


async def test_a_request_over_its_total_time_is_ended() -> None:
    ollama = OllamaStandIn(token_delay=0.2, reply_tokens=["x"] * 100)
    async with running_bed(ollama=ollama, settings=with_settings(total_timeout=1.0)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        assert await failure_of(req) == "the request took longer than 1 s"
        assert 0 < len(req.fragments) < 100


async def test_an_oversized_streamed_event_fails_the_request_not_the_connection() -> None:
    ollama = OllamaStandIn(reply_tokens=["small", "y" * 40_000, "never"])
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        connection = next(iter(bed.hub.nodes))
        req = await bed.request("/api/chat", chat(True))
        assert (await failure_of(req)).startswith(
            "Ollama sent one event larger than the hub accepts in one message")
        assert len(req.fragments) == 2  # the first line, then the error final
        assert not bed.hub.closes and next(iter(bed.hub.nodes)) == connection


async def test_a_streamed_event_up_to_the_hubs_limit_goes_through_whole() -> None:
    # A tool call writing a 12 kB file, or any event up to what one 32 KiB message holds.
    big = "x" * 30_000
    ollama = OllamaStandIn(reply_tokens=["small", big, "end"])
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        await req.wait()
        lines = [json.loads(f) for f in req.fragments]
        assert [line["message"]["content"] for line in lines[:-1]] == ["small", big, "end"]
        assert req.chunks[-1]["tokenFragment"] == "" and not bed.hub.closes


async def test_a_broken_model_list_is_reported_once_not_every_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ghubai_tray")
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.ollama.tags_shape = TagsShape.HTML
        snap = await bed.worker.wait_for(lambda s: s.ollama is OllamaStatus.BAD_ANSWER, 10,
                                         "the bad answer")
        assert snap.ollama_reason.startswith("Ollama's model list is not JSON (is something "
                                             "other than Ollama at")
        await bed.registered()
        polls = len(bed.ollama.requests)
        await bed.ollama.wait_until(lambda: len(bed.ollama.requests) >= polls + 5, 10,
                                    "five more polls")
        bed.ollama.tags_shape = TagsShape.OBJECT
        await bed.registered("llama3.2:1b", "mistral:7b")
    reports = [r for r in caplog.records if "model list is not JSON" in r.getMessage()]
    assert len(reports) == 1


async def test_a_new_hub_url_moves_the_worker_at_once() -> None:
    other = GridHub(tokens=[TOKEN])
    await other.start()
    try:
        async with running_bed() as bed:
            await bed.registered("llama3.2:1b", "mistral:7b")
            bed.worker.submit(ApplySettings(replace(bed.worker.settings, hub_url=other.url)))
            await other.wait_until(lambda: other.nodes, 15, "registration at the new hub")
            await bed.hub.wait_until(lambda: not bed.hub.nodes, 15, "leaving the old hub")
            snap = await bed.worker.wait_for(lambda s: s.hub_url == other.url
                                             and s.connection is State.REGISTERED, 15,
                                             "registered at the new hub")
            assert str(other.port) in snap.reason
    finally:
        await other.stop()


async def test_a_timed_pause_ends_by_itself_and_both_are_saved() -> None:
    saved: list[dict[str, Any]] = []
    async with running_bed(persist=saved.append) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        until = datetime.now().astimezone() + timedelta(seconds=1)
        bed.worker.submit(Pause(PauseMode.AFTER_CURRENT, until))
        await bed.registered()
        assert bed.worker.snapshot.paused_until == until
        assert bed.hub.node_for("llama3.2:1b") is None, "a paused worker is not routed to"
        await bed.registered("llama3.2:1b", "mistral:7b", timeout=15)
        assert not bed.worker.snapshot.paused
        await bed.hub.wait_until(lambda: len(saved) == 2, 10, "the resume to be saved")
        assert saved == [{"paused": True, "paused_until": until},
                         {"paused": False, "paused_until": None}]


async def test_diagnostics_read_the_pause_made_from_the_menu() -> None:
    # The tray's Copy diagnostics reads Worker.settings from its own thread; a Pause once
    # changed the snapshot and the file but not those, so the report said "not paused".
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.worker.submit(Pause(PauseMode.NOW))
        await bed.registered()
        report = diagnostics(bed.worker.settings, [], None, "test")
        assert "  paused = yes  (the menu (saved to the config file))" in report
        bed.worker.submit(Resume())
        await bed.registered("llama3.2:1b", "mistral:7b")
        assert not bed.worker.settings.paused
        assert bed.worker.settings.source("paused") == "the menu (saved to the config file)"


async def test_a_request_arriving_while_paused_is_refused_in_words() -> None:
    async with running_bed(settings=with_settings(paused=True)) as bed:
        await bed.registered()
        node = next(iter(bed.hub.nodes.values()))
        await bed.hub.invoke(node.connection_id, "RequestInference", {
            "requestId": "p1", "model": "llama3.2:1b", "endpointUri": "/api/chat",
            "requestBody": json.dumps(chat(False))})
        await bed.hub.wait_until(lambda: bed.hub.ignored_chunks, 10, "the refusal")
        assert error_of(bed.hub.ignored_chunks[0]["tokenFragment"]) == "paused by the owner"
        assert bed.worker.snapshot.state.value == "paused"


async def test_pausing_frees_the_gpu_once_requests_end_unless_told_not_to() -> None:
    ollama = OllamaStandIn(token_delay=0.05)
    async with running_bed(ollama=ollama) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", chat(True))
        await anext(aiter(req.stream()))
        bed.worker.submit(Pause(PauseMode.AFTER_CURRENT))
        await req.wait()
        assert json.loads(req.fragments[-1])["done"] is True, "the current request finished"
        await ollama.wait_until(lambda: ollama.unloads == ["llama3.2:1b"], 10, "the unload")
        bed.worker.submit(Resume())
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.worker.submit(SetFreeGpuWhenPaused(False))
        await bed.worker.wait_for(lambda s: not s.free_gpu_when_paused, 10, "the option off")
        again = await bed.request("/api/chat", chat(False))
        await again.wait()
        bed.worker.submit(Pause(PauseMode.NOW))
        await bed.registered()
        assert ollama.loaded and ollama.unloads == ["llama3.2:1b"], "left loaded this time"


async def test_pausing_frees_what_the_hub_loaded_and_leaves_the_owners_models(
        caplog: pytest.LogCaptureFixture) -> None:
    """Pause unloaded every shared model Ollama held, the one the owner was chatting with
    too. Now: llama3.2 (the hub's last) is freed; mistral, used by the hub and then by
    the owner with a keep-alive of their own, stays loaded, and so does phi3, which
    only the owner loaded."""
    import httpx

    ollama = OllamaStandIn(models=[ModelInfo("llama3.2:1b"), ModelInfo("mistral:7b"),
                                   ModelInfo("phi3:mini")])
    async with running_bed(ollama=ollama, settings=with_settings(owner_first=False)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b", "phi3:mini")
        for model in ("llama3.2:1b", "mistral:7b"):
            served = await bed.request("/api/chat", {**chat(False), "model": model}, model=model)
            await served.wait()
        async with httpx.AsyncClient() as owner:
            for model in ("mistral:7b", "phi3:mini"):
                answer = await owner.post(f"{ollama.url}/api/chat", json={
                    **chat(False), "model": model, "keep_alive": "10m"})
                assert answer.status_code == 200
        caplog.set_level(logging.INFO, logger="ghubai_tray")
        bed.worker.submit(Pause(PauseMode.NOW))
        await ollama.wait_until(lambda: any("freed the GPU memory" in r.getMessage()
                                            for r in caplog.records), 10, "the unloads")
        assert ollama.unloads == ["llama3.2:1b"]
        assert set(ollama.loaded) == {"mistral:7b", "phi3:mini"}, "the owner's stay loaded"
        assert any("left loaded, as they are yours (not the hub's): mistral:7b, phi3:mini"
                   in r.getMessage() for r in caplog.records)


async def test_activity_counts_today_and_since_install_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "activity.json"  # what older versions kept: carried into the ledger
    previous = Activity("2000-01-01", Tally(5, 1, 50), Tally(7, 2, 70))
    activity_file.save(path, previous)
    async with running_bed(ledger_path=tmp_path / "ledger.sqlite3") as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        ok = await bed.request("/api/chat", chat(True))
        await ok.wait()
        bad = await bed.request("/api/pull", chat(True))
        await bad.wait()
        snap = await bed.worker.wait_for(lambda s: s.activity.today.requests == 1
                                         and s.activity.today.failed == 1, 10, "the tallies")
        tokens = json.loads(ok.fragments[-1])["eval_count"]  # the server's own count
        assert snap.activity.today == Tally(1, 1, tokens), "a new day started from zero"
        assert snap.activity.lifetime == Tally(8, 3, 70 + tokens)
    with contextlib.closing(ledger_db.read_only(tmp_path / "ledger.sqlite3")) as db:
        assert ledger_db.activity_in(db, date.fromisoformat(snap.activity.day)) == snap.activity
    assert not path.exists() and (tmp_path / "activity.json.migrated").exists()


PIECES = ["/", "//", "..", ".", "%2e", "%2f", "%2F", "\\", "api", "pull", "chat", "generate",
          "v1", "embed", "delete", "blobs", "http:", "https://evil", "@", "?", "#", "\u2215",
          "\uff0f", "\u2024", ";", " ", "\t", "\x00", "API", "Chat", "completions", "%00", "~"]


async def test_no_path_the_hub_can_build_reaches_anything_but_inference() -> None:
    """A seeded fuzz through the real worker: 300 paths assembled from tricky pieces."""
    rng = random.Random(20261124)
    paths = {"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8))) for _ in range(300)}
    async with running_bed(settings=with_settings(max_concurrent_requests=8)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        requests = []
        for path in sorted(paths):
            requests.append(await bed.request(path, chat(False)))
            if len(requests) % 8 == 0:  # stay within the worker's queue
                for req in requests[-8:]:
                    await req.wait()
        for req in requests:
            await req.wait()
            assert sum(bool(c["isFinal"]) for c in req.chunks) == 1
    reached = {r.path for r in bed.ollama.requests}
    # its own looks (the model list, what is loaded, which server), and inference
    assert reached <= {"/api/tags", "/api/ps", *PROBES, *ALLOWED_ENDPOINTS}
    assert bed.ollama.management_requests == []


async def test_a_vision_request_with_a_photo_of_several_mb_is_served() -> None:
    # The hub delivers bodies up to Kestrel's 30,000,000 bytes; one photo is several MB.
    photo = base64.b64encode(bytes(range(256)) * (18 * 1024)).decode()  # 4.5 MiB, 6.3 MB text
    body = {"model": "llama3.2:1b", "stream": False, "messages": [
        {"role": "user", "content": "what is in this picture?", "images": [photo]}]}
    async with running_bed() as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", body)
        assert json.loads(await req.wait())["done"] is True
        (forwarded,) = [r for r in bed.ollama.requests if r.path == "/api/chat"]
        assert json.loads(forwarded.body)["messages"][0]["images"] == [photo]

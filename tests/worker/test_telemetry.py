"""OpenTelemetry for the operators: the worker between the test hub and the Ollama stand-in
exports its traces, metrics and logs over OTLP/HTTP to a receiver in the test bed that
decodes them with OpenTelemetry's own protobuf classes; a canary in every prompt, and the
token, are in none of the bytes it received."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ghubai_tray.adapters.logs import add_secret
from ghubai_tray.adapters.telemetry import Telemetry
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.jaeger import Jaeger, tags
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.otlp import OtlpReceiver, attributes
from tests.worker_bed import TOKEN, Bed, running_bed

CANARY = "CANARY-7d41c2-telemetry-prompt"
MODEL = "llama3.2:1b"


def _chat(number: int) -> dict[str, Any]:
    return {"model": MODEL, "stream": True,
            "messages": [{"role": "user", "content": f"{CANARY} question {number}"}]}


async def _three_chats(bed: Bed) -> list[dict[str, Any]]:
    """Once registered, three chats through the hub, one after the other; their last lines."""
    await bed.registered(MODEL, "mistral:7b")
    finals = []
    for number in range(3):
        served = await bed.request("/api/chat", _chat(number))
        await served.wait(30)
        finals.append(json.loads(served.fragments[-1]))
    return finals


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports every 200 ms (the SDK reads these itself), the service named by resource
    attributes as an operator would."""
    for name, value in {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200",
                        "OTEL_METRIC_EXPORT_INTERVAL": "300",
                        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)


async def test_three_requests_are_traced_measured_and_logged_without_their_words(
        otel_env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    receiver = OtlpReceiver()
    await receiver.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    add_secret(TOKEN)  # as the CLI does with the token it read
    telemetry = Telemetry("9.9.9")
    ollama = OllamaStandIn(token_delay=0.02)
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    try:
        async with running_bed(hub=hub, ollama=ollama, telemetry=telemetry) as bed:
            last_lines = await _three_chats(bed)
            await receiver.wait_until(lambda: len(_requests(receiver)) >= 3, 20,
                                      "three request spans")
            await receiver.wait_until(lambda: _served(receiver) >= 3, 20,
                                      "the requests counted")
        await receiver.wait_until(lambda: any(CANARY not in r.body.string_value and
                                              "llama3.2:1b" in r.body.string_value
                                              for r in receiver.logs()), 20, "the logs")
    finally:
        await receiver.stop()

    spans = _requests(receiver)
    assert len(spans) == 3
    for span in spans:
        found = attributes(span.attributes)
        assert found["gen_ai.request.model"] == MODEL
        assert found["ghubai.endpoint"] == "/api/chat"
        assert found["ghubai.server_kind"] == "ollama"
        assert found["ghubai.outcome"] == "served"
        assert found["gen_ai.usage.output_tokens"] == last_lines[0]["eval_count"]  # the server's
        assert found["gen_ai.usage.input_tokens"] == last_lines[0]["prompt_eval_count"]
        assert [e.name for e in span.events] == ["model server asked", "first token"]
        children = [attributes(s.attributes) for s in receiver.spans()
                    if s.parent_span_id == span.span_id and s.trace_id == span.trace_id]
        # the model server's call, and owner first's look at /api/ps before it
        assert sorted(_call(c) for c in children) == ["GET /api/ps", "POST /api/chat"]

    resource = next(receiver.resources())
    assert resource["service.name"] == "ghubai-tray"
    assert resource["service.version"] == "9.9.9"
    assert resource["deployment.environment"] == "test"

    metrics = receiver.metrics()
    assert {"ghubai.requests", "gen_ai.client.token.usage", "ghubai.request.duration",
            "ghubai.request.time_to_first_token", "ghubai.requests.running",
            "ghubai.requests.waiting", "ghubai.hub.connected", "ghubai.hub.reconnects",
            "ghubai.sharing.held", "process.memory.usage", "process.cpu.time"} <= set(metrics)
    assert max(p.as_int for p in metrics["ghubai.hub.connected"]) == 1
    assert max(p.as_int for p in metrics["process.memory.usage"]) > 10_000_000

    logs = list(receiver.logs())
    traced = [r for r in logs if "/api/chat llama3.2:1b" in r.body.string_value]
    assert len(traced) == 3 and all(len(r.trace_id) == 16 and any(r.trace_id) for r in traced)
    assert {r.trace_id for r in traced} == {s.trace_id for s in spans}

    everything = b"".join(receiver.raw)
    assert CANARY.encode() not in everything
    assert TOKEN.encode() not in everything
    assert all(TOKEN not in str(h) for h in receiver.headers)


@pytest.mark.jaeger
async def test_the_real_jaeger_holds_each_requests_trace_with_its_model_server_call(
        otel_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """As an operator would run it: traces to Jaeger v2 (its OTLP/HTTP receiver), metrics and
    logs elsewhere (the test bed's receiver), read back through Jaeger's query API."""
    jaeger, receiver = Jaeger(), OtlpReceiver()
    await jaeger.start()
    await receiver.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{jaeger.otlp_url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ghubai-donor-7")
    add_secret(TOKEN)
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    try:
        async with running_bed(hub=hub, ollama=OllamaStandIn(token_delay=0.02),
                               telemetry=Telemetry("9.9.9")) as bed:
            finals = await _three_chats(bed)
            traces = await _traces_in(jaeger, 3)
        await receiver.wait_until(lambda: len(_traced_logs(receiver)) >= 3, 20, "the logs")
        raw = await asyncio.to_thread(jaeger.raw, "ghubai-donor-7")
    finally:
        await receiver.stop()
        await jaeger.stop()

    assert len(traces) == 3
    for trace in traces:
        by_name = {s["operationName"]: s for s in trace["spans"]}
        root = by_name["hub request /api/chat"]
        found = tags(root["tags"])
        assert found["gen_ai.request.model"] == MODEL
        assert found["ghubai.endpoint"] == "/api/chat"
        assert found["ghubai.server_kind"] == "ollama"
        assert found["ghubai.outcome"] == "served"
        assert found["gen_ai.usage.output_tokens"] == finals[0]["eval_count"]
        assert found["gen_ai.usage.input_tokens"] == finals[0]["prompt_eval_count"]
        events = [tags(e["fields"]).get("event") for e in root["logs"]]
        assert events == ["model server asked", "first token"]
        children = [tags(s["tags"]) for s in trace["spans"] if any(
            r["refType"] == "CHILD_OF" and r["spanID"] == root["spanID"]
            for r in s["references"])]
        assert sorted(_call(c) for c in children) == ["GET /api/ps", "POST /api/chat"]
        process = trace["processes"][root["processID"]]
        assert process["serviceName"] == "ghubai-donor-7"
        assert tags(process["tags"])["service.version"] == "9.9.9"
    # the log records the other backend got carry the same trace ids as Jaeger's traces
    assert {r.trace_id.hex() for r in _traced_logs(receiver)} == {t["traceID"] for t in traces}
    assert CANARY.encode() not in raw and TOKEN.encode() not in raw
    assert CANARY.encode() not in b"".join(receiver.raw)


async def _traces_in(jaeger: Jaeger, count: int) -> list[dict[str, Any]]:
    """Jaeger's traces of the hub's requests once it holds ``count`` of them, each with
    both of its spans (the batch may bring a trace's spans apart)."""
    async with asyncio.timeout(30):
        while True:
            traces = [t for t in await asyncio.to_thread(jaeger.traces, "ghubai-donor-7")
                      if any(s["operationName"].startswith("hub request") for s in t["spans"])]
            if len(traces) >= count and all(len(t["spans"]) >= 2 for t in traces):
                return traces
            await asyncio.sleep(0.2)  # polling Jaeger's API: it has no change to wait on


def _call(span_attributes: dict[str, Any]) -> str:
    """An HTTP client span as "METHOD /path", whichever semantic conventions it follows."""
    method = span_attributes.get("http.request.method", span_attributes.get("http.method"))
    url = str(span_attributes.get("url.full", span_attributes.get("http.url")))
    return f"{method} {urlsplit(url).path}"


def _traced_logs(receiver: OtlpReceiver) -> list[Any]:
    return [r for r in receiver.logs() if "/api/chat llama3.2:1b" in r.body.string_value]


def _requests(receiver: OtlpReceiver) -> list[Any]:
    return [s for s in receiver.spans() if s.name.startswith("hub request")]


def _served(receiver: OtlpReceiver) -> int:
    points = receiver.metrics().get("ghubai.requests", [])
    served = [p.as_int for p in points
              if attributes(p.attributes).get("ghubai.outcome") == "served"]
    return max(served, default=0)


async def test_a_collector_that_is_down_slows_no_request_and_is_said_once(
        otel_env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nobody there
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    async with running_bed(ollama=OllamaStandIn(token_delay=0.01)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        start = time.monotonic()
        await (await bed.request("/api/chat", _chat(0))).wait(30)
        plain = time.monotonic() - start
    async with running_bed(ollama=OllamaStandIn(token_delay=0.01),
                           telemetry=Telemetry("9.9.9")) as bed:
        await bed.registered(MODEL, "mistral:7b")
        times = []
        for number in range(5):
            start = time.monotonic()
            await (await bed.request("/api/chat", _chat(number))).wait(30)
            times.append(time.monotonic() - start)
            await bed.worker.wait_for(lambda s: s.active == 0, 10, "the request's end")
        await bed.hub.wait_until(lambda: "OpenTelemetry could not export" in caplog.text, 30,
                                 "the failure said")
    said = [r for r in caplog.records if "OpenTelemetry could not export" in r.getMessage()]
    assert len(said) == 1
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")
                and r is not said[0] and r.levelno >= logging.WARNING]
    assert max(times) < plain + 1.0  # the export's retries are the SDK's threads' business


def test_without_the_variable_no_opentelemetry_module_is_imported(tmp_path: Path) -> None:
    code = ("import sys\n"
            "import ghubai_tray.app, ghubai_tray.cli, ghubai_tray.worker\n"
            "from ghubai_tray.app import operators_telemetry\n"
            "assert operators_telemetry({}) is None\n"
            "assert operators_telemetry({'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://x:4318',\n"
            "                            'OTEL_SDK_DISABLED': 'true'}) is None\n"
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'psutil',"
            " 'google.protobuf'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"

"""OpenTelemetry for the hub's operators, the standard way: traces, metrics and logs over OTLP.

As the seed worker's service defaults do: when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a
signal's own ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT``) is set, the worker
exports, and the SDK reads the other standard variables itself (headers, timeout,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, the batch and export intervals).
The packages are the optional ``[otel]`` extra; this module is imported only when the
variable is set (``app.operators_telemetry`` is the one test), so the tray
and a headless worker without it load none of them.

What is exported, and what never is:

- a span per hub request, from its arrival to its final answer (waiting for a slot,
  the model server's answer, the relay), with its model, endpoint, server kind,
  outcome and token counts, and the moments the model server was asked and the first
  token came as events; the HTTP call to the model server as its child span (the
  ``httpx`` instrumentation, on the model server's client only: the hub's address may
  carry a token in its query);
- metrics: requests by outcome, tokens in and out, time to first token and duration,
  requests running and waiting, the hub connection and its reconnects, the pause and
  the rule that holds it, and the process's memory and CPU;
- the log records, redacted as the log file is, with their trace context.

Never the prompt, the answer, the provider token or the hub URL's query: the
attributes come from the ledger's row (core/ledger.py: it holds none of them) and the
snapshot, and every log record is redacted before it leaves. Export is batched, on the
SDK's own threads, with bounded queues: a collector that is down costs dropped
telemetry, never a request's time, and is said once in the log.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any

import psutil
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from ghubai_tray.adapters.logs import redact
from ghubai_tray.core.errors import one_line
from ghubai_tray.core.ledger import Entry
from ghubai_tray.core.state import Snapshot, State

log = logging.getLogger("ghubai_tray.telemetry")

PROTOCOL = "http/protobuf"  # what the [otel] extra carries (no gRPC: 10 MB more)
SHUTDOWN_MS = 5_000  # the longest the worker's end waits for the last export


def _resource(version: str) -> Resource:
    """The service's name and version, the operator's OTEL_* variables winning."""
    attributes: dict[str, str] = {"service.version": version}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", "")
    if not named:
        attributes["service.name"] = "ghubai-tray"
    return Resource.create(attributes)


class _SaidOnce(logging.Filter):
    """The exporters' own complaints (a collector down, refusing, retrying): the first
    one, in plain words, then nothing more. On every handler of the root logger (a
    logger's own filter would not see its children's records); other records pass."""

    def __init__(self) -> None:
        super().__init__()
        self._first: logging.LogRecord | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("opentelemetry") or record.levelno < logging.WARNING:
            return True
        if self._first is None:
            self._first = record
            said = one_line(record.getMessage(), 200)
            record.msg = ("OpenTelemetry could not export (%s); telemetry is dropped while "
                          "the collector cannot take it, sharing goes on (said once)")
            record.args = (said,)
        return record is self._first


class _RedactingHandler(LoggingHandler):
    """The log records as the log file has them: one line, secrets redacted, no
    traceback's frames (a frame's text may quote a request)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("opentelemetry"):
            return  # its own complaints would loop through the exporter that failed
        safe = copy.copy(record)
        text = redact(one_line(record.getMessage(), 2000))
        if record.exc_info and record.exc_info[0] is not None:
            text += f" ({record.exc_info[0].__name__})"
        safe.msg, safe.args, safe.exc_info, safe.exc_text = text, None, None, None
        super().emit(safe)


class Telemetry:
    """The worker's telemetry: build it once, hand it to the worker, ``shutdown()`` last."""

    def __init__(self, version: str) -> None:
        resource = _resource(version)
        self._tracer_provider = TracerProvider(resource=resource)
        self._tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._meter_provider = MeterProvider(resource=resource, metric_readers=[
            PeriodicExportingMetricReader(OTLPMetricExporter())])
        self._logger_provider = LoggerProvider(resource=resource)
        self._logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter()))
        self._handler = _RedactingHandler(level=logging.INFO,
                                          logger_provider=self._logger_provider)
        self._quiet = _SaidOnce()
        self.tracer = self._tracer_provider.get_tracer("ghubai_tray")
        self._snapshot: Snapshot | None = None
        self._reconnects = 0
        self._process = psutil.Process()
        self._instruments()

    # -- wiring ---------------------------------------------------------------------

    def start(self) -> None:
        """Send the log records too, and quiet the exporters' own complaints."""
        root = logging.getLogger()
        for handler in root.handlers:
            handler.addFilter(self._quiet)
        root.addHandler(self._handler)
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", PROTOCOL).strip()
        if protocol != PROTOCOL:
            log.warning("OTEL_EXPORTER_OTLP_PROTOCOL is %r; this build exports over %s only "
                        "(point the variable at the collector's OTLP/HTTP port, 4318)",
                        protocol[:40], PROTOCOL)
        log.info("OpenTelemetry: exporting traces, metrics and logs over OTLP/HTTP")

    def shutdown(self) -> None:
        """Export what is left (bounded), then stop the exporters' threads."""
        root = logging.getLogger()
        root.removeHandler(self._handler)
        for provider in (self._tracer_provider, self._meter_provider, self._logger_provider):
            try:
                provider.force_flush(SHUTDOWN_MS)
                provider.shutdown()
            except Exception:  # a collector that is down: nothing more to do
                log.debug("OpenTelemetry shutdown", exc_info=True)
        for handler in root.handlers:  # the exporters' last complaints were quieted too
            handler.removeFilter(self._quiet)

    def instrument(self, client: Any) -> None:
        """The model server's HTTP client: its calls become child spans."""
        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self._tracer_provider, meter_provider=self._meter_provider)

    # -- requests ---------------------------------------------------------------------

    def traced(self, request_id: str, model: str, endpoint: str,
               work: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None]:
        """``work`` (one hub request's life) inside its span."""
        async def run() -> None:
            with self.tracer.start_as_current_span(
                    f"hub request {endpoint}", kind=SpanKind.SERVER,
                    attributes={"ghubai.request_id": request_id, "gen_ai.request.model": model,
                                "ghubai.endpoint": endpoint}):
                await work

        return run()

    def record(self, entry: Entry) -> None:
        """One request's ledger row: its span's attributes and events, and the metrics."""
        span = trace.get_current_span()
        own = span.is_recording() and getattr(span, "name", "").startswith("hub request")
        if not own:  # a refusal: no request task, a span of its own
            span = self.tracer.start_span(f"hub request {entry.endpoint or 'refused'}",
                                          kind=SpanKind.SERVER)
        attributes = _attributes(entry)
        span.set_attributes(attributes)
        end_ns = _ns(entry.at)
        if entry.duration_ms is not None and end_ns is not None:
            asked = end_ns - int(entry.duration_ms * 1e6)
            span.add_event("model server asked", timestamp=asked)
            if entry.ttft_ms is not None:
                span.add_event("first token", {"ghubai.ttft_ms": entry.ttft_ms},
                               timestamp=asked + int(entry.ttft_ms * 1e6))
        if entry.outcome != "served":
            span.set_status(Status(StatusCode.ERROR, entry.why or entry.outcome))
        if not own:
            span.end()
        labels = {"ghubai.outcome": entry.outcome, "ghubai.server_kind": entry.server,
                  "gen_ai.request.model": entry.model}
        self._requests.add(1, labels)
        if entry.prompt_tokens:
            self._tokens.add(entry.prompt_tokens, {**labels, "gen_ai.token.type": "input"})
        if entry.output_tokens:
            self._tokens.add(entry.output_tokens, {**labels, "gen_ai.token.type": "output"})
        if entry.ttft_ms is not None:
            self._ttft.record(entry.ttft_ms / 1000, labels)
        if entry.duration_ms is not None:
            self._duration.record(entry.duration_ms / 1000, labels)

    def seen(self, snap: Snapshot) -> None:
        """The latest snapshot, for the gauges; a connection lost counts a reconnect."""
        before = self._snapshot
        if (before is not None and snap.connection is State.RECONNECTING
                and before.connection is not State.RECONNECTING):
            self._reconnects += 1
        self._snapshot = snap

    # -- metrics ------------------------------------------------------------------------

    def _instruments(self) -> None:
        meter = self._meter_provider.get_meter("ghubai_tray")
        self._requests = meter.create_counter(
            "ghubai.requests", "{request}", "hub requests, by how they ended")
        self._tokens = meter.create_counter(
            "gen_ai.client.token.usage", "{token}", "tokens in (prompt) and out (answer)")
        self._ttft = meter.create_histogram(
            "ghubai.request.time_to_first_token", "s", "time from the model server asked to "
            "its first token")
        self._duration = meter.create_histogram(
            "ghubai.request.duration", "s", "time from the model server asked to the end")
        gauges: Iterable[tuple[str, str, str, Callable[[CallbackOptions], list[Observation]]]] = (
            ("ghubai.requests.running", "{request}", "requests the model server works on",
             lambda _o: self._of(lambda s: s.active)),
            ("ghubai.requests.waiting", "{request}", "requests waiting for a slot",
             lambda _o: self._of(lambda s: s.queued)),
            ("ghubai.hub.connected", "1", "1 while connected to the hub",
             lambda _o: self._of(lambda s: int(s.connection in (State.CONNECTED,
                                                                 State.REGISTERED)))),
            ("ghubai.hub.reconnects", "{reconnect}", "connections to the hub lost",
             lambda _o: [Observation(self._reconnects)]),
            ("ghubai.sharing.held", "1", "1 while paused or held by a rule (which one)",
             self._held),
            ("process.memory.usage", "By", "the worker process's resident memory",
             lambda _o: [Observation(self._process.memory_info().rss)]),
            ("process.cpu.time", "s", "the worker process's CPU time",
             lambda _o: [Observation(sum(self._process.cpu_times()[:2]))]),
        )
        for name, unit, description, callback in gauges:
            if name in ("ghubai.hub.reconnects", "process.cpu.time"):
                meter.create_observable_counter(name, [callback], unit, description)
            else:
                meter.create_observable_gauge(name, [callback], unit, description)

    def _of(self, read: Callable[[Snapshot], int]) -> list[Observation]:
        return [] if self._snapshot is None else [Observation(read(self._snapshot))]

    def _held(self, _options: CallbackOptions) -> list[Observation]:
        snap = self._snapshot
        if snap is None:
            return []
        rule = "paused by the owner" if snap.paused else snap.held_by or ""
        return [Observation(int(snap.holding), {"ghubai.rule": rule})]


def _attributes(entry: Entry) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ghubai.outcome": entry.outcome, "ghubai.server_kind": entry.server,
        "ghubai.endpoint": entry.endpoint, "gen_ai.request.model": entry.model,
        "ghubai.hub": entry.hub, "ghubai.chunks": entry.chunks}
    optional = {"gen_ai.usage.input_tokens": entry.prompt_tokens,
                "gen_ai.usage.output_tokens": entry.output_tokens,
                "ghubai.ttft_ms": entry.ttft_ms, "ghubai.duration_ms": entry.duration_ms,
                "ghubai.why": entry.why or None, "ghubai.limits": entry.limits or None,
                "ghubai.energy_wh": entry.energy_wh}
    found.update({k: v for k, v in optional.items() if v is not None})
    return found


def _ns(at: str) -> int | None:
    try:
        return int(datetime.fromisoformat(at).timestamp() * 1e9)
    except ValueError:
        return None

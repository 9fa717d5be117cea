"""An OTLP/HTTP receiver for the telemetry's tests: what a collector would get, decoded with
OpenTelemetry's own protobuf classes (``opentelemetry-proto``), and every byte kept raw, so
that a test can say that a canary or the token was in none of them."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SIGNALS: dict[str, tuple[type[Any], type[Any]]] = {
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs}


class OtlpReceiver:
    """``await start()``; ``url`` is what OTEL_EXPORTER_OTLP_ENDPOINT names."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.received: dict[str, list[Any]] = {name: [] for name in SIGNALS}
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._changed = asyncio.Event()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for name in SIGNALS:
            app.router.add_post(f"/v1/{name}", self._handler(name))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _handler(self, name: str) -> Callable[[web.Request], Any]:
        request_type, response_type = SIGNALS[name]

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            self.raw.append(body)
            self.headers.append(dict(request.headers))
            message = request_type()
            message.ParseFromString(body)
            self.received[name].append(message)
            self._changed.set()
            return web.Response(body=response_type().SerializeToString(),
                                content_type="application/x-protobuf")

        return handle

    async def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        async with asyncio.timeout(timeout):
            while not ready():
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.5)
                except TimeoutError:
                    continue
        if not ready():
            raise AssertionError(f"the receiver never got {what}")

    # -- reading ----------------------------------------------------------------------

    def spans(self) -> Iterator[Any]:
        for message in self.received["traces"]:
            for resource_spans in message.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    yield from scope_spans.spans

    def resources(self) -> Iterator[dict[str, Any]]:
        for name in SIGNALS:
            for message in self.received[name]:
                for item in getattr(message, f"resource_{name if name != 'traces' else 'spans'}"):
                    yield attributes(item.resource.attributes)

    def metrics(self) -> dict[str, list[Any]]:
        """Each metric's data points, from every export (the last export last)."""
        found: dict[str, list[Any]] = {}
        for message in self.received["metrics"]:
            for resource_metrics in message.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        found.setdefault(metric.name, []).extend(
                            getattr(metric, kind).data_points)
        return found

    def logs(self) -> Iterator[Any]:
        for message in self.received["logs"]:
            for resource_logs in message.resource_logs:
                for scope in resource_logs.scope_logs:
                    yield from scope.log_records


__all__ = ["KeyValue", "OtlpReceiver", "attributes", "value_of"]

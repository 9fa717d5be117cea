"""The real Jaeger v2, built from its Go module, for the telemetry test that reads traces back.

``make setup`` builds ``github.com/jaegertracing/jaeger/cmd/jaeger`` at :data:`JAEGER_VERSION`
(Jaeger v2: the OpenTelemetry Collector with Jaeger's storage and query extensions) into
``~/.cache/ghubai-tray/jaeger-vVERSION/`` once, as it builds the real Ollama. This module runs
it all-in-one with in-memory storage, every port a free loopback one: an OTLP/HTTP receiver
for the worker to export to, and the query service whose HTTP API (``/api/traces``, the one
Jaeger's UI reads) the test asks. Jaeger's own self-tracing and metrics are off, so what the
query API returns is the worker's alone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.testbed._util import SubprocessServer, cache_dir, free_port

JAEGER_VERSION = "1.75.0"
JAEGER_MISSING = (f"the real Jaeger ({JAEGER_VERSION}) is not built, so the test reading the "
                  "worker's traces back from Jaeger cannot run: `make setup` builds it from its "
                  "Go module (a few minutes once)")

CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{host}:{health}"
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memory_store
    http:
      endpoint: "{host}:{query}"
    grpc:
      endpoint: "{host}:{query_grpc}"
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: "{host}:{otlp}"
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
"""


def binary_path() -> Path:
    return cache_dir() / f"jaeger-v{JAEGER_VERSION}" / "jaeger"


def jaeger_available() -> bool:
    return binary_path().is_file() and os.access(binary_path(), os.X_OK)


class Jaeger(SubprocessServer):
    """``jaeger --config FILE``; ``port`` is the query API's, :attr:`otlp_url` the receiver's."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.otlp_port = free_port(host)
        self.health_port = free_port(host)
        self.grpc_port = free_port(host)

    @property
    def otlp_url(self) -> str:
        return f"http://{self.host}:{self.otlp_port}"

    def start_sync(self, timeout: float = 60.0) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="ghubai-jaeger-")
        home = Path(self._tmp.name)
        config = home / "config.yaml"
        config.write_text(CONFIG.format(host=self.host, query=self.port, otlp=self.otlp_port,
                                        health=self.health_port, query_grpc=self.grpc_port))
        self.log_path = home / "jaeger.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([str(binary_path()), "--config", str(config)],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "HOME": str(home)})
        deadline = time.monotonic() + timeout
        while not self._ready():  # readiness is an event we poll for
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop_sync()
                raise RuntimeError(f"Jaeger did not start: {tail}")
            time.sleep(0.1)
        return self.url

    def _ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (httpx.get(f"http://{self.host}:{self.health_port}/status",
                              timeout=2).status_code == 200
                    and httpx.get(f"{self.url}/api/services", timeout=2).status_code == 200)
        return False

    def traces(self, service: str) -> list[dict[str, Any]]:
        """Every trace Jaeger holds for ``service``, as its query API gives them."""
        answer = httpx.get(f"{self.url}/api/traces", params={"service": service, "limit": 100,
                                                               "lookback": "1h"}, timeout=10)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["data"] or []
        return found

    def raw(self, service: str) -> bytes:
        """The query API's answer as bytes, for what must not be anywhere in it."""
        return httpx.get(f"{self.url}/api/traces", params={"service": service, "limit": 100,
                                                            "lookback": "1h"}, timeout=10).content


def tags(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A Jaeger span's (or process's) tags as a dict."""
    return {t["key"]: t["value"] for t in items}

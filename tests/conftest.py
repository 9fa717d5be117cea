"""Suite-wide fixtures and the rule for tests that need the real llama.cpp server.

A test marked ``llm`` needs llama-cpp-python[server]. Without it the test is
skipped with a loud reason and a banner at the end of the run; under CI
(``CI=true``) it fails instead, because CI must prove the real-model path.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.processes import clean_environment
from tests.testbed.fake_nvidia import FakeNvidia
from tests.testbed.godecode import GO_MISSING, go_available
from tests.testbed.jaeger import JAEGER_MISSING, jaeger_available
from tests.testbed.llama_cpp_server import (
    LLAMA_SERVER_MISSING,
    LlamaCppServer,
    llama_cpp_server_available,
)
from tests.testbed.llm import LlamaServer, llama_server_available
from tests.testbed.real_ollama import OLLAMA_MISSING, RealOllama, real_ollama_available
from tests.testbed.secrets import secret_service
from tests.worker_bed import TOKEN

# Property tests: a quick profile for every run, and a "fuzz" profile (make fuzz) with at
# least 10,000 generated cases per property.
settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("fuzz", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

LLM_MISSING = ("llama-cpp-python[server] is not installed, so the real-model tests cannot run: "
               "`make test` installs it (first build about 3 minutes)")


# Each counterpart a marked test needs: the marker, whether it is here, what to do if not,
# and the banner shown at the end of a run without it.
COUNTERPARTS = (
    ("llm", llama_server_available, LLM_MISSING, "REAL-MODEL TESTS DID NOT RUN"),
    ("go", go_available, GO_MISSING, "OLLAMA'S GO DECODER DID NOT RUN"),
    ("ollama", real_ollama_available, OLLAMA_MISSING, "REAL-OLLAMA TESTS DID NOT RUN"),
    ("llamacpp", llama_cpp_server_available, LLAMA_SERVER_MISSING,
     "LLAMA-SERVER TESTS DID NOT RUN"),
    ("jaeger", jaeger_available, JAEGER_MISSING, "THE REAL-JAEGER TEST DID NOT RUN"),
)


# The Windows lane (make test-windows) runs on Windows CPython under Wine; these
# counterparts are Linux programs built here, and the Linux lane runs their tests.
LINUX_LANE = {
    "llm": "llama.cpp's server is built for Linux here; the Linux lane (make test) runs it",
    "go": "Ollama's Go decoder is built for Linux here; the Linux lane (make test) runs it",
    "ollama": "the real Ollama is built for Linux here; the Linux lane (make test) runs it",
    "llamacpp": "llama.cpp's llama-server is built for Linux here; the Linux lane runs it",
    "jaeger": "Jaeger is built for Linux here; the Linux lane (make test) runs it",
}


# Whole files that belong to the Linux lane, and where their Windows side is proven.
ELSEWHERE_ON_WINDOWS = {
    "test_tray_desktop.py": "the Linux tray (Gtk, AppIndicator, trayer); the installed Windows "
                            "tray is driven by make dist-windows-check",
    "test_settings_window.py": "drives the window with Linux X tools from the test; the "
                               "installed Windows app's Settings window is checked by make "
                               "dist-windows-check",
    "test_conformance.py": "Microsoft's @microsoft/signalr client runs under the Linux Node.js",
    "test_dist.py": "the .deb is Linux's; the Windows installer is make dist-windows-check's",
    "test_installer_files.py": "Linux build tools (desktop-file-validate, makensis)",
    "test_windows_dist.py": "drives Wine from Linux",
    "test_release.py": "release files are made and signed on Linux (make release-sums); "
                       "the Windows build is checked by make dist-windows-check",
    "test_workflows.py": "actionlint checks the workflows once, in the Linux lane",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if sys.platform != "win32":
        return
    for item in items:
        if reason := ELSEWHERE_ON_WINDOWS.get(item.path.name):
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, available, missing, _ in COUNTERPARTS:
        if sys.platform == "win32" and item.get_closest_marker(marker):
            pytest.skip(LINUX_LANE[marker])
        if item.get_closest_marker(marker) and not available():
            if os.environ.get("CI"):
                pytest.fail(missing, pytrace=False)
            pytest.skip(missing)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if sys.platform == "win32":
        return  # those lanes are the Linux run's, and say so in each skip
    for _, available, missing, banner in COUNTERPARTS:
        if not available():
            terminalreporter.write_sep("!", banner, red=True, bold=True)
            terminalreporter.write_line(missing, red=True)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """One real llama.cpp server on the tiny model for the whole run (it loads in < 1 s)."""
    server = LlamaServer()
    url = server.start_sync()
    yield url
    server.stop_sync()


@pytest.fixture(scope="session")
def llama_cpp_server() -> Iterator[str]:
    """llama.cpp's own llama-server on the tiny model, for the whole run."""
    server = LlamaCppServer()
    url = server.start_sync()
    yield url
    server.stop_sync()


@pytest.fixture(scope="session")
def real_ollama() -> Iterator[str]:
    """The real Ollama, built from its Go module, serving tiny-llama:latest, for the run."""
    server = RealOllama()
    url = server.start_sync()
    yield url
    server.stop_sync()


@pytest.fixture
def keyring_env() -> Iterator[dict[str, str]]:
    """A private, unlocked Secret Service: the environment variables that reach it.

    One per test (it starts in well under a second): a token one test stores must not be
    found by the next (the Settings window's test stores one for hub.example.com, and
    'token status' there once found it, depending only on the order of the files)."""
    with secret_service() as env:
        yield env


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def token_never_logged() -> Iterator[None]:
    """Grep every log line of the whole run, at DEBUG and before any redaction, for the token.

    The processes the CLI tests start write their own stderr and log files;
    those tests grep them the same way.
    """
    recorder = _Recorder()
    recorder.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    yield
    attached = recorder in root.handlers
    root.removeHandler(recorder)
    root.setLevel(level)
    leaks = [line for line in recorder.lines if TOKEN in line]
    assert attached, "a test detached the log recorder, so the grep saw only part of the run"
    assert not leaks, f"the token appeared in {len(leaks)} log line(s), first: {leaks[0][:300]}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for running ``ghubai-tray`` as a process (see tests/processes.py)."""
    return clean_environment(tmp_path)


@pytest.fixture
def nvidia(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
           ) -> FakeNvidia:
    """A fake NVIDIA driver whose readings the test writes (tests/testbed/fake_nvidia.py)."""
    return FakeNvidia(tmp_path_factory.mktemp("nvidia"), monkeypatch)

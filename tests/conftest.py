"""Suite-wide fixtures and the rule for tests that need the real llama.cpp server.

A test marked ``llm`` needs llama-cpp-python[server]. Without it the test is
skipped with a loud reason and a banner at the end of the run; under CI
(``CI=true``) it fails instead, because CI must prove the real-model path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.testbed.llm import LlamaServer, llama_server_available
from tests.testbed.secrets import secret_service

LLM_MISSING = ("llama-cpp-python[server] is not installed, so the real-model tests cannot run: "
               "`make test` installs it (first build about 3 minutes)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("llm") and not llama_server_available():
        if os.environ.get("CI"):
            pytest.fail(LLM_MISSING, pytrace=False)
        pytest.skip(LLM_MISSING)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not llama_server_available():
        terminalreporter.write_sep("!", "REAL-MODEL TESTS DID NOT RUN", red=True, bold=True)
        terminalreporter.write_line(LLM_MISSING, red=True)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """One real llama.cpp server on the tiny model for the whole run (it loads in < 1 s)."""
    server = LlamaServer()
    url = server.start_sync()
    yield url
    server.stop_sync()


@pytest.fixture(scope="session")
def keyring_env() -> Iterator[dict[str, str]]:
    """A private, unlocked Secret Service: the environment variables that reach it."""
    with secret_service() as env:
        yield env

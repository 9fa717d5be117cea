"""TLS to the hub: the OS trust store by default, no checking only when asked, loudly."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghubai_tray.core.state import State
from tests.processes import cli
from tests.testbed.certs import LoopbackPKI, make_pki
from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.worker_bed import TOKEN, running_bed, with_settings


@pytest.fixture
def pki(tmp_path: Path) -> Iterator[LoopbackPKI]:
    yield make_pki(tmp_path)


async def test_an_untrusted_certificate_is_refused_with_advice(pki: LoopbackPKI) -> None:
    hub = GridHub(tokens=[TOKEN], tls=pki.server_context())
    async with running_bed(hub=hub) as bed:
        snap = await bed.worker.wait_for(lambda s: "not trusted" in s.reason, 15, "the refusal")
        assert snap.connection is State.RECONNECTING
        assert snap.reason == (f"the certificate of 127.0.0.1:{hub.port} is not trusted by this "
                               "computer; for a development hub only, set ALLOW_INVALID_CERTS=1")
        assert not hub.nodes and not snap.insecure_tls


async def test_allow_invalid_certs_connects_and_warns_every_time(
    pki: LoopbackPKI, caplog: pytest.LogCaptureFixture
) -> None:
    hub = GridHub(tokens=[TOKEN], tls=pki.server_context())
    caplog.set_level(logging.WARNING, logger="ghubai_tray")
    async with running_bed(hub=hub, settings=with_settings(allow_invalid_certs=True)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        assert bed.worker.snapshot.insecure_tls
        first = set(hub.nodes)
        await hub.drop_connections()
        await hub.wait_until(lambda: hub.nodes and set(hub.nodes) != first, 15, "a new node")
    warnings = [r.getMessage() for r in caplog.records
                if "without checking the hub's certificate" in r.getMessage()]
    assert len(warnings) >= 2, "a warning at every connect"


@pytest.mark.skipif(sys.platform == "win32", reason="Windows' trust store is its certificate "
                    "store, and adding a root there asks the user to confirm")
async def test_a_ca_in_the_os_trust_store_is_trusted(pki: LoopbackPKI, env: dict[str, str]) -> None:
    # OpenSSL's default verify paths are the Linux "OS trust store" truststore uses;
    # SSL_CERT_FILE points them at a bundle holding our CA, as an installed CA would.
    hub = GridHub(tokens=[TOKEN], tls=pki.server_context())
    ollama = OllamaStandIn()
    await hub.start()
    await ollama.start()
    try:
        run_env = {**env, "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
                   "OLLAMA_LOCAL_URL": ollama.url}
        code, out, _ = await cli("doctor", env={**run_env, "SSL_CERT_FILE": str(pki.ca_pem)})
        assert code == 0, out
        assert "[  ok] TLS: the hub's certificate is checked against this computer's trust " \
               "store" in out
        code, out, _ = await cli("doctor", env=run_env)
        assert code == 1 and "is not trusted by this computer" in out
    finally:
        await hub.stop()
        await ollama.stop()

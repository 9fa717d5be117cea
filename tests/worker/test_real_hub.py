"""The worker against a hub that behaves as the public GhubAi hub (44abd00) does.

The test hub's default behaviour, ``Behaviour.GHUBAI``: no request timeout, a
request's chunks taken from any connection, the load count reset by every
RegisterNode, a client's Close message treated as a protocol error, a
non-streamed answer parsed as JSON and returned with 200 whatever it says (500
when it is not JSON). These tests go through the hub's own OpenAI endpoint with
the ``openai`` SDK, as a user of the hub would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ghubai_tray.core.state import State, Stop
from tests.testbed.certs import make_pki
from tests.testbed.hub import AuthMode, Behaviour, GridHub
from tests.testbed.ollama import Fault
from tests.worker_bed import TOKEN, running_bed

MODEL = "llama3.2:1b"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_a_failed_non_streamed_request_reaches_the_sdk_as_json_and_is_not_retried(
) -> None:
    # GhubAi answers 200 with whatever JSON the fragments make, so the SDK does not raise
    # for a non-streamed error (no worker can change that status); what it gets is OpenAI's
    # own error object, once, instead of a 500 parse error it would retry twice.
    async with running_bed() as bed:
        assert bed.hub.behaviour is Behaviour.GHUBAI
        await bed.registered(MODEL, "mistral:7b")
        bed.ollama.fault = Fault.INTERNAL
        client = openai.AsyncOpenAI(base_url=f"{bed.hub.base}/v1", api_key="unused")
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES)
        await client.close()
        assert raw.http_response.status_code == 200
        error = json.loads(raw.http_response.text)["error"]
        assert error["message"] == ("Ollama answered 500: llama runner process has terminated: "
                                    "exit status 2")
        assert error["type"] == "api_error"
        assert len(bed.hub.requests) == 1, "not retried"


async def test_a_failed_streamed_request_raises_the_sdks_api_error() -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        bed.ollama.fault = Fault.MID_STREAM
        client = openai.AsyncOpenAI(base_url=f"{bed.hub.base}/v1", api_key="unused")
        # (the worker reads Ollama's native stream for /v1 too: the runner's error line)
        with pytest.raises(openai.APIError, match=r"Ollama: an error was encountered while "
                                                  r"running the model"):
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                          stream=True)
            async for _ in stream:
                pass
        await client.close()
        assert len(bed.hub.requests) == 1


async def test_stopping_never_sends_a_close_the_hub_would_reject() -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        bed.worker.submit(Stop(grace=1.0))
        await bed.worker.wait_for(lambda s: s.connection is State.STOPPED, 15, "stopped")
        await bed.hub.wait_until(lambda: not bed.hub.connections, 15, "the socket closed")
        assert not any("Close" in why for _, why in bed.hub.closes), bed.hub.closes
        assert [code for _, code in bed.hub.client_closes] == [1000]


async def test_an_unknown_model_is_404_as_ghubai_answers_it() -> None:
    hub = GridHub(tokens=[TOKEN])
    await hub.start()
    try:
        client = openai.AsyncOpenAI(base_url=f"{hub.base}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="nobody:has", messages=MESSAGES)
        await client.close()
    finally:
        await hub.stop()


async def test_a_client_close_message_is_a_protocol_error_for_ghubai() -> None:
    # What the worker used to send on shutdown: this hub, like ASP.NET, rejects it.
    import aiohttp

    hub = GridHub()
    await hub.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{hub.url}/negotiate?negotiateVersion=1") as resp:
                token = (await resp.json())["connectionToken"]
            async with session.ws_connect(f"{hub.url}?id={token}") as ws:
                await ws.send_str('{"protocol":"json","version":1}\x1e')
                await ws.receive()
                await ws.send_str('{"type":7}\x1e')
                reply = await ws.receive()
                assert json.loads(reply.data.rstrip("\x1e"))["error"] == (
                    "Connection closed with an error.")
    finally:
        await hub.stop()


async def test_the_token_reaches_ghubai_which_reads_it_from_the_query_only() -> None:
    # GhubAi never looks at the Authorization header: a worker that sent its token only
    # there would connect as nobody, and a deployment that does check would refuse it.
    hub = GridHub(auth=AuthMode.GHUBAI)
    async with running_bed(hub=hub) as bed:
        await bed.registered(MODEL, "mistral:7b")
        assert hub.tokens_seen and set(hub.tokens_seen) == {TOKEN}


async def test_an_http_hub_url_follows_ghubais_https_redirection_and_serves(
        tmp_path: Path) -> None:
    # UseHttpsRedirection: http:// answers 307 to https on the same host. The worker
    # follows it with the token (same host, up to TLS) and then serves as usual.
    hub = GridHub(auth=AuthMode.GHUBAI, tls=make_pki(tmp_path).server_context(),
                  https_redirection=True)
    async with running_bed(hub=hub, settings=lambda s: replace(
            s, hub_url=hub.http_url, allow_invalid_certs=True)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        assert any(r.status == 307 for r in hub.http), "the http front never redirected"
        assert set(hub.tokens_seen) == {TOKEN}
        request = await bed.request("/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
            target="RequestOpenAI")
        text = await request.wait(30)
        assert '"finish_reason":"stop"' in text and request.chunks[-1]["tokenFragment"] == ""

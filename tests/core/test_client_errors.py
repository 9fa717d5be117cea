"""A failed request reaches an ordinary client as its own API's error, not as text it cannot
parse: the ``openai`` SDK raises an API error with the worker's words, once, and Ollama-style
clients get Ollama's ``{"error": ...}`` line."""

from __future__ import annotations

import json

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.client_errors import client_error, final_fragment, is_openai
from tests.testbed.ollama import Fault
from tests.worker_bed import error_of, failure_of, running_bed

MODEL = "llama3.2:1b"


async def test_the_openai_sdk_raises_the_workers_error_while_streaming_and_does_not_retry(
) -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        bed.ollama.fault = Fault.BUSY
        client = openai.AsyncOpenAI(base_url=f"{bed.hub.base}/v1", api_key="unused")
        with pytest.raises(openai.APIError) as caught:
            stream = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
            async for _ in stream:
                pass
        await client.close()
        assert caught.value.message == ("Ollama answered 503: server busy, please try again.  "
                                        "maximum pending requests exceeded")
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "api_error"
        assert len(bed.hub.requests) == 1, "the SDK did not send the failing request again"


async def test_a_refused_openai_request_says_why_in_openais_shape() -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        req = await bed.request("/v1/chat/completions",
                                '{"model":"llama3.2:1b","Model":"secret","messages":[]}',
                                target="RequestOpenAI")
        await req.wait()
        error = json.loads(req.chunks[-1]["tokenFragment"])["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "request_refused"
        assert "spells 'Model' differently" in error["message"]


async def test_a_native_failure_is_ollamas_own_error_line() -> None:
    async with running_bed() as bed:
        await bed.registered(MODEL, "mistral:7b")
        bed.ollama.fault = Fault.MID_STREAM
        req = await bed.request("/api/chat", {"model": MODEL, "stream": True, "messages": [
            {"role": "user", "content": "hi"}]})
        message = await failure_of(req)
        assert message.startswith("Ollama: an error was encountered while running the model")
        assert json.loads(req.chunks[-1]["tokenFragment"]) == {"error": message}


@given(st.text(max_size=300), st.booleans(), st.booleans())
def test_every_error_final_is_one_json_line_in_the_clients_shape(reason: str, openai_: bool,
                                                                 refused: bool) -> None:
    text = client_error(reason, openai_, refused=refused)
    assert "\n" not in text, "one SSE event, one NDJSON line"
    assert error_of(text) == reason
    assert isinstance(json.loads(text)["error"], dict) is openai_
    assert final_fragment("", openai_) == ""
    assert final_fragment(f"[error] {reason}", openai_, refused=refused) == text


def test_which_clients_speak_openai() -> None:
    assert is_openai("/v1/chat/completions") and is_openai(None, "RequestOpenAI")
    assert not is_openai("/api/chat", "RequestInference") and not is_openai(7)

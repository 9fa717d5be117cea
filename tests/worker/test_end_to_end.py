"""An ordinary OpenAI client, the hub, the worker and real llama.cpp tokens, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.testbed.llm import MODEL_ALIAS, OllamaFront
from tests.worker_bed import Bed, running_bed

pytestmark = pytest.mark.llm
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture
async def front(llama_server: str) -> AsyncIterator[str]:
    server = OllamaFront(llama_server)
    yield await server.start()
    await server.stop()


def direct_answer(llama_server: str) -> str:
    """What llama.cpp answers when asked directly (greedy decoding is deterministic)."""
    answer = httpx.post(f"{llama_server}/v1/chat/completions", timeout=60, json={
        "model": MODEL_ALIAS, "messages": MESSAGES, "max_tokens": 16, "temperature": 0}).json()
    text = answer["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip()
    return text


@asynccontextmanager
async def client_through_worker(front: str) -> AsyncIterator[tuple[Bed, openai.AsyncOpenAI]]:
    """A worker serving the real model, and an OpenAI client pointed at the hub."""
    async with running_bed(ollama_url=front) as bed:
        await bed.registered(MODEL_ALIAS)
        client = openai.AsyncOpenAI(base_url=f"{bed.hub.base}/v1", api_key="unused",
                                    max_retries=0)
        try:
            yield bed, client
        finally:
            await client.close()


async def test_openai_client_streams_real_tokens_through_the_worker(
    front: str, llama_server: str
) -> None:
    expected = direct_answer(llama_server)
    async with client_through_worker(front) as (bed, client):
        stream = await client.chat.completions.create(
            model=MODEL_ALIAS, messages=MESSAGES, stream=True, max_tokens=16, temperature=0)
        pieces = [chunk.choices[0].delta.content async for chunk in stream
                  if chunk.choices and chunk.choices[0].delta.content]
        assert len(pieces) >= 5, pieces
        assert "".join(pieces) == expected
        assert bed.worker.snapshot.totals.served == 1


async def test_openai_client_gets_the_whole_answer_without_streaming(
    front: str, llama_server: str
) -> None:
    expected = direct_answer(llama_server)
    async with client_through_worker(front) as (_, client):
        answer = await client.chat.completions.create(
            model=MODEL_ALIAS, messages=MESSAGES, max_tokens=16, temperature=0)
        assert answer.choices[0].message.content == expected
        assert answer.usage is not None and answer.usage.completion_tokens >= 1

"""An ordinary OpenAI client, the hub, the worker and the real Ollama's tokens, end to end.

The worker serves ``/v1`` requests through Ollama's native API (so that the owner's
context and keep-alive hold) and writes the answer back as Ollama's OpenAI layer
would: Microsoft's hub, OpenAI's own client and Ollama itself are the judges here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.testbed.real_ollama import MODEL
from tests.worker_bed import Bed, running_bed, with_settings

pytestmark = pytest.mark.ollama
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Why is the sky blue?"}]


def direct_answer(real_ollama: str) -> str:
    """What Ollama's /v1 answers when asked directly (greedy decoding is deterministic)."""
    answer = httpx.post(f"{real_ollama}/v1/chat/completions", timeout=120, json={
        "model": MODEL, "messages": MESSAGES, "max_tokens": 16, "temperature": 0,
        "seed": 1}).json()
    text = answer["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip()
    return text


@asynccontextmanager
async def client_through_worker(url: str) -> AsyncIterator[tuple[Bed, openai.AsyncOpenAI]]:
    """A worker serving the real model, and an OpenAI client pointed at the hub."""
    # (the test asks Ollama directly too: owner first would take that for the owner)
    async with running_bed(ollama_url=url, settings=with_settings(owner_first=False)) as bed:
        await bed.registered(MODEL)
        client = openai.AsyncOpenAI(base_url=f"{bed.hub.base}/v1", api_key="unused",
                                    max_retries=0)
        try:
            yield bed, client
        finally:
            await client.close()


async def test_openai_client_streams_real_tokens_through_the_worker(real_ollama: str) -> None:
    expected = direct_answer(real_ollama)
    async with client_through_worker(real_ollama) as (bed, client):
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, max_tokens=16, temperature=0, seed=1)
        pieces = [chunk.choices[0].delta.content async for chunk in stream
                  if chunk.choices and chunk.choices[0].delta.content]
        assert len(pieces) >= 5, pieces
        assert "".join(pieces) == expected
        assert bed.worker.snapshot.totals.served == 1


async def test_openai_client_gets_the_whole_answer_without_streaming(real_ollama: str) -> None:
    expected = direct_answer(real_ollama)
    async with client_through_worker(real_ollama) as (_, client):
        answer = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=16, temperature=0, seed=1)
        assert answer.choices[0].message.content == expected
        assert answer.usage is not None and answer.usage.completion_tokens >= 1

"""The tiny generated model, served by the real llama.cpp server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.testbed.llm import MODEL_ALIAS, write_tiny_model


@pytest.mark.llm  # gguf and numpy belong to the real-model lane
def test_tiny_model_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    import gguf

    a = write_tiny_model(tmp_path / "a.gguf")
    b = write_tiny_model(tmp_path / "b.gguf")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert a.stat().st_size < 2_000_000
    reader = gguf.GGUFReader(a)
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "llama"
    tokens = reader.fields["tokenizer.ggml.tokens"]
    names = [bytes(tokens.parts[i]).decode() for i in tokens.data]
    assert {f"<0x{b:02X}>" for b in range(256)} <= set(names)
    assert 300 < len(names) < 1000
    assert len([t for t in reader.tensors if t.name.startswith("blk.")]) == 2 * 9


@pytest.mark.llm
def test_llama_cpp_streams_a_chat_completion(llama_server: str) -> None:
    body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "hello"}],
            "stream": True, "max_tokens": 12, "temperature": 0}
    with httpx.stream("POST", f"{llama_server}/v1/chat/completions", json=body,
                      timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line for line in resp.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    words = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert len([w for w in words if w]) >= 5, words
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")


@pytest.mark.llm
def test_llama_cpp_answers_without_streaming(llama_server: str) -> None:
    body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 8, "temperature": 0}
    answer = httpx.post(f"{llama_server}/v1/chat/completions", json=body, timeout=60).json()
    assert answer["object"] == "chat.completion"
    assert answer["usage"]["completion_tokens"] >= 1
    assert answer["choices"][0]["message"]["content"].strip()

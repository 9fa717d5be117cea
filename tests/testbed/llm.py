"""A real inference server: llama.cpp (llama-cpp-python's server) on a tiny generated model.

No model can be downloaded here, so the tests make one: a llama-architecture
GGUF with 2 layers of width 64, a few hundred tokens of SentencePiece-style
vocabulary (llama.cpp insists on the 256 ``<0xNN>`` byte tokens) and random
weights from a fixed seed. It loads in well under a second and streams real
tokens through llama.cpp's real OpenAI-compatible server, which is what the
end-to-end tests of the ``/v1/chat/completions`` path relay.

The output rows of the control and byte tokens are zeroed and the other rows
scaled up, so greedy decoding practically never picks end-of-sequence or a
lone byte: the stream is made of whole words, long enough to be a stream.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web

from tests.testbed._util import SubprocessServer, main_guard, run_main, serve

MODEL_ALIAS = "tiny-llama"
WORDS = ("the sky is blue because light scatters in air and we see it every day when sun "
         "shines over sea hills trees birds fly home after rain a small model says hello "
         "world from llama cpp to ghubai tray worker hub token stream").split()
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}assistant:"
)


def llama_server_available() -> bool:
    """True when llama-cpp-python and its server extras are importable."""
    try:
        modules = ("llama_cpp", "llama_cpp.server", "uvicorn", "fastapi", "sse_starlette")
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):
        return False


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces += [f"\u2581{chr(c)}" for c in range(ord("a"), ord("z") + 1)]
    pieces += [f"\u2581{w}" for w in dict.fromkeys(WORDS) if len(w) > 1]
    pieces += [":", "\u2581:", "."]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    # SentencePiece merges prefer higher scores: longer pieces win.
    scores = [0.0] * (3 + 256) + [float(len(p)) for p in pieces]
    return tokens, scores, [int(t) for t in types]


def write_tiny_model(path: Path, seed: int = 1234, n_layer: int = 2, n_embd: int = 64,
                     n_head: int = 4, n_ff: int = 128, n_ctx: int = 512) -> Path:
    """Write the tiny GGUF to ``path`` (deterministic for a given seed) and return it."""
    import gguf
    import numpy as np

    tokens, scores, types = _vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weights(*shape: int, scale: float = 0.08) -> np.ndarray[Any, np.dtype[np.float32]]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("ghubai-tiny-llama")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weights(n_vocab, n_embd, scale=1.0))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    output = weights(n_vocab, n_embd, scale=1.0)
    output[: 3 + 256] = 0.0  # never prefer control or byte tokens
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class LlamaServer(SubprocessServer):
    """llama-cpp-python's OpenAI-compatible server on the tiny model, in a subprocess."""

    def __init__(self, model: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.model = model

    def start_sync(self, timeout: float = 60.0) -> str:
        if self.model is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ghubai-llm-")
            self.model = write_tiny_model(Path(self._tmp.name) / "tiny.gguf")
        log_dir = Path(self._tmp.name if self._tmp else tempfile.gettempdir())
        self.log_path = log_dir / f"llama-server-{self.port}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
             "--model_alias", MODEL_ALIAS, "--host", self.host, "--port", str(self.port),
             "--n_ctx", "512", "--n_threads", "1", "--verbose", "False"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        # Readiness is an event we poll for: the server answers /v1/models once loaded.
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama server exited: {self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v1/models", timeout=2).status_code == 200:
                    return self.url
            time.sleep(0.1)
        self.stop_sync()
        raise RuntimeError(f"llama server not ready in {timeout}s: {self.log_path.read_text()}")



class OllamaFront:
    """Ollama's model list in front of the llama.cpp server, everything else passed through.

    llama-cpp-python serves the OpenAI-compatible API but not ``/api/tags``,
    which is how the worker discovers models. Real Ollama is itself a front
    for a llama.cpp server, so this adds just that one route and relays every
    other request byte for byte, streaming, status and content type kept.
    """

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self.host = host
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/tags", self._tags)
        app.router.add_route("*", "/{tail:.*}", self._pass)
        self._session = aiohttp.ClientSession()
        self._runner, self.port = await serve(app, self.host, 0)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": MODEL_ALIAS, "model": MODEL_ALIAS}]})

    async def _pass(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        async with self._session.request(
            request.method, f"{self.upstream}{request.rel_url}", data=body,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                "Content-Type": upstream.headers.get("Content-Type", "application/json")})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


def _build(args: argparse.Namespace) -> LlamaServer:
    return LlamaServer(Path(args.model) if args.model else None, args.host, args.port)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="GGUF to serve (default: generate the tiny model)")


def main(argv: list[str] | None = None) -> int:
    if not llama_server_available():
        print("llama-cpp-python[server] is not installed; `make test` installs it.",
              file=sys.stderr)
        return 1
    return run_main("Real llama.cpp server on a tiny generated model", _add_arguments, _build,
                    argv)


if __name__ == "__main__":
    main_guard(main)

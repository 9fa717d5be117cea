"""Stand-ins for local model servers other than Ollama, as far as telling them apart goes.

KoboldCpp and LM Studio cannot run here (no binaries for this machine's registries, no
GPU); llama.cpp's own ``llama-server`` is not built by the test bed yet. These answer
the GET routes GhubAi Tray probes (core/server_kinds.py) the way each server does, from
its documentation and source (docs/MODEL_SERVERS.md says which):

- KoboldCpp (1.117): its own ``/api/extra/version`` banner, and at the same time its
  emulations of Ollama (``/api/version``, ``/api/tags``), OpenAI (``/v1/models``) and
  llama.cpp (``/props``): the case that shows why ``/api/tags`` alone cannot tell;
- LM Studio (0.3.6+): ``/api/v0/models`` (models with ``state`` and
  ``compatibility_type``) and ``/v1/models``; as 0.4+ (``lmstudio_v1``), its REST API's
  ``/api/v1/models`` (each model's ``key`` and ``loaded_instances``) and
  ``POST /api/v1/models/unload`` (``instance_id``), and a chat on a model not in
  memory loads it first (its just-in-time loading);
- llama.cpp's ``llama-server``: ``/props`` (``build_info``, ``total_slots``,
  ``default_generation_settings``), ``/health`` and ``/v1/models`` (both ``models``
  and ``data``).

Each also answers ``POST /v1/chat/completions`` (all of them have it) with a short
answer in OpenAI's shape, streamed or not, and keeps every body it was sent
(``bodies``), so a test reads back what the worker let through to that kind of
server. Everything else is a 404, as each server answers an unknown route.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from aiohttp import web

from tests.testbed._util import LoopbackServer


class Kind(enum.Enum):
    KOBOLDCPP = "KoboldCpp"
    LMSTUDIO = "LM Studio"
    LLAMACPP = "llama-server"


KOBOLD_VERSION = "1.117.1"
LLAMA_BUILD = "b6123-1d72c841"
MODEL = "Llama-3.2-1B-Instruct-Q4_K_M"


def _openai_list() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1764900000,
                                        "owned_by": "llamacpp"}]}


ROUTES: dict[Kind, dict[str, Any]] = {
    Kind.KOBOLDCPP: {
        "/api/extra/version": {"result": "KoboldCpp", "version": KOBOLD_VERSION,
                               "protected": False, "txt2img": False, "vision": False,
                               "transcribe": False, "multiplayer": False, "websearch": False,
                               "tts": False, "embeddings": False},
        "/api/version": {"version": "0.6.4"},  # its Ollama emulation
        "/api/tags": {"models": [{"name": "koboldcpp", "model": f"koboldcpp/{MODEL}:latest",
                                  "modified_at": "2026-07-10T15:26:55.6122841+08:00",
                                  "size": 394998579, "digest": "b5dc5e784f2a3ee1582373093acf69a"
                                  "2f4e2ac1710b253a001712b86a61f88bb",
                                  "details": {"parent_model": "", "format": "gguf",
                                              "family": "koboldcpp", "families": ["koboldcpp"],
                                              "parameter_size": "128M",
                                              "quantization_level": "Q4_0"}}]},
        "/v1/models": {"object": "list", "data": [{"id": f"koboldcpp/{MODEL}", "object": "model",
                                                   "created": 1, "owned_by": "koboldcpp",
                                                   "permission": [], "root": "koboldcpp"}]},
        "/props": {"chat_template": "", "total_slots": 1,
                   "default_generation_settings": {"n_ctx": 8192}},
    },
    Kind.LMSTUDIO: {
        "/api/v0/models": {"object": "list", "data": [
            {"id": "meta-llama-3.1-8b-instruct", "object": "model", "type": "llm",
             "publisher": "lmstudio-community", "arch": "llama", "compatibility_type": "gguf",
             "quantization": "Q4_K_M", "state": "loaded", "max_context_length": 131072},
            {"id": "text-embedding-nomic-embed-text-v1.5", "object": "model",
             "type": "embeddings", "publisher": "nomic-ai", "arch": "nomic-bert",
             "compatibility_type": "gguf", "quantization": "Q4_0", "state": "not-loaded",
             "max_context_length": 2048}]},
        "/v1/models": {"object": "list", "data": [
            {"id": "meta-llama-3.1-8b-instruct", "object": "model",
             "owned_by": "organization_owner"},
            {"id": "text-embedding-nomic-embed-text-v1.5", "object": "model",
             "owned_by": "organization_owner"}]},
    },
    Kind.LLAMACPP: {
        "/props": {"default_generation_settings": {"n_ctx": 4096, "params": {"n_predict": -1}},
                   "total_slots": 1, "model_path": f"/models/{MODEL}.gguf",
                   "chat_template": "{{ messages }}", "modalities": {"vision": False},
                   "build_info": LLAMA_BUILD},
        "/health": {"status": "ok"},
        "/v1/models": {"models": [{"name": f"{MODEL}.gguf", "model": f"{MODEL}.gguf",
                                   "type": "model", "description": "", "tags": [""],
                                   "capabilities": ["completion"]}],
                       **_openai_list()},
    },
}


LMSTUDIO_SECOND = "qwen2.5-7b-instruct"  # a second chat model, not in memory at first


class ModelServerStandIn(LoopbackServer):
    def __init__(self, kind: Kind, *, lmstudio_v1: bool = False,
                 second_model: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.requests: list[tuple[str, str]] = []  # (method, path) of each request
        self.bodies: list[dict[str, Any]] = []  # each chat request's body, as received
        self.lmstudio_v1 = lmstudio_v1
        self.second_model = second_model
        self.loaded = {"meta-llama-3.1-8b-instruct"}  # LM Studio's models in memory
        self.unloaded: list[str] = []  # the instance ids LM Studio was asked to unload

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if (request.method, request.path) == ("POST", "/v1/chat/completions"):
            return await self._chat(request)
        if self.kind is Kind.LMSTUDIO:
            answer = await self._lmstudio(request)
            if answer is not None:
                return answer
        answer = ROUTES[self.kind].get(request.path) if request.method == "GET" else None
        if answer is None:
            return web.json_response({"error": "Not Found"}, status=404)
        return web.json_response(answer)

    async def _lmstudio(self, request: web.Request) -> web.StreamResponse | None:
        """LM Studio's own routes, as its state of memory says."""
        route = (request.method, request.path)
        if route == ("GET", "/api/v0/models"):
            models = list(ROUTES[Kind.LMSTUDIO]["/api/v0/models"]["data"])
            if self.second_model:
                models.insert(1, {**models[0], "id": LMSTUDIO_SECOND, "arch": "qwen2"})
            return web.json_response({"object": "list", "data": [
                {**m, "state": "loaded" if m["id"] in self.loaded else "not-loaded"}
                for m in models]})
        if not self.lmstudio_v1:
            return None
        if route == ("GET", "/api/v1/models"):
            keys = ["meta-llama-3.1-8b-instruct", *([LMSTUDIO_SECOND] if self.second_model
                                                   else [])]
            return web.json_response({"models": [
                {"type": "llm", "publisher": "lmstudio-community", "key": key,
                 "display_name": key, "max_context_length": 32768,
                 "loaded_instances": [{"id": key, "config": {"context_length": 4096}}]
                 if key in self.loaded else []} for key in keys]})
        if route == ("POST", "/api/v1/models/unload"):
            instance = (await request.json())["instance_id"]
            if instance not in self.loaded:
                return web.json_response({"error": {"message": "not loaded"}}, status=404)
            self.loaded.discard(instance)
            self.unloaded.append(instance)
            return web.json_response({"instance_id": instance})
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.bodies.append(body)
        self.loaded.add(body.get("model", ""))  # loaded just in time, as LM Studio does
        words = ["The", " sky", " is", " blue"]
        usage = {"prompt_tokens": 9, "completion_tokens": len(words),
                 "total_tokens": 9 + len(words)}
        base = {"id": "chatcmpl-1", "created": 1764900000, "model": body.get("model", "")}
        if not body.get("stream"):
            return web.json_response({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                 "finish_reason": "stop"}], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = [{"role": "assistant", "content": ""}, *({"content": w} for w in words)]
        for delta in chunks:
            await response.write(_event({**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": delta, "finish_reason": None}]}))
        await response.write(_event({**base, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(_event({**base, "object": "chat.completion.chunk",
                                         "choices": [], "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        return response


def _event(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()

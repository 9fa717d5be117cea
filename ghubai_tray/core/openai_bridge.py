"""OpenAI requests served through Ollama's native API, answered as Ollama's OpenAI layer would.

Ollama's ``/v1`` endpoints take no ``options`` and no ``keep_alive``: a request
there runs at the owner's ``OLLAMA_CONTEXT_LENGTH`` (or a context sized from the
GPU's memory, 262,144 tokens at 47 GiB) and keeps its model loaded for
Ollama's default, whatever the owner's ceilings say. So the worker does what
Ollama's own middleware (``middleware/openai.go``, ``openai/openai.go``, v0.17)
does, one step earlier: it converts the checked body into the native request
(adding ``num_ctx`` and ``keep_alive`` from the owner's ceilings), posts that to
``/api/chat``, ``/api/generate`` or ``/api/embed``, and writes the native answer
back into OpenAI's shape, field for field and byte for byte as Ollama's writers
would (Go's JSON: :mod:`ghubai_tray.core.gojson`). The hub's client cannot tell;
only the ``id`` (random in Ollama too) and the ``created`` second differ.

Everything here is pure: the caller supplies the id and the clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ghubai_tray.core.fragments import MAX_FRAGMENT_COST, fragment_cost, split_fragment
from ghubai_tray.core.framing import (
    TOO_LARGE,
    BodyFramer,
    Done,
    Failed,
    Frame,
    Framer,
    NdjsonFramer,
    Relay,
    Translator,
)
from ghubai_tray.core.gojson import Raw, go_dumps, go_sorted
from ghubai_tray.core.json_shape import ShapeLimits, ShapeRefused, check_shape


class Untranslatable(ValueError):
    """Ollama's middleware would answer 400 to this body; the text says why."""


@dataclass(frozen=True)
class AnswerShape:
    """How the native answer is written back: which OpenAI object, streamed or not."""

    kind: str  # "chat", "completion" or "embedding"
    stream: bool = False
    include_usage: bool = False
    model: str = ""  # an embedding list names the model the request named
    encoding: str = ""  # embeddings: "", "float" or "base64"

    @property
    def id_prefix(self) -> str:
        return {"chat": "chatcmpl-", "completion": "cmpl-"}.get(self.kind, "")


@dataclass(frozen=True)
class Native:
    """The native request to post instead, and how its answer goes back."""

    path: str
    body: dict[str, Any]
    answer: AnswerShape


ARGUMENT_SHAPE = ShapeLimits(values=65_536, depth=64)  # one tool call's arguments


def to_native(endpoint: str, out: dict[str, Any], context: int, keep_alive: int | float
              ) -> Native:
    """The native request for a checked OpenAI body ``out`` (the worker's own rebuild),
    with the owner's ``context`` and ``keep_alive``; :class:`Untranslatable` where
    Ollama would refuse it."""
    if endpoint == "/v1/chat/completions":
        native, answer = _chat_request(out)
        path = "/api/chat"
    elif endpoint == "/v1/completions":
        native, answer = _completion_request(out)
        path = "/api/generate"
    elif endpoint == "/v1/embeddings":
        native, answer = _embedding_request(out)
        path = "/api/embed"
    else:
        raise AssertionError(endpoint)  # pragma: no cover - only /v1 endpoints come here
    native.setdefault("options", {})["num_ctx"] = context
    native["keep_alive"] = keep_alive
    return Native(path, native, answer)


# -- reading the OpenAI body as Go's structs would ----------------------------------------


def _get(obj: dict[str, Any], name: str) -> Any:
    """A nested field as Go finds it: any spelling that folds to ``name``, the last one."""
    found = None
    for key, value in obj.items():
        if key.lower() == name or key.casefold() == name:
            found = value
    return found


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Untranslatable(f"{name} in the request body must be text")
    return value


def _integer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -2**63 <= value < 2**63:
        raise Untranslatable(f"{name} in the request body must be a whole number")
    return value


def _number(value: Any, name: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Untranslatable(f"{name} in the request body must be a number")
    return value


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Untranslatable(f"{name} in the request body must be true or false")
    return value


def _object(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Untranslatable(f"{name} in the request body must be an object")
    return value


def _stream_options(out: dict[str, Any]) -> bool:
    options = _object(out.get("stream_options"), "stream_options")
    return options is not None and _flag(_get(options, "include_usage"),
                                         "stream_options.include_usage")


def _float32(value: float | int) -> float:
    """A number Go holds as a float32: the float whose shortest digits are the ones Go
    writes for it (so that Ollama reads what its own middleware would have sent)."""
    try:
        single: float = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    except OverflowError:  # Go's decoder refuses a number no float32 holds
        raise Untranslatable(f"the number {value:g} in the request body is out of range"
                             ) from None
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        try:
            if struct.unpack("<f", struct.pack("<f", shortest))[0] == single:
                return shortest
        except OverflowError:  # rounded past the largest float32: more digits
            continue
    return single  # pragma: no cover - nine digits always suffice


# -- /v1/chat/completions -> /api/chat ---------------------------------------------------


def _chat_request(out: dict[str, Any]) -> tuple[dict[str, Any], AnswerShape]:
    raw_messages = out.get("messages") or []
    if not raw_messages:
        raise Untranslatable("[] is too short - 'messages'")
    checked = [_message_fields(m, i) for i, m in enumerate(raw_messages)]
    messages: list[dict[str, Any]] = []
    for msg in checked:
        _add_native(messages, msg, checked)
    native: dict[str, Any] = {"model": out["model"], "messages": messages or None,
                              "options": _chat_options(out),
                              "stream": _flag(out.get("stream"), "stream")}
    format_ = _response_format(out.get("response_format"))
    if format_ is not None:
        native["format"] = format_
    if (tools := out.get("tools")) is not None:
        native["tools"] = tools
    think = _think(out)
    if think is not None:
        native["think"] = think
    if _flag(out.get("logprobs"), "logprobs"):
        native["logprobs"] = True
    top = _integer(out.get("top_logprobs"), "top_logprobs")
    if top:
        native["top_logprobs"] = top
    return native, AnswerShape("chat", native["stream"], _stream_options(out))


def _chat_options(out: dict[str, Any]) -> dict[str, Any]:
    """The options ``FromChatRequest`` sets, with its defaults (temperature and top_p 1)."""
    options: dict[str, Any] = {}
    stop = out.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        options["stop"] = [s for s in stop if isinstance(s, str)] or None  # Go's nil slice
    options["num_predict"] = _integer(out.get("max_tokens"), "max_tokens")
    for name, default in (("temperature", 1.0), ("seed", None), ("frequency_penalty", None),
                          ("presence_penalty", None), ("top_p", 1.0)):
        value = (_integer(out.get(name), name) if name == "seed"
                 else _number(out.get(name), name))
        if value is None:
            value = default
        if value is not None:
            options[name] = value
    return options


def _message_fields(msg: dict[str, Any], index: int) -> dict[str, Any]:
    """One message's fields with the types Go's decoder insists on."""
    at = f"messages[{index}]."
    calls = msg.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise Untranslatable(f"{at}tool_calls in the request body must be a list")
    return {"role": _text(msg.get("role"), f"{at}role"), "content": msg.get("content"),
            "reasoning": _text(msg.get("reasoning"), f"{at}reasoning"),
            "tool_calls": None if calls is None else [
                _tool_call_fields(call, f"{at}tool_calls[{i}].") for i, call in enumerate(calls)],
            "name": _text(msg.get("name"), f"{at}name"),
            "tool_call_id": _text(msg.get("tool_call_id"), f"{at}tool_call_id")}


def _tool_call_fields(call: Any, at: str) -> dict[str, str]:
    call = _object(call, at.rstrip(".")) or {}
    function = _object(_get(call, "function"), f"{at}function") or {}
    _integer(_get(call, "index"), f"{at}index")
    _text(_get(call, "type"), f"{at}type")
    return {"id": _text(_get(call, "id"), f"{at}id"),
            "name": _text(_get(function, "name"), f"{at}function.name"),
            "arguments": _text(_get(function, "arguments"), f"{at}function.arguments")}


def _add_native(messages: list[dict[str, Any]], msg: dict[str, Any],
                everything: list[dict[str, Any]]) -> None:
    """``openai.FromChatRequest`` for one message: a list of parts becomes one native
    message per part, and its tool calls go on the last native message so far (as in
    Ollama, the previous message's when the list is empty)."""
    role, content, calls = msg["role"], msg["content"], msg["tool_calls"]
    tool_name = ""
    if role.lower() == "tool":
        tool_name = msg["name"] or (_name_of_call(everything, msg["tool_call_id"])
                                    if msg["tool_call_id"] else "")
    if isinstance(content, str):
        messages.append(_message(role, content, thinking=msg["reasoning"],
                                 tool_calls=_native_calls(calls), tool_name=tool_name,
                                 tool_call_id=msg["tool_call_id"]))
    elif isinstance(content, list):
        messages.extend(_part(role, part) for part in content)
        if messages and calls:
            last = messages[-1]
            for key, value in (("tool_calls", _native_calls(calls)), ("tool_name", tool_name),
                               ("tool_call_id", msg["tool_call_id"]),
                               ("thinking", msg["reasoning"])):
                if value:
                    last[key] = value
                else:
                    last.pop(key, None)
    elif calls is None:
        raise Untranslatable(f"invalid message content type: {_go_type(content)}")
    else:
        messages.append(_message(role, "", thinking=msg["reasoning"],
                                 tool_calls=_native_calls(calls),
                                 tool_call_id=msg["tool_call_id"]))


def _message(role: str, content: str, **rest: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "content": content}
    message.update({k: v for k, v in rest.items() if v})  # Go's omitempty
    return message


def _part(role: str, part: Any) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise Untranslatable("invalid message format")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise Untranslatable("invalid message format")
        return {"role": role, "content": text}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise Untranslatable("invalid message format")
        return {"role": role, "content": "", "images": [_image(url)]}
    raise Untranslatable("invalid message format")


_IMAGE_PREFIXES = tuple(f"data:image/{t};base64," for t in ("jpeg", "jpg", "png", "webp"))


def _image(url: str) -> str:
    """``decodeImageURL``: a data URL of a known image type (or none), strict base64."""
    if url.startswith(("http://", "https://")):
        raise Untranslatable("image URLs are not currently supported, please use base64 "
                             "encoded data instead")
    if url.startswith("data:;base64,"):
        data = url[len("data:;base64,"):]
    else:
        prefix = next((p for p in _IMAGE_PREFIXES if url.startswith(p)), None)
        if prefix is None:
            raise Untranslatable("invalid image input")
        data = url[len(prefix):]
    try:  # Go's StdEncoding skips CR and LF and insists on the rest
        decoded = base64.b64decode(data.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise Untranslatable("invalid image input") from None
    return base64.b64encode(decoded).decode("ascii")


def _name_of_call(messages: list[dict[str, Any]], call_id: str) -> str:
    for msg in reversed(messages):  # the last one wins, as in Ollama
        for call in msg["tool_calls"] or ():
            if call["id"] == call_id:
                return str(call["name"])
    return ""


def _native_calls(calls: list[dict[str, str]] | None) -> list[dict[str, Any]]:
    native = []
    for call in calls or ():
        try:
            check_shape(call["arguments"], ARGUMENT_SHAPE, "a tool call's arguments")
            arguments = json.loads(call["arguments"])
        except (ShapeRefused, ValueError, RecursionError):
            raise Untranslatable("invalid tool call arguments") from None
        if not isinstance(arguments, dict):
            raise Untranslatable("invalid tool call arguments")
        entry: dict[str, Any] = {"id": call["id"]} if call["id"] else {}
        entry["function"] = {"index": 0, "name": call["name"], "arguments": arguments}
        native.append(entry)
    return native


def _go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    return "map[string]interface {}"


def _response_format(value: Any) -> Any:
    fmt = _object(value, "response_format")
    if fmt is None:
        return None
    kind = _text(_get(fmt, "type"), "response_format.type").strip().lower()
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = _object(_get(fmt, "json_schema"), "response_format.json_schema")
        if schema is not None:
            return _get(schema, "schema")
    return None


_EFFORTS = ("high", "medium", "low", "none")


def _think(out: dict[str, Any]) -> bool | str | None:
    reasoning = _object(out.get("reasoning"), "reasoning")
    if reasoning is not None:
        effort = _text(_get(reasoning, "effort"), "reasoning.effort")
    else:
        effort = _text(out.get("reasoning_effort"), "reasoning_effort")
    if not effort:
        return None
    if effort not in _EFFORTS:
        raise Untranslatable(f"invalid reasoning value: '{effort}' (must be \"high\", "
                             "\"medium\", \"low\", or \"none\")")
    return False if effort == "none" else effort


# -- /v1/completions -> /api/generate, /v1/embeddings -> /api/embed ---------------------------


def _completion_request(out: dict[str, Any]) -> tuple[dict[str, Any], AnswerShape]:
    options: dict[str, Any] = {}
    stop = out.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        for item in stop:
            if not isinstance(item, str):
                raise Untranslatable(f"invalid type for 'stop' field: {_go_type(item)}")
        options["stop"] = stop or None  # Go's nil slice
    options["num_predict"] = _integer(out.get("max_tokens"), "max_tokens")
    temperature = _number(out.get("temperature"), "temperature")
    options["temperature"] = 1.0 if temperature is None else _float32(temperature)
    seed = _integer(out.get("seed"), "seed")
    if seed is not None:
        options["seed"] = seed
    for name in ("frequency_penalty", "presence_penalty"):
        options[name] = _float32(_number(out.get(name), name) or 0)
    top_p = _float32(_number(out.get("top_p"), "top_p") or 0)
    options["top_p"] = top_p if top_p != 0 else 1.0
    native: dict[str, Any] = {"model": out["model"],
                              "prompt": _text(out.get("prompt"), "prompt"),
                              "suffix": _text(out.get("suffix"), "suffix"),
                              "options": options, "stream": _flag(out.get("stream"), "stream")}
    logprobs = _integer(out.get("logprobs"), "logprobs")
    if logprobs is not None and logprobs > 0:
        native["logprobs"], native["top_logprobs"] = True, logprobs
    return native, AnswerShape("completion", native["stream"], _stream_options(out))


def _embedding_request(out: dict[str, Any]) -> tuple[dict[str, Any], AnswerShape]:
    encoding = _text(out.get("encoding_format"), "encoding_format")
    if encoding and encoding.lower() not in ("float", "base64"):
        raise Untranslatable(f"Invalid value for 'encoding_format' = {encoding}. Supported "
                             "values: ['float', 'base64'].")
    given = out.get("input")
    if given == "":
        given = [""]
    if given is None or given == []:
        raise Untranslatable("invalid input")
    native: dict[str, Any] = {"model": out["model"], "input": given}
    dimensions = _integer(out.get("dimensions"), "dimensions")
    if dimensions:
        native["dimensions"] = dimensions
    return native, AnswerShape("embedding", model=out["model"], encoding=encoding)


# -- the answer, written back -------------------------------------------------------------


class OpenAIAnswer(Translator):
    """A framer over the native answer's framer that hands on OpenAI's events instead.

    A native stream (NDJSON) becomes one chunk per line, as ``ChatWriter`` and
    ``CompleteWriter`` write them (the usage chunk when asked, then the end);
    a whole native body becomes one OpenAI object, cut into fragments.
    """

    def __init__(self, shape: AnswerShape, inner: Framer, ident: str,
                 now: Callable[[], float]) -> None:
        super().__init__(inner)
        self._shape, self._id, self._now = shape, ident, now
        self._whole = not isinstance(inner, NdjsonFramer)
        self._pieces: list[str] = []
        self._tool_call_sent = False

    def event(self, text: str) -> list[Frame]:
        if self._whole:
            self._pieces.append(text)
            return []
        return self._line(text)

    def end(self, done: Done) -> list[Frame]:
        # a native stream's last line was relayed as done: the end, with its counts
        return self._body("".join(self._pieces), done) if self._whole else [done]

    def _line(self, text: str) -> list[Frame]:
        try:
            native = _native_answer(text)
            if self._shape.kind == "chat":
                chunk = chat_chunk(self._id, native, self._tool_call_sent, int(self._now()))
                self._tool_call_sent = self._tool_call_sent or bool(
                    chunk["choices"][0]["delta"].get("tool_calls"))
            else:
                chunk = completion_chunk(self._id, native, int(self._now()),
                                         self._shape.include_usage)
            texts = [go_dumps(chunk)]
            if native.get("done") is True and self._shape.include_usage:
                chunk["choices"] = []
                chunk["usage"] = usage(native)
                texts.append(go_dumps(chunk))
        except (TypeError, ValueError, KeyError, AttributeError):
            self.over = True
            return [Failed("Ollama sent a part of the answer this worker cannot translate")]
        if any(fragment_cost(t) > MAX_FRAGMENT_COST for t in texts):
            self.over = True
            return [Failed(TOO_LARGE)]
        return [Relay(t) for t in texts]

    def _body(self, text: str, done: Done) -> list[Frame]:
        self.over = True
        try:
            if self._shape.kind == "embedding":
                answer = embedding_list(self._shape, _native_answer(text, raw_numbers=True))
            elif self._shape.kind == "chat":
                answer = chat_completion(self._id, _native_answer(text))
            else:
                answer = completion(self._id, _native_answer(text))
            written = go_dumps(answer) + "\n"  # json.Encoder ends with a newline
        except (TypeError, ValueError, KeyError, AttributeError):
            return [Failed("Ollama sent an answer this worker cannot translate")]
        return [*(Relay(piece) for piece in split_fragment(written)), done]


def answer_framer(shape: AnswerShape, inner: Framer, ident: str,
                  now: Callable[[], float]) -> Framer:
    """The framer for a translated request (see :class:`OpenAIAnswer`)."""
    if shape.kind == "embedding" and not isinstance(inner, BodyFramer):
        inner = BodyFramer()
    return OpenAIAnswer(shape, inner, ident, now)


def _native_answer(text: str, raw_numbers: bool = False) -> dict[str, Any]:
    value = (json.loads(text, parse_float=Raw, parse_int=Raw) if raw_numbers
             else json.loads(text))
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | Raw) and not isinstance(value, bool) else 0


def _real(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else 0.0


def usage(native: dict[str, Any]) -> dict[str, int]:
    prompt, output = _count(native.get("prompt_eval_count")), _count(native.get("eval_count"))
    return {"prompt_tokens": prompt, "completion_tokens": output,
            "total_tokens": prompt + output}


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """``openai.ToToolCalls``: each call with its arguments written as a JSON text
    (their first level in the order Ollama gave, deeper ones with sorted keys)."""
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        written = "{}" if not isinstance(arguments, dict) else go_dumps(
            {key: go_sorted(value) for key, value in arguments.items()})
        calls.append({"id": _str(call.get("id")), "index": _count(function.get("index")),
                      "type": "function", "function": {"name": _str(function.get("name")),
                                                       "arguments": written}})
    return calls


def _logprobs(native: dict[str, Any]) -> dict[str, Any] | None:
    entries = native.get("logprobs")
    if not entries:
        return None
    return {"content": [_logprob(e, top=True) for e in entries]}


def _logprob(entry: dict[str, Any], top: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {"token": _str(entry.get("token")),
                             "logprob": _real(entry.get("logprob"))}
    if entry.get("bytes"):
        shown["bytes"] = [int(b) for b in entry["bytes"]]
    if top and entry.get("top_logprobs"):
        shown["top_logprobs"] = [_logprob(e, top=False) for e in entry["top_logprobs"]]
    return shown


def _delta(role: str, message: dict[str, Any], calls: list[dict[str, Any]]
           ) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": role, "content": _str(message.get("content"))}
    if thinking := _str(message.get("thinking")):
        delta["reasoning"] = thinking
    if calls:
        delta["tool_calls"] = calls
    return delta


def _choice(delta_name: str, delta: dict[str, Any], finish: str | None,
            logprobs: dict[str, Any] | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, delta_name: delta, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return choice


def chat_chunk(ident: str, native: dict[str, Any], tool_call_sent: bool, created: int
               ) -> dict[str, Any]:
    """``openai.ToChunk``."""
    message = native.get("message") or {}
    calls = _tool_calls(message)
    reason = _str(native.get("done_reason"))
    finish = ("tool_calls" if tool_call_sent or calls else reason) if reason else None
    return {"id": ident, "object": "chat.completion.chunk", "created": created,
            "model": _str(native.get("model")), "system_fingerprint": "fp_ollama",
            "choices": [_choice("delta", _delta("assistant", message, calls), finish,
                                _logprobs(native))]}


def chat_completion(ident: str, native: dict[str, Any]) -> dict[str, Any]:
    """``openai.ToChatCompletion``."""
    message = native.get("message") or {}
    calls = _tool_calls(message)
    reason = "tool_calls" if calls else _str(native.get("done_reason"))
    return {"id": ident, "object": "chat.completion", "created": _unix(native),
            "model": _str(native.get("model")), "system_fingerprint": "fp_ollama",
            "choices": [_choice("message", _delta(_str(message.get("role")), message, calls),
                                reason or None, _logprobs(native))],
            "usage": usage(native)}


def completion_chunk(ident: str, native: dict[str, Any], created: int, with_usage: bool
                     ) -> dict[str, Any]:
    """``openai.ToCompleteChunk``, with ``CompleteWriter``'s empty usage on every chunk."""
    chunk: dict[str, Any] = {
        "id": ident, "object": "text_completion", "created": created,
        "choices": [{"text": _str(native.get("response")), "index": 0,
                     "finish_reason": _str(native.get("done_reason")) or None}],
        "model": _str(native.get("model")), "system_fingerprint": "fp_ollama"}
    if with_usage:
        chunk["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return chunk


def completion(ident: str, native: dict[str, Any]) -> dict[str, Any]:
    """``openai.ToCompletion``."""
    return {"id": ident, "object": "text_completion", "created": _unix(native),
            "model": _str(native.get("model")), "system_fingerprint": "fp_ollama",
            "choices": [{"text": _str(native.get("response")), "index": 0,
                         "finish_reason": _str(native.get("done_reason")) or None}],
            "usage": usage(native)}


def embedding_list(shape: AnswerShape, native: dict[str, Any]) -> dict[str, Any]:
    """``openai.ToEmbeddingList``: the vectors as Ollama wrote them, or base64 float32."""
    vectors = native.get("embeddings")
    if vectors is None:
        return {"object": "", "data": None, "model": "",
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    data = [{"object": "embedding",
             "embedding": (_base64_floats(vector) if shape.encoding.lower() == "base64"
                           else vector),
             "index": i} for i, vector in enumerate(vectors)]
    tokens = _count(native.get("prompt_eval_count"))
    return {"object": "list", "data": data or None, "model": shape.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _base64_floats(vector: list[Any]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *map(float, vector))
                            ).decode("ascii")


def _unix(native: dict[str, Any]) -> int:
    """``created_at`` in whole seconds (Go's ``Time.Unix``); the zero time when absent."""
    stamp = native.get("created_at")
    if not isinstance(stamp, str) or not stamp:
        return -62135596800
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp() // 1)

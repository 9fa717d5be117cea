"""Ollama's native requests served by a model server that speaks only OpenAI's API.

The hub's ``RequestInference`` names Ollama's ``/api/chat`` or ``/api/generate``.
A server without Ollama's API (llama.cpp's ``llama-server``, LM Studio, KoboldCpp,
vLLM...) gets the checked native body as the ``/v1/chat/completions`` request
that means the same (a generate's prompt is one user message, as Ollama's template
makes it), and its answer is written back as Ollama writes its own: one NDJSON
line per piece of text, in the field order of Ollama's ``api.ChatResponse`` and
``api.GenerateResponse``, Go's JSON (:mod:`ghubai_tray.core.gojson`), a last line
``"done": true`` with the reason and the counts, ``created_at`` in Go's RFC 3339
with nanoseconds. The hub's client cannot tell, except where the server cannot
say what Ollama says (docs/MODEL_SERVERS.md): no ``context`` tokens after a
generate, and ``load_duration`` is the time the server's own figures leave (the
counts and durations are the server's where it gives them, else measured here).

Everything here is pure: the caller supplies the clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ghubai_tray.core.fragments import MAX_FRAGMENT_COST, fragment_cost, split_fragment
from ghubai_tray.core.framing import TOO_LARGE, Done, Failed, Frame, Framer, Relay, Translator
from ghubai_tray.core.gojson import go_dumps
from ghubai_tray.core.server_fields import KEPT
from ghubai_tray.core.server_kinds import ServerKind

CHAT_PATH = "/v1/chat/completions"


class NotServable(ValueError):
    """The native request asks for something the server cannot do; the text says what."""


@dataclass(frozen=True)
class NativeShape:
    """How the OpenAI answer is written back: as a chat or a generate, streamed or not."""

    kind: str  # "chat" or "generate"
    stream: bool
    model: str


@dataclass(frozen=True)
class Translated:
    path: str
    body: dict[str, Any]
    shape: NativeShape


# Ollama's options that mean the same on OpenAI's API, under OpenAI's names.
_SAME = {"num_predict": "max_tokens", "temperature": "temperature", "top_p": "top_p",
         "seed": "seed", "stop": "stop", "presence_penalty": "presence_penalty",
         "frequency_penalty": "frequency_penalty"}
# vLLM and most OpenAI-compatible servers call Ollama's repeat_penalty this
_RENAMED = {ServerKind.OPENAI: {"repeat_penalty": "repetition_penalty"}}


def to_openai(endpoint: str, out: dict[str, Any], server: ServerKind) -> Translated:
    """The ``/v1/chat/completions`` request for a checked native body ``out``."""
    if endpoint == "/api/chat":
        messages = [_message(m, i) for i, m in enumerate(out.get("messages") or [])]
        kind = "chat"
    elif endpoint == "/api/generate":
        messages = _generate_messages(out)
        kind = "generate"
    else:
        raise NotServable(f"{endpoint} is Ollama's own, and this machine's model server is "
                          "not Ollama; it serves /api/chat, /api/generate and the /v1 API")
    if not messages:
        raise NotServable("the request has no messages to answer")
    stream = out.get("stream", True) is not False  # Ollama streams unless told not to
    body: dict[str, Any] = {"model": out["model"], "messages": messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}  # the last line's counts
    options = out.get("options") or {}
    renamed = _RENAMED.get(server, {})
    for name, value in options.items():
        if name in _SAME:
            body[_SAME[name]] = value
        elif name in renamed:
            body[renamed[name]] = value
        elif name in KEPT.get(server, ()):
            body[name] = value
        # num_ctx and the rest: the server's own settings decide (the owner's, at its start)
    if (format_ := out.get("format")) is not None and format_ != "":
        body["response_format"] = (
            {"type": "json_object"} if format_ == "json"
            else {"type": "json_schema", "json_schema": {"name": "response", "schema": format_}})
    if out.get("tools"):
        body["tools"] = out["tools"]
    return Translated(CHAT_PATH, body, NativeShape(kind, stream, out["model"]))


def _generate_messages(out: dict[str, Any]) -> list[dict[str, Any]]:
    if out.get("suffix"):
        raise NotServable("suffix (filling in the middle) needs Ollama; this machine's model "
                          "server is not Ollama")
    if out.get("context"):
        raise NotServable("context (continuing from an earlier answer's tokens) needs Ollama; "
                          "this machine's model server is not Ollama: send the text instead")
    messages: list[dict[str, Any]] = []
    if isinstance(out.get("system"), str) and out["system"]:
        messages.append({"role": "system", "content": out["system"]})
    prompt = _text(out.get("prompt"))
    if prompt or out.get("images"):
        messages.append({"role": "user", "content": _content(prompt, out.get("images"))})
    return messages


def _message(msg: dict[str, Any], index: int) -> dict[str, Any]:
    role = msg.get("role")
    if not isinstance(role, str) or not role:
        raise NotServable(f"messages[{index}] has no role")
    content = _text(msg.get("content"))
    message: dict[str, Any] = {"role": role, "content": _content(content, msg.get("images"))}
    calls = msg.get("tool_calls")
    if isinstance(calls, list) and calls:
        message["tool_calls"] = [_tool_call(c, index, n) for n, c in enumerate(calls)]
    call_id = msg.get("tool_call_id")
    if isinstance(call_id, str) and call_id:
        message["tool_call_id"] = call_id
    if isinstance(msg.get("tool_name"), str) and msg["tool_name"]:
        message["name"] = msg["tool_name"]
    return message


def _tool_call(call: Any, index: int, number: int) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise NotServable(f"messages[{index}].tool_calls[{number}] names no function")
    arguments = function.get("arguments", {})
    ident = call.get("id") if isinstance(call.get("id"), str) and call["id"] else \
        f"call_{index}_{number}"
    return {"id": ident, "type": "function",
            "function": {"name": function["name"],
                         "arguments": json.dumps(arguments, ensure_ascii=False,
                                                 separators=(",", ":"))}}


def _content(text: str, images: Any) -> str | list[dict[str, Any]]:
    if not isinstance(images, list) or not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for image in images:
        parts.append({"type": "image_url",
                      "image_url": {"url": f"data:{_image_type(image)};base64,{image}"}})
    return parts


_SIGNATURES = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"),
               ("UklGR", "image/webp"))


def _image_type(data: str) -> str:
    """An image's type from its first bytes (Ollama's images are bare base64)."""
    return next((kind for prefix, kind in _SIGNATURES if data.startswith(prefix)), "image/png")


# -- the answer, written back -----------------------------------------------------------


def go_time(nanoseconds: int) -> str:
    """A UTC instant as Go's ``time.Time`` marshals it (RFC 3339, trailing zeros cut)."""
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}{'.' + fraction if fraction else ''}Z"


@dataclass
class _Tally:
    """What the answer said of itself so far: the counts, the end, the tool calls."""

    started: int
    first: int | None = None
    reason: str = ""
    prompt: int = 0
    output: int = 0
    prompt_ns: int = 0
    output_ns: int = 0
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)

    def read(self, answer: dict[str, Any], now: int) -> None:
        usage = answer.get("usage")
        if isinstance(usage, dict):
            self.prompt = _count(usage.get("prompt_tokens")) or self.prompt
            self.output = _count(usage.get("completion_tokens")) or self.output
        timings = answer.get("timings")  # llama-server's own
        if isinstance(timings, dict):
            self.prompt = self.prompt or _count(timings.get("prompt_n"))
            self.output = self.output or _count(timings.get("predicted_n"))
            self.prompt_ns = _ms_to_ns(timings.get("prompt_ms")) or self.prompt_ns
            self.output_ns = _ms_to_ns(timings.get("predicted_ms")) or self.output_ns
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            self.reason = "length" if choice["finish_reason"] == "length" else "stop"
        if self.first is None and isinstance(choice, dict):
            self.first = now

    def add_calls(self, deltas: Any) -> None:
        """Streamed tool calls come in pieces (the arguments' text cut anywhere)."""
        for position, delta in enumerate(deltas if isinstance(deltas, list) else []):
            if not isinstance(delta, dict):
                continue
            index = delta["index"] if isinstance(delta.get("index"), int) else position
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or _text(delta.get("id"))
            function = delta["function"] if isinstance(delta.get("function"), dict) else {}
            call["name"] += _text(function.get("name"))
            call["arguments"] += _text(function.get("arguments"))

    def metrics(self, now: int) -> dict[str, int]:
        """Ollama's ``api.Metrics``: each written only when not zero (``omitempty``)."""
        output_ns = self.output_ns or (now - self.first if self.first is not None else 0)
        total = max(1, now - self.started)
        # Ollama's load_duration is the time before the prompt is read (loading the
        # model, if it was not loaded); here: the time the server's own figures leave
        figures = {"total_duration": total,
                   "load_duration": max(1, total - self.prompt_ns - output_ns),
                   "prompt_eval_count": self.prompt, "prompt_eval_duration": self.prompt_ns,
                   "eval_count": self.output, "eval_duration": output_ns}
        return {name: value for name, value in figures.items() if value}

    def done(self) -> Done:
        return Done(self.prompt or None, self.output or None)

    def tool_calls(self) -> list[dict[str, Any]]:
        """Ollama's ``api.ToolCall`` list: arguments as an object, the index of each."""
        calls = []
        for number, index in enumerate(sorted(self.calls)):
            call = self.calls[index]
            try:
                arguments = json.loads(call["arguments"]) if call["arguments"].strip() else {}
            except ValueError:
                raise ValueError("a tool call's arguments are not JSON") from None
            if not isinstance(arguments, dict):
                raise ValueError("a tool call's arguments are not an object")
            entry: dict[str, Any] = {"id": call["id"]} if call["id"] else {}
            entry["function"] = {"index": number, "name": call["name"], "arguments": arguments}
            calls.append(entry)
        return calls


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _thinking(part: dict[str, Any]) -> str:
    """The reasoning, as llama-server (``reasoning_content``) or vLLM (``reasoning``)
    names it."""
    return _text(part.get("reasoning_content")) or _text(part.get("reasoning"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _ms_to_ns(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value * 1_000_000)
    return 0


class NativeAnswer(Translator):
    """A framer over the OpenAI answer's framer that hands on Ollama's native lines."""

    def __init__(self, shape: NativeShape, inner: Framer, now: Callable[[], int]) -> None:
        super().__init__(inner)
        self._shape, self._now = shape, now
        self._tally = _Tally(started=now())
        self._pieces: list[str] = []

    def event(self, text: str) -> list[Frame]:
        if not self._shape.stream:
            self._pieces.append(text)
            return []
        return self._guarded(self._chunk, text)

    def end(self, done: Done) -> list[Frame]:
        return self._guarded(lambda _: self._end(), "")

    def _guarded(self, step: Callable[[str], list[Frame]], text: str) -> list[Frame]:
        """One step of the translation; what the server sent that cannot be read ends it."""
        try:
            frames = step(text)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            frames = [Failed(f"the model server sent a part of the answer this worker "
                             f"cannot translate ({exc})")]
        if any(isinstance(f, Failed) for f in frames):
            self.over = True
        return frames

    def _line(self, fields: dict[str, Any], message_extra: dict[str, Any] | None = None,
              done: bool = False) -> dict[str, Any]:
        """One native line in Go's field order, ``fields`` holding the text and thinking."""
        now = self._now()
        line: dict[str, Any] = {"model": self._shape.model, "created_at": go_time(now)}
        if self._shape.kind == "chat":
            message = {"role": "assistant", "content": fields.get("content", "")}
            if fields.get("thinking"):
                message["thinking"] = fields["thinking"]
            message.update(message_extra or {})
            line["message"] = message
            line["done"] = done
            if done:
                line["done_reason"] = self._tally.reason or "stop"
                line.update(self._tally.metrics(now))
            return line
        line["response"] = fields.get("content", "")
        if fields.get("thinking"):
            line["thinking"] = fields["thinking"]
        line["done"] = done
        if done:
            line["done_reason"] = self._tally.reason or "stop"
            line.update(self._tally.metrics(now))
        if message_extra and message_extra.get("tool_calls"):
            line["tool_calls"] = message_extra["tool_calls"]
        return line

    def _choice(self, text: str, part: str) -> dict[str, Any] | None:
        """One answer (a chunk, or the whole) read into the tally: its first choice's
        ``part`` (``delta`` or ``message``), with its tool calls taken; None if none."""
        answer = json.loads(text)
        if not isinstance(answer, dict):
            raise ValueError("not an object")
        self._tally.read(answer, self._now())
        choices = answer.get("choices")
        found = choices[0].get(part) if isinstance(choices, list) and choices \
            and isinstance(choices[0], dict) else None
        if not isinstance(found, dict):
            return None
        self._tally.add_calls(found.get("tool_calls"))
        return found

    def _chunk(self, text: str) -> list[Frame]:
        delta = self._choice(text, "delta")
        if delta is None:
            return []  # the usage chunk, or one with nothing to say
        content, thinking = _text(delta.get("content")), _thinking(delta)
        if not content and not thinking:
            return []
        return self._relay(self._line({"content": content, "thinking": thinking}))

    def _relay(self, *lines: dict[str, Any]) -> list[Frame]:
        texts = [go_dumps(line) for line in lines]
        if any(fragment_cost(t) > MAX_FRAGMENT_COST for t in texts):
            return [Failed(TOO_LARGE)]
        return [Relay(t) for t in texts]

    def _end(self) -> list[Frame]:
        if not self._shape.stream:
            return self._whole("".join(self._pieces))
        lines = []
        if self._tally.calls:
            lines.append(self._line({}, {"tool_calls": self._tally.tool_calls()}))
        lines.append(self._line({}, done=True))
        return [*self._relay(*lines), self._tally.done()]

    def _whole(self, text: str) -> list[Frame]:
        message = self._choice(text, "message")
        if message is None:
            raise ValueError("the answer has no message")
        extra = {"tool_calls": self._tally.tool_calls()} if self._tally.calls else None
        line = self._line({"content": _text(message.get("content")),
                           "thinking": _thinking(message)},
                          extra, done=True)
        return [*(Relay(piece) for piece in split_fragment(go_dumps(line))), self._tally.done()]


def native_answer_framer(shape: NativeShape, inner: Framer, now: Callable[[], int]) -> Framer:
    """The framer for a native request a server without Ollama's API answers."""
    return NativeAnswer(shape, inner, now)

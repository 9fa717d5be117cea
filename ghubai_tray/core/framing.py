"""Cutting Ollama's answers into the pieces the hub relays, as pure state machines.

The hub turns each fragment of a streamed answer into SSE events line by line,
so a fragment must hold whole events: one SSE event's data or one NDJSON line,
never half of one, never two glued together by a late flush. Each framer
below is fed bytes in whatever pieces the network delivers and answers, at
once, with what can be relayed now; none does I/O, so hypothesis can feed it
every possible split.

The outcome of an answer follows Ollama's own precedence: an error object in
the stream wins, then the HTTP status (handled by the caller), then a body
that is not what its content type promised.

- ``text/event-stream`` (``/v1/*`` streams): events separated by blank lines,
  ``data:`` lines joined, ``[DONE]`` ends it. A stream that just stops is how
  Ollama reports a failure there, so ending without ``[DONE]`` is an error.
- ``application/x-ndjson`` (native streams): one event per line, relayed the
  moment its newline arrives (the seed worker waited for blank lines, which
  native streams never send). The last line says ``"done": true``.
- anything else: one body, collected up to a limit, checked to be JSON, then
  split into fragments the hub concatenates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ghubai_tray.core.fragments import MAX_FRAGMENT_COST, fragment_cost, split_fragment

MAX_BODY_BYTES = 64 * 1024 * 1024  # a non-streamed answer larger than this is refused, not held


@dataclass(frozen=True)
class Relay:
    """Send this text to the hub as one (non-final) fragment."""

    text: str


@dataclass(frozen=True)
class Done:
    """The answer is complete; the empty final chunk follows. The token counts are the
    server's own, where its answer gave them (for the owner's ledger; never compared)."""

    prompt_tokens: int | None = field(default=None, compare=False)
    output_tokens: int | None = field(default=None, compare=False)


def counted(answer: Any) -> Done:
    """The end of an answer, with the counts it states: Ollama's ``prompt_eval_count`` and
    ``eval_count``, OpenAI's ``usage``, or ``llama-server``'s ``timings``."""
    if not isinstance(answer, dict):
        return Done()
    usage = answer.get("usage")
    timings = answer.get("timings")
    for source, prompt, output in ((answer, "prompt_eval_count", "eval_count"),
                                   (usage, "prompt_tokens", "completion_tokens"),
                                   (timings, "prompt_n", "predicted_n")):
        if isinstance(source, dict) and (_whole(source.get(prompt)) is not None
                                         or _whole(source.get(output)) is not None):
            return Done(_whole(source.get(prompt)), _whole(source.get(output)))
    return Done()


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


@dataclass(frozen=True)
class Failed:
    """The answer failed; ``reason`` goes into the ``[error]`` final chunk."""

    reason: str


Frame = Relay | Done | Failed
TOO_LARGE = ("Ollama sent one event larger than the hub accepts in one message "
             f"(32 KiB, {MAX_FRAGMENT_COST:,} bytes of it for the event)")


def error_text(obj: Any) -> str | None:
    """The message of an Ollama error object (native or OpenAI style), or None."""
    if not isinstance(obj, dict) or "error" not in obj:
        return None
    error = obj["error"]
    if isinstance(error, dict):
        error = error.get("message", error)
    text = error if isinstance(error, str) else json.dumps(error)
    return text.strip() or "unknown error"


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class Framer(Protocol):
    """What the relay needs from a framer: feed bytes, then finish at the end."""

    def feed(self, data: bytes) -> list[Frame]: ...

    def finish(self) -> list[Frame]: ...


class NdjsonFramer:
    """Native Ollama streams: every line is one event, relayed as soon as it is whole."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._over = False

    def feed(self, data: bytes) -> list[Frame]:
        if self._over:
            return []
        self._buffer += data
        frames: list[Frame] = []
        while not self._over:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_FRAGMENT_COST:  # bytes never exceed the cost
                    frames.append(self._end(Failed(TOO_LARGE)))
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            frames.extend(self._line(line))
        return frames

    def finish(self) -> list[Frame]:
        if self._over:
            return []
        frames = self._line(bytes(self._buffer)) if self._buffer.strip() else []
        if not self._over:
            frames.append(self._end(Failed("Ollama's stream ended before the answer was complete")))
        return frames

    def _end(self, frame: Frame) -> Frame:
        self._over = True
        self._buffer.clear()
        return frame

    def _line(self, raw: bytes) -> list[Frame]:
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            return []
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return [self._end(Failed("Ollama sent a line that is not UTF-8 text"))]
        if fragment_cost(line) > MAX_FRAGMENT_COST:
            return [self._end(Failed(TOO_LARGE))]
        stripped = line.strip()
        if not (stripped.startswith("{") and stripped.endswith("}")):
            return [self._end(Failed("Ollama sent a line that is not a JSON object"))]
        if '"error"' not in line and '"done":true' not in line.replace(" ", ""):
            # The hot path: a token line can be neither an error nor the end, so it is
            # relayed without being parsed (the hub parses it anyway).
            return [Relay(line)]
        obj = _json_or_none(line)
        if not isinstance(obj, dict):
            return [self._end(Failed("Ollama sent a line that is not a JSON object"))]
        message = error_text(obj)
        if message is not None:
            return [self._end(Failed(f"Ollama: {message}"))]
        if obj.get("done") is True:
            return [Relay(line), self._end(counted(obj))]
        return [Relay(line)]


class SseFramer:
    """OpenAI-style streams: ``data:`` lines joined per event, ``[DONE]`` at the end."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._pending = 0  # bytes of the event being collected
        self._over = False
        self._counts = Done()  # the last counts an event stated (OpenAI's usage chunk)

    def feed(self, data: bytes) -> list[Frame]:
        if self._over:
            return []
        self._buffer += data
        return self._lines(final=False)

    def finish(self) -> list[Frame]:
        if self._over:
            return []
        frames = self._lines(final=True)
        if not self._over and self._buffer:
            frames.extend(self._field(bytes(self._buffer)))
            self._buffer.clear()
        if not self._over and self._data:
            frames.extend(self._dispatch())
        if not self._over:
            frames.append(self._end(Failed("Ollama's stream ended before [DONE]: "
                                           "the answer is incomplete")))
        return frames

    def _end(self, frame: Frame) -> Frame:
        self._over = True
        self._buffer.clear()
        self._data.clear()
        return frame

    def _lines(self, final: bool) -> list[Frame]:
        frames: list[Frame] = []
        while not self._over:
            cut = next((i for i, b in enumerate(self._buffer) if b in b"\r\n"), -1)
            if cut < 0:
                if len(self._buffer) + self._pending > MAX_FRAGMENT_COST + 16:
                    frames.append(self._end(Failed(TOO_LARGE)))
                break
            width = 1
            if self._buffer[cut] == 0x0D:
                if cut + 1 == len(self._buffer) and not final:
                    break  # a CR at the end may be half of CRLF: wait for the next byte
                if cut + 1 < len(self._buffer) and self._buffer[cut + 1] == 0x0A:
                    width = 2
            line = bytes(self._buffer[:cut])
            del self._buffer[: cut + width]
            if line:
                frames.extend(self._field(line))
            elif self._data:
                frames.extend(self._dispatch())
        return frames

    def _field(self, line: bytes) -> list[Frame]:
        if line.startswith(b":"):
            return []  # a comment (keep-alive)
        name, _, value = line.partition(b":")
        if name != b"data":
            return []  # event, id, retry: nothing the hub uses
        if value.startswith(b" "):
            value = value[1:]
        try:
            self._data.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            return [self._end(Failed("Ollama sent an event that is not UTF-8 text"))]
        self._pending += len(value) + 1
        return []

    def _dispatch(self) -> list[Frame]:
        data = "\n".join(self._data)
        self._data.clear()
        self._pending = 0
        if data.strip() == "[DONE]":
            return [self._end(self._counts)]
        if '"usage"' in data or '"timings"' in data:  # only these events are parsed
            stated = counted(_json_or_none(data))
            if stated.prompt_tokens is not None or stated.output_tokens is not None:
                self._counts = stated
        message = error_text(_json_or_none(data))
        if message is not None:
            return [self._end(Failed(f"Ollama: {message}"))]
        if fragment_cost(data) > MAX_FRAGMENT_COST:
            return [self._end(Failed(TOO_LARGE))]
        return [Relay(data)]


class BodyFramer:
    """A non-streamed answer: collected (bounded), checked to be JSON, split into fragments."""

    def __init__(self, limit: int = MAX_BODY_BYTES) -> None:
        self._buffer = bytearray()
        self._limit = limit
        self._over = False

    def feed(self, data: bytes) -> list[Frame]:
        if self._over:
            return []
        self._buffer += data
        if len(self._buffer) > self._limit:
            self._over = True
            self._buffer.clear()
            return [Failed(f"Ollama's answer is larger than {self._limit // (1024 * 1024)} MiB")]
        return []

    def finish(self) -> list[Frame]:
        if self._over:
            return []
        self._over = True
        try:
            text = self._buffer.decode("utf-8")
        except UnicodeDecodeError:
            return [Failed("Ollama's answer is not UTF-8 text")]
        finally:
            self._buffer.clear()
        obj = _json_or_none(text)
        if obj is None:
            return [Failed("Ollama's answer is not JSON (is something else listening "
                           "at the Ollama URL?)")]
        message = error_text(obj)
        if message is not None:
            return [Failed(f"Ollama: {message}")]
        frames: list[Frame] = [Relay(piece) for piece in split_fragment(text)]
        return [*frames, counted(obj)]


class Translator:
    """A framer over another framer that writes each of its events in another API's shape.

    The inner framer's failure ends the answer as it is; each event it relays goes to
    :meth:`event`; its end (``Done``) to :meth:`end`. After a failure or the end nothing
    more is handed on, and a subclass ends early by setting ``over``.
    """

    def __init__(self, inner: Framer) -> None:
        self.inner = inner
        self.over = False

    def feed(self, data: bytes) -> list[Frame]:
        return self._map(self.inner.feed(data))

    def finish(self) -> list[Frame]:
        return self._map(self.inner.finish())

    def _map(self, frames: list[Frame]) -> list[Frame]:
        mapped: list[Frame] = []
        for frame in frames:
            if self.over:
                break
            if isinstance(frame, Failed):
                self.over = True
                mapped.append(frame)
            elif isinstance(frame, Relay):
                mapped.extend(self.event(frame.text))
            else:
                mapped.extend(self.end(frame))
                self.over = True
        return mapped

    def event(self, text: str) -> list[Frame]:
        raise NotImplementedError

    def end(self, done: Done) -> list[Frame]:
        """``done``: the inner answer's end, with the counts it stated."""
        raise NotImplementedError


def framer_for(content_type: str | None) -> Framer:
    """Pick the framer for a response's ``Content-Type`` (parameters ignored)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "text/event-stream":
        return SseFramer()
    if kind == "application/x-ndjson":
        return NdjsonFramer()
    return BodyFramer()


def status_error(status: int, body: bytes, server: str = "Ollama") -> str:
    """The ``[error]`` text for a non-2xx answer: the server's status and its own message.

    The servers' errors are JSON (``{"error": ...}``, Ollama's and OpenAI's); an
    answer without one is not the server's (a proxy, another server on the port, an
    empty reply), and is named so rather than quoted as if the server had said it."""
    message = error_text(_json_or_none(body.decode("utf-8", "replace")))
    if message is not None:
        return f"{server} answered {status}: {message}"
    snippet = body.decode("utf-8", "replace").strip().splitlines()
    shown = f": {snippet[0][:200]}" if snippet else ", with no details"
    return (f"something other than {server} answered HTTP {status} at the Ollama URL{shown} "
            f"(is it {server}'s address?)")

"""What of a request body reaches Ollama: parsed once, checked, and rebuilt by the worker.

Ollama decodes bodies with Go's ``encoding/json``: a key matches a struct field
case-insensitively (Unicode simple folding, so the Kelvin sign ``K`` matches
``k`` and ``ſ`` matches ``s``) and, when two keys match one field, the last
one wins. A check made on a Python dict therefore says nothing about what
Ollama will run: ``{"model": "shared", "Model": "secret"}`` passes a Python
check and runs ``secret``. So the worker never forwards the hub's bytes. It
parses the body once, refuses anything two parsers could read differently (a
key given twice; a key that folds to a field without being spelled like it),
and serialises a new body from the fields of :data:`FIELDS` alone, each by
its :class:`Rule`: kept, capped to the owner's :class:`Ceilings`, replaced
(the model is the shared model's exact name), or dropped. A field that is not
in the table never reaches Ollama. ``docs/PROTOCOL.md`` explains the decoding
rules this relies on, and the README lists every decision for owners.

Everything here is pure: text in, bytes (or a refusal) out.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ghubai_tray.core.json_shape import ShapeLimits, ShapeRefused, check_shape
from ghubai_tray.core.native_bridge import NativeShape, NotServable, to_openai
from ghubai_tray.core.openai_bridge import AnswerShape, Untranslatable, to_native
from ghubai_tray.core.prompt_work import MAX_WORK, truncation_work
from ghubai_tray.core.schema_limits import check_format
from ghubai_tray.core.server_fields import DROPPED, KEPT
from ghubai_tray.core.server_kinds import ServerKind

# What parsing one body may build before any field is looked at (see
# :mod:`ghubai_tray.core.json_shape`): room for every count ceiling at its
# default with several values each, and nesting far past any real tool schema.
MIN_BODY_VALUES = 262_144
MAX_BODY_DEPTH = 64
# Go reads a JSON number into a float64 (or an int64): a number whose digits no
# float64 can hold is refused, rather than written back as something else.
MAX_NUMBER_DIGITS = 309

class BodyRefused(ValueError):
    """The body cannot be forwarded; the text says why, for the hub's client."""


@dataclass(frozen=True)
class Ceilings:
    """The owner's limits on what one hub request may ask of this machine."""

    keep_alive: float = 300.0  # seconds a model may stay loaded after a hub request
    context: int = 8192  # options.num_ctx: the KV cache grows with it
    output_tokens: int = 4096  # num_predict / max_tokens: always finite when forwarded
    images: int = 4  # per request
    image_bytes: int = 10 * 1024 * 1024  # per image, decoded
    # Counts: Ollama's work grows with each of these whatever the body's size (a
    # million empty messages are 3 MB, and Ollama re-renders the history once per
    # message it drops to fit the context), so each is bounded on its own.
    messages: int = 1000  # per chat
    inputs: int = 2048  # embedding inputs per request
    tools: int = 128  # tool definitions per request
    stops: int = 16  # stop strings per request
    prompt_bytes: int = 4 * 1024 * 1024  # all text the model reads (images aside), UTF-8

    @property
    def shape(self) -> ShapeLimits:
        """What parsing one body may build: enough for every count above at its
        ceiling (a message is a few values; a ``context`` a value per token)."""
        return ShapeLimits(values=max(MIN_BODY_VALUES, 2 * self.context + 65_536),
                           depth=MAX_BODY_DEPTH)


@dataclass(frozen=True)
class Canonical:
    """The body to forward, and what the worker changed in it (for the owner's log)."""

    body: bytes
    capped: tuple[str, ...] = ()  # "num_ctx 1048576 -> 8192"
    dropped: tuple[str, ...] = ()  # guarded fields removed: "template", "options.num_gpu"
    keep_alive: float | None = None  # seconds, as forwarded; None: Ollama's default applies
    path: str = ""  # where it is posted: the endpoint, or the native one serving /v1
    answer: AnswerShape | None = None  # how a /v1 answer is written back from the native one
    native: NativeShape | None = None  # how a native answer is written back from a /v1 one

    @property
    def limited(self) -> bool:
        return bool(self.capped or self.dropped)


class Kind(enum.Enum):
    KEEP = "forwarded as sent"
    BOOL = "forwarded; must be true or false"
    MODEL = "set to the shared model's exact name"
    KEEP_ALIVE = "capped to the keep-alive ceiling; set to it when absent"
    OUTPUT = "capped to the output ceiling; set to it when absent, 0 or negative"
    CONTEXT = "capped to the context ceiling; set to it when absent, 0 or negative"
    OPTIONS = "each option by the options table"
    MESSAGES = "each message by the message table"
    IMAGES = "counted and measured against the image ceilings"
    CONTENT = "forwarded; text measured, image parts counted and measured, only data: URLs"
    TEXT = "forwarded; measured against the prompt size ceiling"
    INPUTS = "counted against the embedding-input ceiling, and measured"
    TOOLS = "counted against the tool ceiling, and measured"
    STOPS = "counted against the stop-string ceiling"
    TOKENS = "a list of tokens, at most the context ceiling"
    FORMAT = "checked: a schema llama.cpp's grammar can take, or refused"
    DROP = "never forwarded"


@dataclass(frozen=True)
class Rule:
    kind: Kind
    why: str = ""  # for DROP: the reason, in words an owner understands


KEEP, BOOL = Rule(Kind.KEEP), Rule(Kind.BOOL)
MODEL, KEEP_ALIVE = Rule(Kind.MODEL), Rule(Kind.KEEP_ALIVE)
OUTPUT, CONTEXT = Rule(Kind.OUTPUT), Rule(Kind.CONTEXT)
OPTIONS, MESSAGES = Rule(Kind.OPTIONS), Rule(Kind.MESSAGES)
IMAGES, CONTENT = Rule(Kind.IMAGES), Rule(Kind.CONTENT)
TEXT, INPUTS, TOOLS = Rule(Kind.TEXT), Rule(Kind.INPUTS), Rule(Kind.TOOLS)
STOPS, TOKENS, FORMAT = Rule(Kind.STOPS), Rule(Kind.TOKENS), Rule(Kind.FORMAT)

_RUNNER = "a runner setting: it decides how the owner's hardware is used"
_TEMPLATE = "runs as a Go template on the owner's machine, and can take gigabytes of memory"
_RAW = "skips the model's own template, which the owner chose"
_DEBUG = "returns the model's template and system prompt instead of an answer"
_IMAGE_GEN = "image generation sizes stay the model's defaults"


def _drop(why: str) -> Rule:
    return Rule(Kind.DROP, why)


# Ollama's options (api.Options and api.Runner, v0.17): options are read from a map by
# their exact names, so a differently spelled option is ignored by Ollama; it is still
# refused here, so that no version of Ollama can read it another way.
OPTION_FIELDS: Mapping[str, Rule] = {
    "num_ctx": CONTEXT,
    "num_predict": OUTPUT,
    "stop": STOPS,
    **{name: KEEP for name in (
        "num_keep", "seed", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
        "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty",
        # sampling options of older Ollama versions (ignored by newer ones)
        "mirostat", "mirostat_tau", "mirostat_eta", "tfs_z", "penalize_newline")},
    **{name: _drop(_RUNNER) for name in (
        "num_gpu", "num_thread", "main_gpu", "use_mlock", "use_mmap", "numa", "low_vram",
        "num_batch", "f16_kv", "vocab_only", "logits_all")},
}

_NATIVE_MESSAGE: Mapping[str, Rule] = {
    "role": KEEP, "content": TEXT, "thinking": TEXT, "images": IMAGES, "tool_calls": TEXT,
    "tool_name": KEEP, "tool_call_id": KEEP,
}
_OPENAI_MESSAGE: Mapping[str, Rule] = {
    "role": KEEP, "content": CONTENT, "reasoning": TEXT, "tool_calls": TEXT, "name": KEEP,
    "tool_call_id": KEEP,
}
MESSAGE_FIELDS: Mapping[str, Mapping[str, Rule]] = {
    "/api/chat": _NATIVE_MESSAGE, "/v1/chat/completions": _OPENAI_MESSAGE,
}

_NATIVE_GENERATION: Mapping[str, Rule] = {
    "model": MODEL, "stream": BOOL, "format": FORMAT, "keep_alive": KEEP_ALIVE,
    "options": OPTIONS, "think": KEEP, "truncate": BOOL, "shift": BOOL, "logprobs": BOOL,
    "top_logprobs": KEEP, "_debug_render_only": _drop(_DEBUG),
}
_OPENAI_GENERATION: Mapping[str, Rule] = {
    "model": MODEL, "stream": BOOL, "stream_options": KEEP, "max_tokens": OUTPUT,
    "seed": KEEP, "stop": STOPS, "temperature": KEEP, "frequency_penalty": KEEP,
    "presence_penalty": KEEP, "top_p": KEEP, "_debug_render_only": _drop(_DEBUG),
}

# The one table of what each endpoint may carry; anything else is left out.
FIELDS: Mapping[str, Mapping[str, Rule]] = {
    "/api/chat": {**_NATIVE_GENERATION, "messages": MESSAGES, "tools": TOOLS},
    "/api/generate": {
        **_NATIVE_GENERATION, "prompt": TEXT, "suffix": TEXT, "system": TEXT, "context": TOKENS,
        "images": IMAGES, "template": _drop(_TEMPLATE), "raw": _drop(_RAW),
        "width": _drop(_IMAGE_GEN), "height": _drop(_IMAGE_GEN), "steps": _drop(_IMAGE_GEN)},
    "/api/embed": {"model": MODEL, "input": INPUTS, "keep_alive": KEEP_ALIVE, "truncate": BOOL,
                   "dimensions": KEEP, "options": OPTIONS},
    "/api/embeddings": {"model": MODEL, "prompt": TEXT, "keep_alive": KEEP_ALIVE,
                        "options": OPTIONS},
    "/v1/chat/completions": {
        **_OPENAI_GENERATION, "messages": MESSAGES, "max_completion_tokens": OUTPUT,
        "response_format": FORMAT, "tools": TOOLS, "reasoning": KEEP, "reasoning_effort": KEEP,
        "logprobs": BOOL, "top_logprobs": KEEP},
    "/v1/completions": {**_OPENAI_GENERATION, "prompt": TEXT, "suffix": TEXT,
                        "logprobs": KEEP},
    "/v1/embeddings": {"model": MODEL, "input": INPUTS, "dimensions": KEEP,
                       "encoding_format": KEEP},
}
NATIVE = frozenset({"/api/chat", "/api/generate", "/api/embed", "/api/embeddings"})
GENERATING = frozenset({"/api/chat", "/api/generate", "/v1/chat/completions",
                        "/v1/completions"})
TOP_LOGPROBS = 20  # OpenAI's own ceiling; llama-server computes this many per token


def _pass_through(server: ServerKind) -> Mapping[str, Mapping[str, Rule]]:
    """The ``/v1`` tables for a server that is sent them as they are (not Ollama): OpenAI's
    fields as above, and the server's own as :mod:`ghubai_tray.core.server_fields` judges."""
    extras: dict[str, Rule] = {**{name: KEEP for name in KEPT[server]},
                               **{name: _drop(why) for name, why in DROPPED[server].items()}}
    tables: dict[str, Mapping[str, Rule]] = {}
    for endpoint in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        table = {k: v for k, v in FIELDS[endpoint].items() if k != "_debug_render_only"}
        if endpoint in GENERATING:
            table.update(extras)
        if endpoint == "/v1/chat/completions":
            table.update({"tool_choice": KEEP, "parallel_tool_calls": BOOL})
        tables[endpoint] = table
    return tables


# What a server other than Ollama may be sent at each /v1 endpoint, by kind.
PASS_FIELDS: Mapping[ServerKind, Mapping[str, Mapping[str, Rule]]] = {
    server: _pass_through(server) for server in ServerKind if server is not ServerKind.OLLAMA}


def go_fold(key: str) -> str:
    """How Go's encoding/json folds a key before comparing it with ASCII field names.

    Go folds every rune to the smallest rune of its simple-folding orbit. For
    names made of ASCII letters, digits and ``_`` (every Ollama field), only
    ASCII letters and two other runes fold onto them: the Kelvin sign (onto k)
    and the long s (onto s). Everything else stays itself and cannot match.
    """
    return key.lower() if key.isascii() else "".join(
        "k" if c == "\u212a" else "s" if c == "\u017f" else c.lower() if c.isascii() else c
        for c in key)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NumberRefused(text)
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NumberRefused(text)
    return int(text)


class _NumberRefused(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def parse_body(text: str, shape: ShapeLimits | None = None) -> dict[str, Any]:
    """The body as one JSON object, strictly: no duplicate keys, no NaN, bounded shape.

    A number no float64 can hold (``1e400``, a 400-digit integer) is refused:
    Python would read it as infinity or a huge int, and neither can be written
    back as JSON that Ollama reads as the client wrote it.
    """
    try:
        check_shape(text, shape or Ceilings().shape, "the request body")
    except ShapeRefused as exc:
        raise BodyRefused(str(exc)) from None
    try:
        document = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant,
                              parse_float=_finite, parse_int=_bounded_int)
    except _NumberRefused as exc:
        raise BodyRefused(f"the request body has the number {_shown(exc.text)}, which is "
                          "out of range") from None
    except _DuplicateKey as exc:
        raise BodyRefused(f"the request body has the key {_shown(exc.key)} more than once"
                          ) from None
    except RecursionError:
        raise BodyRefused("the request body is nested too deeply") from None
    except MemoryError:
        raise BodyRefused("the request body is too large to read") from None
    except ValueError:
        raise BodyRefused("the request body is not JSON") from None
    if not isinstance(document, dict):
        raise BodyRefused("the request body is not a JSON object")
    return document


def _shown(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:40] + "...")


@dataclass
class _Pass:
    """What one canonicalisation noticed on its way through the body."""

    ceilings: Ceilings
    capped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    images: int = 0
    text_bytes: int = 0  # of the text the model reads: checked against prompt_bytes

    def read(self, value: Any) -> None:
        """Count the text in ``value`` (strings at any depth) as read by the model."""
        self.text_bytes += _text_size(value)
        if self.text_bytes > self.ceilings.prompt_bytes:
            raise BodyRefused(f"the request's text is more than {self.ceilings.prompt_bytes:,} "
                              "bytes, this machine's limit")


def canonical_body(endpoint: str, text: str, model: str, ceilings: Ceilings,
                   server: ServerKind = ServerKind.OLLAMA) -> Canonical:
    """The bytes to POST for this body, and where; :class:`BodyRefused` says why not.

    ``model`` is the shared model's exact name: the body must name it (in any
    case, as the hub's routing does), and the forwarded body names it exactly.
    ``server`` is the kind of model server that serves it: Ollama takes every
    request through its native API; another server takes ``/v1`` requests as they
    are (by its own table) and native ones translated (see native_bridge).
    """
    document = parse_body(text, ceilings.shape)
    run = _Pass(ceilings)
    passed = server is not ServerKind.OLLAMA and endpoint not in NATIVE
    table = PASS_FIELDS[server][endpoint] if passed else FIELDS[endpoint]
    out = _struct(document, table, run, "", endpoint)
    asked = out.get("model")
    if not isinstance(asked, str) or not asked:
        raise BodyRefused("the request body names no model")
    if asked.casefold() != model.casefold():
        raise BodyRefused(f"the request body asks for a different model than {model[:80]!r}")
    out["model"] = model
    _apply_defaults(endpoint, out, ceilings)
    if "messages" in out:
        _check_truncation_work(endpoint, out, ceilings)
    path, out, answer, native_shape = _route(endpoint, out, ceilings, server)
    try:
        body = json.dumps(out, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except RecursionError:
        raise BodyRefused("the request body is nested too deeply") from None
    except UnicodeEncodeError:
        raise BodyRefused("the request body is not valid text") from None
    except ValueError:  # parse_body keeps this from happening; a final is owed regardless
        raise BodyRefused("the request body has a value that cannot be forwarded") from None
    keep_alive = out.get("keep_alive")  # the worker's own number
    return Canonical(body, tuple(run.capped), tuple(run.dropped),
                     float(keep_alive) if isinstance(keep_alive, int | float) else None,
                     path, answer, native_shape)


def _route(endpoint: str, out: dict[str, Any], ceilings: Ceilings, server: ServerKind
           ) -> tuple[str, dict[str, Any], AnswerShape | None, NativeShape | None]:
    """Where the checked body goes, as what, and how its answer comes back."""
    if server is not ServerKind.OLLAMA and endpoint not in NATIVE:  # passed as it is
        _check_top_logprobs(out, "top_logprobs")
        if endpoint == "/v1/completions":  # the legacy API's logprobs is a count
            _check_top_logprobs(out, "logprobs")
        return endpoint, out, None, None
    if server is not ServerKind.OLLAMA:  # a native request, served by /v1
        try:
            translated = to_openai(endpoint, out, server)
        except NotServable as exc:
            raise BodyRefused(str(exc)) from None
        return translated.path, translated.body, None, translated.shape
    if endpoint not in NATIVE:  # served through the native API: see openai_bridge
        try:
            native = to_native(endpoint, out, ceilings.context,
                               _number_out(ceilings.keep_alive))
        except Untranslatable as exc:
            raise BodyRefused(str(exc)) from None
        return native.path, native.body, native.answer, None
    return endpoint, out, None, None


def _check_top_logprobs(out: dict[str, Any], name: str) -> None:
    """A server passed ``top_logprobs`` as it is computes that many per token."""
    top = out.get(name)
    if top is not None and (not isinstance(top, int) or isinstance(top, bool)
                            or not 0 <= top <= TOP_LOGPROBS):
        raise BodyRefused(f"{name} in the request body must be a whole number from 0 "
                          f"to {TOP_LOGPROBS}")


def _check_truncation_work(endpoint: str, out: dict[str, Any], ceilings: Ceilings) -> None:
    """Refuse a chat whose fitting into the context could cost Ollama more than
    :data:`~ghubai_tray.core.prompt_work.MAX_WORK` (see that module)."""
    context = out["options"]["num_ctx"] if endpoint in NATIVE else ceilings.context
    sizes = [_message_text(m) for m in out["messages"]]
    if truncation_work(sizes, _text_size(out.get("tools")), context) > MAX_WORK:
        raise BodyRefused(
            f"the chat is too long for this machine: its {len(sizes):,} messages "
            f"({sum(sizes):,} bytes of text) are far more than a context of {context:,} "
            "tokens holds, and Ollama would read them again for every message it drops; "
            "send only the latest messages")


def _message_text(message: dict[str, Any]) -> int:
    """The bytes of a message's text, its images aside (they are not tokenized)."""
    size = 0
    for key, value in message.items():
        if key == "images":
            continue
        if key == "content" and isinstance(value, list):
            value = [p for p in value if not (isinstance(p, dict)
                                              and p.get("type") == "image_url")]
        size += len(key) + _text_size(value)
    return size


def _apply_defaults(endpoint: str, out: dict[str, Any], ceilings: Ceilings) -> None:
    """What the hub left out falls back to the ceiling, never to "no limit".

    The context too: without ``num_ctx`` Ollama takes the owner's
    ``OLLAMA_CONTEXT_LENGTH`` or, without it, a size from the GPU's memory
    (262,144 tokens at 47 GiB), so a request naming none would get more than
    one asking for everything.
    """
    if endpoint in NATIVE:
        out.setdefault("keep_alive", _number_out(ceilings.keep_alive))
        options = out.setdefault("options", {})
        options.setdefault("num_ctx", ceilings.context)
    if endpoint not in GENERATING:
        return
    if endpoint in NATIVE:
        options.setdefault("num_predict", ceilings.output_tokens)
        return
    # Ollama reads max_tokens only; an OpenAI client may send max_completion_tokens
    # instead (or both): the smaller one, within the ceiling, goes out as max_tokens.
    asked = [out.pop(k) for k in ("max_tokens", "max_completion_tokens") if k in out]
    out["max_tokens"] = min(asked, default=ceilings.output_tokens)


def _struct(obj: dict[str, Any], table: Mapping[str, Rule], run: _Pass, path: str,
            endpoint: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = go_fold(key)
        rule = table.get(name)
        if rule is None:
            continue  # unknown to the worker: Ollama never sees it
        if key != name:
            raise BodyRefused(f"the request body spells {path}{_shown(key)} differently from "
                              f"Ollama's field {path}{name!r}")
        if value is None and rule.kind is not Kind.MODEL:
            continue  # null is "not given" for Ollama too
        kept = _apply(rule, value, run, f"{path}{name}", endpoint)
        if kept is not _LEFT_OUT:
            out[name] = kept
    return out


_LEFT_OUT = object()


def _apply(rule: Rule, value: Any, run: _Pass, name: str, endpoint: str) -> Any:  # noqa: C901
    kind, limits = rule.kind, run.ceilings
    if kind is Kind.KEEP:
        return value
    if kind is Kind.DROP:
        run.dropped.append(name)
        return _LEFT_OUT
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise BodyRefused(f"{name} in the request body must be true or false")
        return value
    if kind is Kind.MODEL:
        if not isinstance(value, str):
            raise BodyRefused("the request body names no model")
        return value
    if kind is Kind.KEEP_ALIVE:
        seconds = keep_alive_seconds(value)
        if 0 <= seconds <= limits.keep_alive:
            return _number_out(seconds)
        run.capped.append(f"{name} {_said(value)} -> {limits.keep_alive:g} s")
        return _number_out(limits.keep_alive)
    if kind is Kind.OUTPUT:
        tokens = _whole(value, name)
        if 1 <= tokens <= limits.output_tokens:
            return tokens
        run.capped.append(f"{name} {_said(value)} -> {limits.output_tokens}")
        return limits.output_tokens
    if kind is Kind.CONTEXT:
        size = _whole(value, name)
        if size < 1:
            return _LEFT_OUT  # Ollama's own default
        if size <= limits.context:
            return size
        run.capped.append(f"{name} {_said(value)} -> {limits.context}")
        return limits.context
    if kind is Kind.OPTIONS:
        if not isinstance(value, dict):
            raise BodyRefused(f"{name} in the request body must be an object")
        return _struct(value, OPTION_FIELDS, run, f"{name}.", endpoint)
    if kind is Kind.MESSAGES:
        if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
            raise BodyRefused(f"{name} in the request body must be a list of objects")
        _count(value, limits.messages, "message(s)")
        table = MESSAGE_FIELDS[endpoint]
        return [_struct(m, table, run, f"{name}[{i}].", endpoint) for i, m in enumerate(value)]
    if kind is Kind.IMAGES:
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise BodyRefused(f"{name} in the request body must be a list of base64 texts")
        for image in value:
            _count_image(run, _base64_size(image))
        return value
    if kind is Kind.CONTENT:
        if isinstance(value, list):
            for part in value:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    _count_image(run, _data_url_size(part.get("image_url")))
                else:
                    run.read(part)
        else:
            run.read(value)
        return value
    return _apply_counted(kind, value, run, name)


_COUNTED = {Kind.INPUTS: ("inputs", "embedding input(s)"), Kind.TOOLS: ("tools", "tool(s)"),
            Kind.STOPS: ("stops", "stop string(s)")}


def _apply_counted(kind: Kind, value: Any, run: _Pass, name: str) -> Any:
    """The kinds that bound what a field makes Ollama do by counting or measuring it."""
    if kind is Kind.TEXT:
        run.read(value)
    elif kind in _COUNTED:
        ceiling, what = _COUNTED[kind]
        if isinstance(value, list):
            _count(value, getattr(run.ceilings, ceiling), what)
        run.read(value)
    elif kind is Kind.TOKENS:
        if not isinstance(value, list):
            raise BodyRefused(f"{name} in the request body must be a list of tokens")
        _count(value, run.ceilings.context, "context token(s)")
    elif kind is Kind.FORMAT:
        try:
            check_format(value)
        except ValueError as exc:
            raise BodyRefused(f"{name} in the request body {exc}") from None
    else:
        raise AssertionError(kind)  # pragma: no cover - every kind is handled
    return value


def _count(items: list[Any], ceiling: int, what: str) -> None:
    if len(items) > ceiling:
        raise BodyRefused(f"the request has {len(items):,} {what}, more than this machine's "
                          f"limit of {ceiling:,}")


def _text_size(value: Any) -> int:
    """UTF-8 bytes of every string in ``value`` (keys too); the shape is bounded already."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    if isinstance(value, dict):
        return sum(len(k) + _text_size(v) for k, v in value.items())
    return 0  # pragma: no cover - every kind is handled above


def _count_image(run: _Pass, size: int) -> None:
    limits = run.ceilings
    run.images += 1
    if run.images > limits.images:
        raise BodyRefused(f"the request has more than {limits.images} image(s), this "
                          "machine's limit")
    if size > limits.image_bytes:
        raise BodyRefused(f"an image of the request is {size:,} bytes, more than this "
                          f"machine's limit of {limits.image_bytes:,}")


def _base64_size(text: str) -> int:
    stripped = text.rstrip("=")
    return len(stripped) * 3 // 4


def _data_url_size(value: Any) -> int:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        return 0  # Ollama refuses the message itself
    if not url.startswith("data:"):
        raise BodyRefused("this worker takes images only inside the request (data: URLs), "
                          "never from an address")
    return _base64_size(url.partition(",")[2])


def _said(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 24 else text[:21] + "..."


def _number_out(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


def _whole(value: Any, name: str) -> int:
    """A JSON number as Go's int conversion reads it (towards zero)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyRefused(f"{name} in the request body must be a number")
    if isinstance(value, float) and not abs(value) < 2**62:
        return 2**62 if value > 0 else -(2**62)
    return int(value)


# Go's time.ParseDuration: "300ms", "1.5h", "2h45m"; a bare "0" too.
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                 "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: Any) -> float:
    """Seconds, as Ollama reads ``keep_alive`` (a negative value means forever: -1)."""
    if isinstance(value, bool):
        raise BodyRefused("keep_alive in the request body must be a number or a duration")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise BodyRefused("keep_alive in the request body must be a number or a duration")
    text, sign = value, 1.0
    if text[:1] in ("+", "-"):
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    while text and pos < len(text):
        part = _DURATION_PART.match(text, pos)
        if part is None:
            break
        total += float(part[1]) * _UNIT_SECONDS[part[2]]
        pos = part.end()
    if not text or pos != len(text):
        raise BodyRefused(f"keep_alive {_said(value)} is not a duration Ollama understands")
    return sign * total

"""Settings: defaults, then ``config.toml``, then environment variables, then flags.

Every setting is described once in :data:`SETTINGS` (its TOML key, variable,
flag, default, parser and the words shown to people), and everything else is
derived from that table: the layering, the ``--flags``, the error messages,
``doctor``'s report and the README's table. An invalid value names the
setting, where it came from and what is expected, and the program exits 2
rather than start half-configured.

The file is ours: it is written atomically (temporary file, then rename),
keeps keys it does not know (a newer version may have written them) and
never holds the token, which lives in the OS keyring (:mod:`ghubai_tray.adapters.credentials`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
import tomli_w

from ghubai_tray.adapters.owner_only import private_dir
from ghubai_tray.core.errors import ConfigError
from ghubai_tray.core.request_body import Ceilings

APP_NAME = "GhubAi"
DEFAULT_HUB_URL = "https://localhost:7197/gridhub"  # the seed's default
DEFAULT_OLLAMA_URL = "http://localhost:11434"
# What an ASP.NET hub accepts from its client by default (Kestrel's MaxRequestBodySize),
# and so the most it can deliver: a vision request with a photo or two is several MB.
DEFAULT_MAX_REQUEST_BODY = 30_000_000
TOKEN_KEYS = frozenset({"token", "provider_token", "access_token"})


def config_path() -> Path:
    """Where ``config.toml`` lives; ``GHUBAI_CONFIG`` moves it (tests, containers)."""
    override = os.environ.get("GHUBAI_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


# -- value parsers: each takes a raw value (text from a variable or flag, or a TOML
#    value) and returns the typed value or raises ValueError saying what is expected.

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError("expected 1 or 0 (also true/false, yes/no, on/off)")


def _url(raw: Any, what: str) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected {what}")
    text = raw.strip()
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"expected {what} (the port is not a number)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected {what}")
    if parts.username or parts.password:
        raise ValueError(f"expected {what} without a user name or password in it")
    if parts.fragment:
        raise ValueError(f"expected {what} without a #fragment")
    return text


def parse_hub_url(raw: Any) -> str:
    return _url(raw, "an http:// or https:// URL of the hub, like https://hub.example.com/gridhub")


def parse_ollama_url(raw: Any) -> str:
    text = _url(raw, "an http:// or https:// URL of Ollama, like http://localhost:11434")
    if urlsplit(text).query:
        raise ValueError("expected Ollama's base URL without a ?query")
    return text.rstrip("/")


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("a number")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        return float(raw.strip())  # ValueError for non-numbers
    raise ValueError("a number")


def _plain(number: float) -> str:
    """1048576, not 1.04858e+06."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _bounded(low: float, high: float, unit: str, integer: bool) -> Callable[[Any], Any]:
    kind = "a whole number" if integer else "a number"
    expected = f"expected {kind} of {unit} from {_plain(low)} to {_plain(high)}"

    def parse(raw: Any) -> float | int:
        try:
            value = _number(raw)
        except ValueError:
            raise ValueError(expected) from None
        if value != value or not low <= value <= high or (integer and value != int(value)):
            raise ValueError(expected)
        return int(value) if integer else value

    return parse


_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "kb": 1000, "mib": 1024**2, "mb": 1000**2}


def parse_size(raw: Any) -> int:
    expected = "expected a size from 1 KiB to 1 GiB, in bytes or like 4MiB"
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip().lower().replace(" ", "")
        number = text.rstrip("kmib")
        unit = text[len(number):]
        if unit not in _SIZE_UNITS or not number.isdigit():
            raise ValueError(expected)
        value = int(number) * _SIZE_UNITS[unit]
    else:
        raise ValueError(expected)
    if not 1024 <= value <= 1024**3:
        raise ValueError(expected)
    return value


def parse_machine_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > 128 \
            or not raw.strip().isprintable():
        raise ValueError("expected a name of 1 to 128 printable characters")
    return raw.strip()


def parse_models(raw: Any) -> tuple[str, ...]:
    expected = "expected a list of model names (a TOML list, or names separated by commas)"
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise ValueError(expected)
    if not all(isinstance(i, str) for i in items):
        raise ValueError(expected)
    names: dict[str, str] = {}
    for item in items:
        if item.strip():
            names.setdefault(item.strip().casefold(), item.strip())
    return tuple(names.values())


def parse_time(raw: Any) -> datetime | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError("expected a date and time like 2026-11-24T18:30:00+01:00") from None
    else:
        raise ValueError("expected a date and time like 2026-11-24T18:30:00+01:00")
    return value if value.tzinfo else value.astimezone()


@dataclass(frozen=True)
class Setting:
    """One setting: where it is read from, its default, its parser, and its words."""

    key: str  # attribute of Settings and key in config.toml
    env: str
    flag: str
    parse: Callable[[Any], Any]
    help: str
    default: Any = None  # None: computed (see defaults())


SETTINGS: tuple[Setting, ...] = (
    Setting("hub_url", "HUB_URL", "--hub-url", parse_hub_url, "the hub's SignalR URL",
            DEFAULT_HUB_URL),
    Setting("ollama_url", "OLLAMA_LOCAL_URL", "--ollama-url", parse_ollama_url,
            "your Ollama's base URL", DEFAULT_OLLAMA_URL),
    Setting("allow_invalid_certs", "ALLOW_INVALID_CERTS", "--allow-invalid-certs", parse_bool,
            "accept untrusted TLS certificates (development only)", False),
    Setting("machine_name", "GHUBAI_MACHINE_NAME", "--machine-name", parse_machine_name,
            "the name the hub shows for this machine (default: the host name)"),
    Setting("discovery_interval", "GHUBAI_DISCOVERY_INTERVAL", "--discovery-interval",
            _bounded(5, 3600, "seconds", False),
            "seconds between registration heartbeats (changes are noticed within 5 s)", 30.0),
    Setting("max_concurrent_requests", "GHUBAI_MAX_CONCURRENT_REQUESTS",
            "--max-concurrent-requests", _bounded(1, 64, "requests", True),
            "requests sent to Ollama at the same time", 2),
    Setting("max_request_body", "GHUBAI_MAX_REQUEST_BODY", "--max-request-body", parse_size,
            "largest request body accepted from the hub", DEFAULT_MAX_REQUEST_BODY),
    Setting("max_keep_alive", "GHUBAI_MAX_KEEP_ALIVE", "--max-keep-alive",
            _bounded(0, 86400, "seconds", False),
            "longest a hub request may keep a model in memory after it ends, in seconds", 300.0),
    Setting("max_context", "GHUBAI_MAX_CONTEXT", "--max-context",
            _bounded(256, 1048576, "tokens", True),
            "largest context (num_ctx) a hub request may ask for; memory grows with it", 8192),
    Setting("max_output_tokens", "GHUBAI_MAX_OUTPUT_TOKENS", "--max-output-tokens",
            _bounded(1, 1048576, "tokens", True),
            "most tokens one hub request may generate", 4096),
    Setting("max_images", "GHUBAI_MAX_IMAGES", "--max-images", _bounded(0, 64, "images", True),
            "most images one hub request may carry", 4),
    Setting("max_image_size", "GHUBAI_MAX_IMAGE_SIZE", "--max-image-size", parse_size,
            "largest image a hub request may carry", 10 * 1024 * 1024),
    Setting("idle_timeout", "GHUBAI_IDLE_TIMEOUT", "--idle-timeout",
            _bounded(1, 3600, "seconds", False),
            "seconds Ollama may stay silent during one answer (model loading included)", 300.0),
    Setting("total_timeout", "GHUBAI_TOTAL_TIMEOUT", "--total-timeout",
            _bounded(1, 86400, "seconds", False), "seconds one request may take in all", 3600.0),
    Setting("share_new_models", "GHUBAI_SHARE_NEW_MODELS", "--share-new-models", parse_bool,
            "share models Ollama gets later without asking (cloud models excepted)", True),
    Setting("shared_models", "GHUBAI_SHARED_MODELS", "--shared-models", parse_models,
            "models always shared (cloud models only when named here)", ()),
    Setting("unshared_models", "GHUBAI_UNSHARED_MODELS", "--unshared-models", parse_models,
            "models never shared", ()),
    Setting("free_gpu_when_paused", "GHUBAI_FREE_GPU_WHEN_PAUSED", "--free-gpu-when-paused",
            parse_bool, "on pausing, unload the shared models so the GPU's memory is yours again",
            True),
    Setting("paused", "GHUBAI_PAUSED", "--paused", parse_bool,
            "start paused: connected, but sharing nothing", False),
    Setting("paused_until", "GHUBAI_PAUSED_UNTIL", "--paused-until", parse_time,
            "when a pause ends by itself (ISO 8601 time)", None),
)
BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The effective settings; ``sources`` says where each value came from."""

    hub_url: str = DEFAULT_HUB_URL
    ollama_url: str = DEFAULT_OLLAMA_URL
    allow_invalid_certs: bool = False
    machine_name: str = field(default_factory=socket.gethostname)
    discovery_interval: float = 30.0
    max_concurrent_requests: int = 2
    max_request_body: int = DEFAULT_MAX_REQUEST_BODY
    max_keep_alive: float = 300.0
    max_context: int = 8192
    max_output_tokens: int = 4096
    max_images: int = 4
    max_image_size: int = 10 * 1024 * 1024
    idle_timeout: float = 300.0
    total_timeout: float = 3600.0
    share_new_models: bool = True
    shared_models: tuple[str, ...] = ()
    unshared_models: tuple[str, ...] = ()
    free_gpu_when_paused: bool = True
    paused: bool = False
    paused_until: datetime | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    @property
    def is_default_hub(self) -> bool:
        return self.hub_url == DEFAULT_HUB_URL

    @property
    def ceilings(self) -> Ceilings:
        """The owner's limits on one hub request, as the body rebuilder takes them."""
        return Ceilings(keep_alive=self.max_keep_alive, context=self.max_context,
                        output_tokens=self.max_output_tokens, images=self.max_images,
                        image_bytes=self.max_image_size)


assert {f.name for f in fields(Settings)} - {"sources"} == set(BY_KEY), "SETTINGS and Settings"


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per setting (bools get ``--no-...`` too), defaulting to unset."""
    group = parser.add_argument_group("settings (override config.toml and the environment)")
    for s in SETTINGS:
        if s.parse is parse_bool:
            group.add_argument(s.flag, dest=f"set_{s.key}", action=argparse.BooleanOptionalAction,
                               default=None, help=s.help)
        else:
            group.add_argument(s.flag, dest=f"set_{s.key}", metavar="VALUE", default=None,
                               help=f"{s.help} (variable {s.env})")


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, by key."""
    return {s.key: v for s in SETTINGS if (v := getattr(args, f"set_{s.key}", None)) is not None}


def read_file(path: Path) -> dict[str, Any]:
    """The raw TOML document (empty when there is no file); errors say what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None


def _check_no_token(doc: Mapping[str, Any], path: Path) -> None:
    found = sorted(k for k in doc if k.lower() in TOKEN_KEYS)
    if found:
        raise ConfigError(
            f"the config file {path} holds a token ({found[0]}): tokens belong in the OS "
            "keyring. Remove that line and run 'ghubai-tray token set'.")


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer defaults, file, environment and flags; raise :class:`ConfigError` on any bad value."""
    path = path or config_path()
    environ = os.environ if environ is None else environ
    doc = read_file(path)
    _check_no_token(doc, path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def take(key: str, raw: Any, source: str) -> None:
        try:
            values[key] = BY_KEY[key].parse(raw)
        except ValueError as exc:
            shown = raw if len(repr(raw)) < 80 else f"{repr(raw)[:77]}..."
            raise ConfigError(f"{key} from {source} is {shown!r}: {exc}") from None
        sources[key] = source

    for s in SETTINGS:
        if s.key in doc:
            take(s.key, doc[s.key], f"the config file {path}")
    for s in SETTINGS:
        if s.env in environ:
            take(s.key, environ[s.env], f"the variable {s.env}")
            if s.key == "shared_models":
                _implied_share_new(values, sources, environ[s.env], sources["shared_models"],
                                   explicit="GHUBAI_SHARE_NEW_MODELS" in environ)
    flags = flags or {}
    for key, raw in flags.items():
        take(key, raw, f"the flag {BY_KEY[key].flag}")
    if "shared_models" in flags:
        _implied_share_new(values, sources, flags["shared_models"], sources["shared_models"],
                           explicit="share_new_models" in flags)
    if values.get("paused_until") is not None and "paused" not in values:
        values["paused"] = True
    return replace(Settings(), **values, sources=sources)


def _implied_share_new(
    values: dict[str, Any], sources: dict[str, str], raw: Any, source: str, explicit: bool
) -> None:
    # A list of shared models given as a variable or flag means "only these", unless
    # new models are mentioned explicitly too; "all" means every model.
    if isinstance(raw, str) and raw.strip().lower() == "all":
        values["shared_models"] = ()
        values["share_new_models"] = True
    elif not explicit:
        values["share_new_models"] = False
    else:
        return
    sources["share_new_models"] = source


def to_toml_value(key: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if value is None:
        return ""
    return value


def save_settings(updates: Mapping[str, Any], path: Path | None = None) -> None:
    """Write ``updates`` into the config file atomically, keeping every other key.

    The whole new document is checked before anything is written, so a bad
    value leaves the old file as it was.
    """
    path = path or config_path()
    doc = read_file(path)
    for key, value in updates.items():
        if key not in BY_KEY:
            raise ConfigError(f"{key} is not a setting")
        doc[key] = to_toml_value(key, value)
    _check_no_token(doc, path)
    for key in updates:
        try:
            BY_KEY[key].parse(doc[key])
        except ValueError as exc:
            raise ConfigError(f"{key} cannot be saved as {doc[key]!r}: {exc}") from None
    private_dir(path.parent)
    fd, temp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as out:
            tomli_w.dump(doc, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise

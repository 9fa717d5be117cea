"""The settings themselves: every setting described once, parsed and typed, with no I/O.

:data:`SETTINGS` holds each setting's TOML key, variable, flag, default, parser
and the words shown to people; everything else is derived from that table: the
layering and ``--flags`` (:mod:`ghubai_tray.adapters.config`), the error
messages, ``doctor``'s report and the README's table. :class:`Settings` is the
frozen result, carried by every snapshot so that what the tray shows and what
the worker uses are one value.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ghubai_tray.core import schedule
from ghubai_tray.core.request_body import Ceilings

APP_NAME = "GhubAi"
DEFAULT_HUB_URL = "https://localhost:7197/gridhub"  # the seed's default
DEFAULT_OLLAMA_URL = "http://localhost:11434"
# What an ASP.NET hub accepts from its client by default (Kestrel's MaxRequestBodySize),
# and so the most it can deliver: a vision request with a photo or two is several MB.
DEFAULT_MAX_REQUEST_BODY = 30_000_000
TOKEN_KEYS = frozenset({"token", "provider_token", "access_token"})


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


def url_secrets(url: str) -> tuple[str, ...]:
    """The values of a URL's query: a hub may take a key there (``?access_token=``), so
    none of them is ever shown (doctor, status, diagnostics, the log)."""
    return tuple(value for _, value in parse_qsl(urlsplit(url).query, keep_blank_values=False)
                 if value)


def shown_url(url: str) -> str:
    """``url`` with each query value replaced by ``[redacted]``, names kept."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = "&".join(f"{name}=[redacted]" if value else name
                     for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query=query))


DEFAULT_UPDATE_URL = "https://api.github.com/repos/ghubai/ghubai-tray/releases"


def parse_update_url(raw: Any) -> str:
    return _url(raw, "an http:// or https:// URL of a releases feed, like " + DEFAULT_UPDATE_URL)


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


def _off_or(low: float, high: float, unit: str) -> Callable[[Any], float]:
    """A limit that is off at 0 (its default), else from ``low`` to ``high``."""
    within = _bounded(low, high, unit, False)
    expected = f"expected 0 (off) or a number of {unit} from {_plain(low)} to {_plain(high)}"

    def parse(raw: Any) -> float:
        try:
            return 0.0 if _number(raw) == 0 else float(within(raw))
        except ValueError:
            raise ValueError(expected) from None

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
    Setting("max_messages", "GHUBAI_MAX_MESSAGES", "--max-messages",
            _bounded(1, 100_000, "messages", True), "most messages one hub chat may carry", 1000),
    Setting("max_embedding_inputs", "GHUBAI_MAX_EMBEDDING_INPUTS", "--max-embedding-inputs",
            _bounded(1, 100_000, "inputs", True),
            "most texts one hub request may ask embeddings for", 2048),
    Setting("max_tools", "GHUBAI_MAX_TOOLS", "--max-tools", _bounded(0, 4096, "tools", True),
            "most tools one hub request may offer the model", 128),
    Setting("max_stop_strings", "GHUBAI_MAX_STOP_STRINGS", "--max-stop-strings",
            _bounded(0, 1024, "stop strings", True),
            "most stop strings one hub request may set", 16),
    Setting("max_prompt_size", "GHUBAI_MAX_PROMPT_SIZE", "--max-prompt-size", parse_size,
            "most text (images aside) one hub request may give the model to read",
            4 * 1024 * 1024),
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
    Setting("schedule", "GHUBAI_SCHEDULE", "--schedule", schedule.parse,
            "share only within these local-time windows, like 'Mon-Fri 18:00-23:30' "
            "(empty: always)", ()),
    Setting("owner_first", "GHUBAI_OWNER_FIRST", "--owner-first", parse_bool,
            "stop taking hub requests while you use Ollama on this computer", True),
    Setting("owner_first_hold", "GHUBAI_OWNER_FIRST_HOLD", "--owner-first-hold",
            _bounded(0, 86400, "seconds", False),
            "seconds Ollama must be free of your own use before sharing again", 300.0),
    Setting("pause_when_fullscreen", "GHUBAI_PAUSE_WHEN_FULLSCREEN", "--pause-when-fullscreen",
            parse_bool, "pause while a full-screen app or game is in front", True),
    Setting("pause_when_gpu_busy", "GHUBAI_PAUSE_WHEN_GPU_BUSY", "--pause-when-gpu-busy",
            parse_bool, "pause while another program uses the GPU (NVIDIA only)", False),
    Setting("share_when_idle_only", "GHUBAI_SHARE_WHEN_IDLE_ONLY", "--share-when-idle-only",
            parse_bool, "share only while nobody uses this computer's keyboard and mouse",
            False),
    Setting("idle_minutes", "GHUBAI_IDLE_MINUTES", "--idle-minutes",
            _bounded(1, 1440, "minutes", True),
            "minutes without keyboard or mouse before the computer counts as idle", 10),
    Setting("pause_on_battery", "GHUBAI_PAUSE_ON_BATTERY", "--pause-on-battery", parse_bool,
            "pause while the computer runs on battery", True),
    Setting("max_gpu_temp", "GHUBAI_MAX_GPU_TEMP", "--max-gpu-temp", _off_or(40, 110, "°C"),
            "hold sharing once the GPU has been this hot for 10 s (0: off)", 0.0),
    Setting("resume_gpu_temp", "GHUBAI_RESUME_GPU_TEMP", "--resume-gpu-temp",
            _off_or(30, 110, "°C"),
            "share again once the GPU has stayed this cool for 60 s (0: 10 °C under the "
            "maximum)", 0.0),
    Setting("max_gpu_power", "GHUBAI_MAX_GPU_POWER", "--max-gpu-power", _off_or(10, 2000, "W"),
            "hold sharing once the GPU has drawn this many watts for 10 s (0: off)", 0.0),
    Setting("daily_energy_kwh", "GHUBAI_DAILY_ENERGY_KWH", "--daily-energy-kwh",
            _off_or(0.01, 100, "kWh"),
            "stop sharing for the day once the hub's requests have used this much energy "
            "(0: off)", 0.0),
    Setting("daily_gpu_hours", "GHUBAI_DAILY_GPU_HOURS", "--daily-gpu-hours",
            _off_or(0.1, 24, "hours"),
            "stop sharing for the day once the hub's requests have used the GPU this long "
            "(0: off)", 0.0),
    Setting("check_for_updates", "GHUBAI_CHECK_FOR_UPDATES", "--check-for-updates", parse_bool,
            "about once a day, ask the releases feed whether a newer version is out", True),
    Setting("update_url", "GHUBAI_UPDATE_URL", "--update-url", parse_update_url,
            "the releases feed (GitHub's Releases API of the project, or a fork's)",
            DEFAULT_UPDATE_URL),
    Setting("update_prereleases", "GHUBAI_UPDATE_PRERELEASES", "--update-prereleases",
            parse_bool, "also tell of pre-releases (test versions)", False),
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
    max_messages: int = 1000
    max_embedding_inputs: int = 2048
    max_tools: int = 128
    max_stop_strings: int = 16
    max_prompt_size: int = 4 * 1024 * 1024
    idle_timeout: float = 300.0
    total_timeout: float = 3600.0
    share_new_models: bool = True
    shared_models: tuple[str, ...] = ()
    unshared_models: tuple[str, ...] = ()
    free_gpu_when_paused: bool = True
    paused: bool = False
    paused_until: datetime | None = None
    schedule: schedule.Schedule = ()
    owner_first: bool = True
    owner_first_hold: float = 300.0
    pause_when_fullscreen: bool = True
    pause_when_gpu_busy: bool = False
    share_when_idle_only: bool = False
    idle_minutes: int = 10
    pause_on_battery: bool = True
    max_gpu_temp: float = 0.0
    resume_gpu_temp: float = 0.0
    max_gpu_power: float = 0.0
    daily_energy_kwh: float = 0.0
    daily_gpu_hours: float = 0.0
    check_for_updates: bool = True
    update_url: str = DEFAULT_UPDATE_URL
    update_prereleases: bool = False
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
                        image_bytes=self.max_image_size, messages=self.max_messages,
                        inputs=self.max_embedding_inputs, tools=self.max_tools,
                        stops=self.max_stop_strings, prompt_bytes=self.max_prompt_size)


assert {f.name for f in fields(Settings)} - {"sources"} == set(BY_KEY), "SETTINGS and Settings"


def shown_setting(settings: Settings, key: str) -> str:
    """A setting's value as doctor and the diagnostics show it: the hub URL without the
    values of its query."""
    value = getattr(settings, key)
    return shown_url(value) if key == "hub_url" else shown(value)


def shown(value: Any) -> str:
    """A setting's value as a person reads it (doctor, diagnostics): no Python reprs."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return _plain(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return str(value)

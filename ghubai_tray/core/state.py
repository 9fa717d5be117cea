"""What the worker publishes (frozen snapshots) and what it accepts (commands).

State flows one way: the worker owns every mutable thing and, after each
change, publishes a new :class:`Snapshot`; the tray and the headless logger
only read the latest one. Commands flow the other way, through
``Worker.submit()``, as the small frozen dataclasses below.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from ghubai_tray.adapters.config import Settings
from ghubai_tray.core.activity import Activity


class State(enum.Enum):
    """The worker's states. ``Snapshot.connection`` holds every one but PAUSED;
    ``Snapshot.state`` is the headline: the connection's, except that pausing
    overrides a live connection."""

    NOT_CONFIGURED = "not configured"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    REGISTERED = "registered"
    RECONNECTING = "reconnecting"
    AUTH_REJECTED = "auth rejected"
    PAUSED = "paused"
    STOPPED = "stopped"


class OllamaStatus(enum.Enum):
    UNKNOWN = "not checked yet"
    REACHABLE = "reachable"
    UNREACHABLE = "not reachable"
    BAD_ANSWER = "answering something unexpected"


@dataclass(frozen=True)
class ModelView:
    name: str
    remote: bool
    shared: bool


@dataclass(frozen=True)
class Counters:
    served: int = 0
    failed: int = 0
    refused: int = 0
    limited: int = 0  # requests the owner's ceilings changed (capped or fields left out)
    unanswered: int = 0  # refusals dropped because the hub was not reading
    chunks: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Snapshot:
    """Everything a person (or the tray) may want to know, at one instant."""

    sequence: int = 0
    connection: State = State.CONNECTING
    reason: str = "starting"
    hub_url: str = ""
    next_attempt: datetime | None = None
    registered_models: int | None = None  # as last acknowledged by the hub
    ollama: OllamaStatus = OllamaStatus.UNKNOWN
    ollama_reason: str = ""
    ollama_url: str = ""
    models: tuple[ModelView, ...] = ()
    paused: bool = False
    paused_until: datetime | None = None
    free_gpu_when_paused: bool = True
    share_new_models: bool = True
    insecure_tls: bool = False
    active: int = 0
    queued: int = 0
    totals: Counters = field(default_factory=Counters)
    per_model: tuple[tuple[str, Counters], ...] = ()
    activity: Activity = field(default_factory=Activity)
    notice: str | None = None  # a problem the owner should read, in words (a failed save)

    @property
    def state(self) -> State:
        live = self.connection in (State.CONNECTED, State.REGISTERED)
        return State.PAUSED if self.paused and live else self.connection

    @property
    def shared_models(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models if m.shared)


# -- commands ------------------------------------------------------------


class PauseMode(enum.Enum):
    NOW = "now"  # cancel in-flight requests with "[error] paused by the owner"
    AFTER_CURRENT = "after current"  # let them finish, take nothing new


@dataclass(frozen=True)
class Pause:
    mode: PauseMode = PauseMode.AFTER_CURRENT
    until: datetime | None = None


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class SetModelShared:
    name: str
    shared: bool


@dataclass(frozen=True)
class SetShareNewModels:
    enabled: bool


@dataclass(frozen=True)
class SetFreeGpuWhenPaused:
    enabled: bool


@dataclass(frozen=True)
class ApplySettings:
    """New settings (from the settings window or a reload); reconnects if the hub changed."""

    settings: Settings


@dataclass(frozen=True)
class TokenChanged:
    """The token was set or removed: read it again and reconnect at once."""


@dataclass(frozen=True)
class Stop:
    grace: float = 10.0


Command = (Pause | Resume | SetModelShared | SetShareNewModels | SetFreeGpuWhenPaused
           | ApplySettings | TokenChanged | Stop)

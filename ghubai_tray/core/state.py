"""What the worker publishes (frozen snapshots) and what it accepts (commands).

State flows one way: the worker owns every mutable thing and, after each
change, publishes a new :class:`Snapshot`; the tray and the headless logger
only read the latest one. Commands flow the other way, through
``Worker.submit()``, as the small frozen dataclasses below.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ghubai_tray.core.activity import Activity
from ghubai_tray.core.guard import DayUse
from ghubai_tray.core.hardware import Readings
from ghubai_tray.core.server_kinds import ServerKind
from ghubai_tray.core.settings import Settings


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
    TOKEN_NEEDED = "token needed"
    # The hub needs a token, one may be stored, but the keyring would not give it (locked,
    # its prompt dismissed, no answer): not the same as "none was sent" or "none is set".
    TOKEN_UNREADABLE = "token unreadable"
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
class UpdateView:
    """A newer release the feed told of: its version and its page (the notes)."""

    version: str
    page: str
    # the app can install it itself (a Windows build with a release key: README,
    # "Updates"); elsewhere the menu opens the page
    installable: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Everything a person (or the tray) may want to know, at one instant.

    ``settings`` are the effective settings, pause included: the one place a
    pause, a shared model or a URL is stored while the worker runs (the file
    only keeps them for the next start). What follows from them is a property.
    """

    sequence: int = 0
    settings: Settings = field(default_factory=Settings)
    connection: State = State.CONNECTING
    reason: str = "starting"
    next_attempt: datetime | None = None
    registered_models: int | None = None  # as last acknowledged by the hub
    ollama: OllamaStatus = OllamaStatus.UNKNOWN
    ollama_reason: str = ""
    model_server: str | None = None  # what answers at ollama_url, e.g. "Ollama 0.12.3"
    server_kind: ServerKind = ServerKind.OLLAMA  # which kind, as the requests are shaped
    models: tuple[ModelView, ...] = ()  # Ollama's models, each shared or not by the settings
    active: int = 0
    queued: int = 0
    totals: Counters = field(default_factory=Counters)
    per_model: tuple[tuple[str, Counters], ...] = ()
    activity: Activity = field(default_factory=Activity)
    notice: str | None = None  # a problem the owner should read, in words (a failed save)
    stopping: bool = False  # quitting: finishing what runs, taking nothing new
    # The tray is not known to show its icon yet: nothing is shared until it does, or the
    # owner chose to share anyway (never share where the owner cannot see or stop it).
    waiting_for_tray: bool = False
    # A rule of the owner's holds sharing (its name, e.g. "schedule"), and until when.
    held_by: str | None = None
    held_until: datetime | None = None
    held_detail: str | None = None  # a guard's or budget's reading, in words
    gpus: Readings | None = None  # the GPUs' readings, while a guard or budget is on
    today_use: DayUse = field(default_factory=DayUse)  # the budgets' figures
    rules_overridden_until: datetime | None = None  # "Share anyway for 1 hour"
    update: UpdateView | None = None  # a newer version is out
    updating: str | None = None  # installing it: what happens now, in words

    @property
    def state(self) -> State:
        live = self.connection in (State.CONNECTED, State.REGISTERED)
        return State.PAUSED if self.holding and live else self.connection

    @property
    def shared_models(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models if m.shared)

    @property
    def holding(self) -> bool:
        """Sharing is held on purpose: paused by the owner, or by one of their rules."""
        return self.paused or self.held_by is not None

    @property
    def offered_models(self) -> tuple[str, ...]:
        """What to register with the hub now: the shared models, or nothing while paused,
        stopping, unseen (no tray shows the icon yet) or unable to reach Ollama."""
        if (self.holding or self.stopping or self.waiting_for_tray
                or self.ollama is not OllamaStatus.REACHABLE):
            return ()
        return self.shared_models

    @property
    def paused(self) -> bool:
        return self.settings.paused

    @property
    def paused_until(self) -> datetime | None:
        return self.settings.paused_until

    @property
    def hub_url(self) -> str:
        return self.settings.hub_url

    @property
    def ollama_url(self) -> str:
        return self.settings.ollama_url

    @property
    def insecure_tls(self) -> bool:
        return self.settings.allow_invalid_certs

    @property
    def free_gpu_when_paused(self) -> bool:
        return self.settings.free_gpu_when_paused

    @property
    def share_new_models(self) -> bool:
        return self.settings.share_new_models


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
class ShareAnyway:
    """Share despite the rules until ``until`` (a manual pause still wins); None lets
    the rules hold again at once."""

    until: datetime | None


@dataclass(frozen=True)
class TrayShown:
    """The tray icon is visible (or the owner chose to share without it): share."""


@dataclass(frozen=True)
class RetryNow:
    """Ask Ollama and the hub again now, instead of at the next scheduled attempt."""


@dataclass(frozen=True)
class Stop:
    grace: float = 10.0


@dataclass(frozen=True)
class InstallUpdate:
    """Download, check and install the newer version the feed told of (Windows)."""


Command = (Pause | Resume | SetModelShared | SetShareNewModels | SetFreeGpuWhenPaused
           | ApplySettings | TokenChanged | RetryNow | TrayShown | ShareAnyway | Stop
           | InstallUpdate)


class WorkerHandle(Protocol):
    """The worker as the desktop sees it: snapshots out, commands in, nothing else.

    The tray holds one of these, never the Worker class, so that drawing the
    desktop cannot reach the network code behind it.
    """

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def running(self) -> threading.Event:
        """Set once the worker's loop runs and takes commands from any thread."""
        ...

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None: ...

    def submit(self, command: Command) -> None: ...

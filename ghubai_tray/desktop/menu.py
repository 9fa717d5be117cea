"""The tray menu as data: ``render_menu(snapshot, desktop)`` is pure and re-run whole.

Nothing here touches pystray: the menu is a tuple of :class:`Item` values a
thin adapter (:mod:`ghubai_tray.desktop.tray`) turns into pystray objects, so every
state can be tested without a display. Clicks name an :data:`Action`: a
worker command, a desktop action, or a pause whose end is computed at click
time (:func:`resolve`), never at render time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from ghubai_tray.core import texts
from ghubai_tray.core.server_kinds import NAMES, not_available
from ghubai_tray.core.state import (
    Command,
    InstallUpdate,
    OllamaStatus,
    Pause,
    PauseMode,
    Resume,
    RetryNow,
    SetFreeGpuWhenPaused,
    SetModelShared,
    SetShareNewModels,
    ShareAnyway,
    Snapshot,
    State,
)
from ghubai_tray.desktop.icon import hub_host, status_line

MORNING_HOUR = 8


class Ui(enum.Enum):
    """What the tray itself does (the worker is not involved)."""

    SET_UP = "set up"
    SETTINGS = "settings"
    ACTIVITY = "activity"
    TOGGLE_AUTOSTART = "toggle autostart"
    OPEN_LOGS = "open logs"
    COPY_DIAGNOSTICS = "copy diagnostics"
    ABOUT = "about"
    UPDATE = "update"  # the newer release's page
    QUIT = "quit"


@dataclass(frozen=True)
class PauseFor:
    minutes: int


@dataclass(frozen=True)
class PauseUntilMorning:
    pass


@dataclass(frozen=True)
class ShareAnywayFor:
    minutes: int


Action = Command | Ui | PauseFor | PauseUntilMorning | ShareAnywayFor


@dataclass(frozen=True)
class Item:
    text: str
    action: Action | None = None
    enabled: bool = True
    checked: bool | None = None  # None: not a check item
    submenu: tuple[Item, ...] = ()
    default: bool = False  # what a left click does, where the platform has one

    @property
    def is_separator(self) -> bool:
        return self.text == "-"


SEPARATOR = Item("-", enabled=False)


@dataclass(frozen=True)
class Desktop:
    """Facts about the desktop the menu shows that the worker does not own."""

    version: str
    autostart: bool | None  # None: start at login is not available here


def _info(text: str) -> Item:
    return Item(text, enabled=False)


def _ollama_line(snap: Snapshot) -> str:
    if snap.ollama is OllamaStatus.REACHABLE:
        state = texts.OLLAMA_RUNNING.format(models=texts.counted(len(snap.models), "model"))
    elif snap.ollama is OllamaStatus.UNREACHABLE:
        state = texts.OLLAMA_AWAY.format(url=snap.ollama_url)
    else:
        state = texts.OLLAMA_WORDS[snap.ollama]
    return texts.OLLAMA_LINE.format(server=NAMES[snap.server_kind], state=state)


def _server_lines(snap: Snapshot) -> tuple[Item, ...]:
    """The model server's line, and what it cannot do where it is not Ollama."""
    line = _info(_ollama_line(snap))
    missing = not_available(snap.server_kind)
    if missing is None:
        return (line,)
    return line, _info(missing[0].upper() + missing[1:])


def _models(snap: Snapshot) -> Item:
    items = [Item(m.name + (texts.CLOUD if m.remote else ""), SetModelShared(m.name, not m.shared),
                  checked=m.shared) for m in snap.models]
    if not items:
        items = [_info(texts.NO_MODELS)]
    share_new = SetShareNewModels(not snap.share_new_models)
    return Item(texts.MODELS, enabled=_set_up(snap), submenu=(*items, SEPARATOR,
                                       Item(texts.SHARE_NEW, share_new,
                                            checked=snap.share_new_models)))


def _activity(snap: Snapshot) -> Item:
    today, life = snap.activity.today, snap.activity.lifetime
    return Item(texts.ACTIVITY, submenu=(
        _info(texts.SERVING_NOW.format(n=snap.active)),
        _info(texts.TODAY.format(requests=today.requests, tokens=today.tokens)),
        _info(texts.FAILED_TODAY.format(n=today.failed)),
        _info(texts.LIMITED_TODAY.format(n=today.limited)),
        _info(texts.SINCE_INSTALL.format(requests=life.requests, tokens=life.tokens)),
        *(_info(line) for line in budget_lines(snap)),
        SEPARATOR, Item(texts.OPEN_ACTIVITY, Ui.ACTIVITY)))


def budget_lines(snap: Snapshot) -> list[str]:
    """How much of today's budgets the hub's requests have used, for the budgets set."""
    settings, use = snap.settings, snap.today_use.on(snap.activity.day)
    lines = []
    if settings.daily_energy_kwh > 0:
        lines.append(texts.ENERGY_BUDGET_USED.format(
            used=f"{use.kwh:.2f}", budget=f"{settings.daily_energy_kwh:.2f}")
            if use.kwh is not None else texts.ENERGY_BUDGET_UNMEASURED.format(
                budget=f"{settings.daily_energy_kwh:.2f}"))
    if settings.daily_gpu_hours > 0:
        lines.append(texts.GPU_TIME_BUDGET_USED.format(
            used=f"{use.gpu_hours:.1f}", budget=f"{settings.daily_gpu_hours:g}"))
    return lines


def _pause(snap: Snapshot, now: datetime) -> Item:
    active: tuple[Item, ...] = ()
    if snap.paused:
        until = snap.paused_until
        active = (_info(texts.PAUSE_ACTIVE.format(until=texts.moment(until, now)) if until
                        else texts.PAUSE_ACTIVE_OPEN), SEPARATOR)
    return Item(texts.PAUSE, enabled=_set_up(snap), submenu=(
        *active,
        Item(texts.PAUSE_NOW, Pause(PauseMode.NOW)),
        Item(texts.PAUSE_AFTER, Pause(PauseMode.AFTER_CURRENT)),
        Item(texts.PAUSE_30, PauseFor(30)),
        Item(texts.PAUSE_60, PauseFor(60)),
        Item(texts.PAUSE_MORNING, PauseUntilMorning()),
        SEPARATOR,
        Item(texts.FREE_GPU, SetFreeGpuWhenPaused(not snap.free_gpu_when_paused),
             checked=snap.free_gpu_when_paused)))


def _set_up(snap: Snapshot) -> bool:
    """Pausing or choosing models means nothing before there is a hub to share with."""
    return snap.state is not State.NOT_CONFIGURED


def headline(snap: Snapshot, now: datetime | None = None) -> Item:
    """The first line: the state in words or, when the owner can fix something, the
    problem and its fix, one click away (the click a person would look for)."""
    if snap.stopping or snap.state is State.STOPPED:
        return _info(status_line(snap, now))
    if snap.state is State.NOT_CONFIGURED:
        return Item(texts.FIX_SET_UP, Ui.SET_UP, default=True)
    if snap.state is State.AUTH_REJECTED:
        return Item(texts.FIX_TOKEN, Ui.SETTINGS, default=True)
    if snap.state is State.TOKEN_NEEDED:
        return Item(texts.FIX_TOKEN_NEEDED, Ui.SETTINGS, default=True)
    if snap.state is State.TOKEN_UNREADABLE:  # the token is stored: reading it again is the fix
        return Item(texts.FIX_TOKEN_UNREADABLE, RetryNow(), default=True)
    if not snap.paused and snap.ollama is OllamaStatus.UNREACHABLE:
        return Item(texts.FIX_OLLAMA, RetryNow())
    if not snap.paused and snap.ollama is OllamaStatus.BAD_ANSWER:
        return Item(texts.FIX_OLLAMA_ODD, Ui.SETTINGS)
    if snap.state is State.RECONNECTING:
        return Item(texts.FIX_HUB.format(host=hub_host(snap)), RetryNow())
    return _info(status_line(snap, now))


def render_menu(snap: Snapshot, desktop: Desktop, now: datetime | None = None
                ) -> tuple[Item, ...]:
    """The whole menu for this snapshot (its times said as seen from ``now``)."""
    now = now or datetime.now().astimezone()
    items: list[Item] = []
    if snap.notice:
        items.append(_info(texts.NOTICE.format(text=snap.notice[:1].upper() + snap.notice[1:])))
    first = headline(snap, now)
    items += [first,
              _info(texts.HUB_LINE.format(host=hub_host(snap),
                                            state=texts.STATE_WORDS[snap.state])),
              *_server_lines(snap), SEPARATOR]
    if snap.paused:
        items.append(Item(texts.RESUME, Resume()))
    elif snap.held_by:
        items.append(Item(texts.SHARE_ANYWAY, ShareAnywayFor(60)))
    elif snap.rules_overridden_until is not None:  # seen, with its end, and undone in one click
        until = texts.moment(snap.rules_overridden_until, now)
        items += [_info(texts.SHARING_ANYWAY.format(until=until)),
                  Item(texts.STOP_SHARING_ANYWAY, ShareAnyway(None))]
    if snap.updating is not None:
        items.append(_info(snap.updating))
    elif snap.update is not None and snap.update.installable:
        items.append(Item(texts.INSTALL_UPDATE.format(version=snap.update.version),
                          InstallUpdate()))
    elif snap.update is not None:
        items.append(Item(texts.UPDATE_AVAILABLE.format(version=snap.update.version),
                          Ui.UPDATE))
    items += [_pause(snap, now), _models(snap), _activity(snap), SEPARATOR,
              Item(texts.SETTINGS, Ui.SETTINGS, default=not first.default),
              Item(texts.START_AT_LOGIN, Ui.TOGGLE_AUTOSTART, enabled=desktop.autostart is not None,
                   checked=bool(desktop.autostart)),
              Item(texts.OPEN_LOGS, Ui.OPEN_LOGS),
              Item(texts.COPY_DIAGNOSTICS, Ui.COPY_DIAGNOSTICS),
              Item(texts.ABOUT.format(version=desktop.version), Ui.ABOUT),
              SEPARATOR,
              Item(texts.QUIT, Ui.QUIT)]
    return tuple(items)


def morning(now: datetime) -> datetime:
    """The coming 8:00 (this morning's before 8:00, tomorrow's after), 8:00 on that day's
    clock: across a change to or from summer time it is still 8:00, not 7:00 or 9:00.

    ``now`` in the system's local time (the tray's clock) takes that day's offset from
    the system; a named zone (zoneinfo) its own; any other offset is kept as it is."""
    zone = now.tzinfo
    system = not getattr(zone, "key", None) and now.utcoffset() == now.astimezone().utcoffset()
    local = now.astimezone() if system else now.astimezone(zone)
    day = local.date() if local.hour < MORNING_HOUR else local.date() + timedelta(days=1)
    naive = datetime(day.year, day.month, day.day, MORNING_HOUR)
    return naive.astimezone() if system else naive.replace(tzinfo=zone)


def resolve(action: Action, now: datetime) -> Command | Ui:
    """Turn a clicked action into what to do, computing pause ends from ``now``."""
    if isinstance(action, PauseFor):
        return Pause(PauseMode.AFTER_CURRENT, now + timedelta(minutes=action.minutes))
    if isinstance(action, PauseUntilMorning):
        return Pause(PauseMode.AFTER_CURRENT, morning(now))
    if isinstance(action, ShareAnywayFor):
        return ShareAnyway(now + timedelta(minutes=action.minutes))
    return action

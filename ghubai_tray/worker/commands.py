"""The command handler: what the tray, a signal or the pause clock asks, applied in order.

Commands arrive through ``Worker.submit()`` from any thread and are applied here,
one at a time, on the worker's loop. Every change of a setting takes the one
path :meth:`CommandHandler._change`: the snapshot first (so what the tray shows,
what the diagnostics say and what the worker uses are the same value), then the
config file, so the change outlives a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime
from typing import Any

from ghubai_tray.core import texts
from ghubai_tray.core.errors import GhubAiError
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import (
    ApplySettings,
    Command,
    InstallUpdate,
    Pause,
    PauseMode,
    Resume,
    RetryNow,
    SetFreeGpuWhenPaused,
    SetModelShared,
    SetShareNewModels,
    ShareAnyway,
    Stop,
    TokenChanged,
    TrayShown,
)
from ghubai_tray.worker.discovery import Discovery
from ghubai_tray.worker.gpu import free_gpu_once_idle
from ghubai_tray.worker.hub_supervisor import HubSupervisor
from ghubai_tray.worker.ports import OllamaLink
from ghubai_tray.worker.requests import PAUSED_BY_OWNER, RequestRunner
from ghubai_tray.worker.runtime import SideJobs
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

PAUSE_CHECK = 15.0  # a timed pause looks at the wall clock at least this often
MENU_SOURCE = "the menu (saved to the config file)"  # where a menu change came from

Persist = Callable[[dict[str, Any]], None]


class CommandHandler:
    def __init__(self, store: StateStore, runner: RequestRunner, hub: HubSupervisor,
                 discovery: Discovery, ollama: OllamaLink, jobs: SideJobs, *,
                 stop: Callable[[Stop], None], persist: Persist | None,
                 clock: Callable[[], datetime], pause_check: float = PAUSE_CHECK,
                 install_update: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        self._store = store
        self._runner = runner
        self._hub = hub
        self._discovery = discovery
        self._ollama = ollama
        self._jobs = jobs
        self._stop = stop
        self._persist = persist
        self._clock = clock
        self._pause_check = pause_check
        self._install_update = install_update
        # Since Python 3.10 asyncio queues bind to a loop on first use, so the queue
        # can exist before run(): a command submitted early simply waits in it.
        self.queue: asyncio.Queue[Command] = asyncio.Queue()

    async def run(self) -> None:
        while True:
            command = await self._next()
            try:
                await self._apply(command)
            except GhubAiError as exc:
                log.error("%s", exc)
                self._store.notice(str(exc))
            except Exception:  # one failed command must not stop the next ones
                log.exception("applying %s failed", type(command).__name__)
                self._store.notice(f"a change could not be applied ({type(command).__name__}); "
                                   "the details are in the log")

    async def _next(self) -> Command:
        """The next command, or Resume once a timed pause has reached its end.

        The end is a wall-clock time, checked at least every :data:`PAUSE_CHECK`
        seconds, so a clock that is changed, or a computer that sleeps, ends the
        pause at the time the menu shows, not after so many seconds of waiting.
        """
        while True:
            snap = self._store.snapshot
            until = snap.paused_until if snap.paused else None
            if until is not None and self._clock() >= until:
                log.info("the pause has ended")
                return Resume()
            wait = None if until is None else min(
                self._pause_check, max(0.0, (until - self._clock()).total_seconds()))
            try:
                async with asyncio.timeout(wait):
                    return await self.queue.get()
            except TimeoutError:
                continue

    async def _apply(self, command: Command) -> None:  # noqa: C901 - one branch per command
        settings = self._store.snapshot.settings
        if isinstance(command, Stop):
            self._stop(command)
        elif isinstance(command, Pause):
            until = f" until {texts.moment(command.until, self._clock())}" if command.until \
                else ""
            await self._change(replace(settings, paused=True, paused_until=command.until),
                               "paused", "paused_until", said=f"paused{until}")
            if command.mode is PauseMode.NOW:
                await self._runner.cancel_all(PAUSED_BY_OWNER)
            if self._store.snapshot.free_gpu_when_paused:
                self._jobs.spawn(free_gpu_once_idle(self._store, self._ollama))
        elif isinstance(command, Resume):
            await self._change(replace(settings, paused=False, paused_until=None),
                               "paused", "paused_until", said="resumed")
        elif isinstance(command, SetModelShared):
            name = command.name.casefold()
            shared = [m for m in settings.shared_models if m.casefold() != name]
            unshared = [m for m in settings.unshared_models if m.casefold() != name]
            (shared if command.shared else unshared).append(command.name)
            await self._change(replace(settings, shared_models=tuple(shared),
                                       unshared_models=tuple(unshared)),
                               "shared_models", "unshared_models")
        elif isinstance(command, SetShareNewModels):
            await self._change(replace(settings, share_new_models=command.enabled),
                               "share_new_models")
        elif isinstance(command, SetFreeGpuWhenPaused):
            await self._change(replace(settings, free_gpu_when_paused=command.enabled),
                               "free_gpu_when_paused")
        elif isinstance(command, ApplySettings):
            self._reconfigure(command.settings)
        elif isinstance(command, TokenChanged):
            self._hub.token_changed()
        elif isinstance(command, ShareAnyway):
            if command.until is None:
                log.info("the rules hold again, as asked")
            else:
                log.info("sharing despite the rules until %s, as asked",
                         texts.moment(command.until, self._clock()))
            self._store.override_rules(command.until)
        elif isinstance(command, TrayShown):
            if self._store.snapshot.waiting_for_tray:
                log.info("the tray icon is visible: sharing may start")
            self._store.tray_shown()
        elif isinstance(command, InstallUpdate):
            if self._install_update is not None:  # downloads for minutes: not in this loop
                self._jobs.spawn(self._install_update())
        elif isinstance(command, RetryNow):
            log.info("retrying now, as asked")
            self._discovery.now()
            self._hub.retry_now()

    async def _change(self, new: Settings, *keys: str, said: str = "") -> None:
        """The one path of a change from the menu: into the snapshot, marked as the menu's
        (the diagnostics once said ``paused = False (default)`` while paused), then saved."""
        sources = {**new.sources, **dict.fromkeys(keys, MENU_SOURCE)}
        self._store.settings(replace(new, sources=sources))
        if said:
            log.info("%s", said)
        await self._save({key: getattr(new, key) for key in keys})

    def _reconfigure(self, new: Settings) -> None:
        """Settings from the Settings window or a reload. The pause is not theirs to change:
        it belongs to Pause and Resume, and a reload must not undo a Resume."""
        old = self._store.snapshot.settings
        sources = {**new.sources, "paused": old.source("paused"),
                   "paused_until": old.source("paused_until")}
        new = replace(new, paused=old.paused, paused_until=old.paused_until, sources=sources)
        self._runner.resize(old, new)
        if (retired := self._ollama.retarget(new)) is not None:
            self._jobs.spawn(retired.aclose())
            self._discovery.now()
        self._store.settings(new)
        if (new.hub_url, new.allow_invalid_certs) != (old.hub_url, old.allow_invalid_certs):
            self._hub.switch_over()

    async def _save(self, changes: dict[str, Any]) -> None:
        """Write a change to config.toml; a failure is said, and the old file stays whole."""
        if self._persist is None:
            return
        try:
            await asyncio.to_thread(self._persist, changes)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            problem = (f"your settings could not be saved ({reason}); the change holds "
                       "until GhubAi Tray quits")
            log.error("%s", problem)
            self._store.notice(problem)

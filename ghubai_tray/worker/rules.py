"""The owner's rules: when sharing is held although nobody pressed Pause.

Today one rule, the schedule (``schedule`` / ``GHUBAI_SCHEDULE``): outside its
windows the worker offers the hub nothing, refuses new requests in words,
lets those in progress finish, and frees the GPU as a manual pause does. The
decision is the pure :func:`ghubai_tray.core.schedule.allows`; this loop only
looks at the wall clock (injected) at least every :data:`RULES_CHECK` seconds
and exactly at the schedule's next change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from ghubai_tray.core import schedule
from ghubai_tray.core.state import Snapshot
from ghubai_tray.worker.gpu import free_gpu_once_idle
from ghubai_tray.worker.ports import OllamaLink
from ghubai_tray.worker.runtime import SideJobs, wait_event
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

RULES_CHECK = 15.0
SCHEDULE = "schedule"


class Rules:
    def __init__(self, store: StateStore, ollama: OllamaLink, jobs: SideJobs,
                 clock: Callable[[], datetime], check: float = RULES_CHECK) -> None:
        self._store = store
        self._ollama = ollama
        self._jobs = jobs
        self._clock = clock
        self._check = check
        self._wake = asyncio.Event()
        self._seen = (store.snapshot.settings.schedule, store.snapshot.rules_overridden_until)
        store.subscribe(self._on_snapshot)

    def _on_snapshot(self, snap: Snapshot) -> None:
        """A new schedule (the Settings window, a reload), or "Share anyway", is looked at
        at once."""
        if (snap.settings.schedule, snap.rules_overridden_until) != self._seen:
            self._seen = (snap.settings.schedule, snap.rules_overridden_until)
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            until = self._apply(self._clock())
            wait = self._check if until is None else min(
                self._check, max(0.0, (until - self._clock()).total_seconds()))
            await wait_event(self._wake, wait)

    def _apply(self, now: datetime) -> datetime | None:
        """Hold or release sharing for the schedule at ``now``; when it changes next."""
        snap = self._store.snapshot
        windows = snap.settings.schedule
        change = schedule.next_change(windows, now)
        override = snap.rules_overridden_until
        if override is not None and override <= now:
            log.info("'Share anyway' has ended: the rules apply again")
            self._store.override_rules(None)
            override = None
        if override is not None:
            self._store.held(None, None)
            return override if change is None else min(change, override)
        if schedule.allows(windows, now):
            if snap.held_by == SCHEDULE:
                log.info("the schedule allows sharing again (%s)", schedule.shown(windows))
            self._store.held(None, None)
            return change
        if snap.held_by != SCHEDULE:
            until = f" until {change:%a %H:%M}" if change else ""
            log.info("the schedule holds sharing%s (%s)", until, schedule.shown(windows))
            if snap.free_gpu_when_paused:
                self._jobs.spawn(free_gpu_once_idle(self._store, self._ollama))
        self._store.held(SCHEDULE, change)
        return change

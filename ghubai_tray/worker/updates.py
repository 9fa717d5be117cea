"""About once a day, whether a newer GhubAi Tray is out (README, "Updates").

The decision of when to ask and what counts as newer is pure (core/updates.py); this
loop waits, asks the feed through the port it is given, and publishes what it learnt in
the snapshot (``update``), which the tray turns into a menu item and one notification
per version. A feed that cannot answer is a line in the log and another try hours
later: it is never the owner's problem, so it never changes the icon.

Where the app can install an update itself (a Windows build carrying the release key;
the :class:`Installer` port is wired in only there), ``install()`` downloads and checks
it while sharing goes on, starts the installer (which waits for this process to end),
and stops the worker with a long grace: the requests in progress finish, nothing new is
taken, the tray quits, and the installer puts the new version in place and starts it.
Anything that fails before the installer starts leaves this version running as it was,
says why, and deletes the download.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ghubai_tray import __version__
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Stop, UpdateView
from ghubai_tray.core.updates import FIRST_CHECK_AFTER, Release, newest, next_check
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

Feed = Callable[[Settings], Awaitable[Any]]
SETTINGS_LOOK = 30.0  # seconds: a switch turned on or off in Settings is seen this soon
# How long the requests in progress may run on once the installer is started; the
# installer waits longer than this for the app to end (installer/windows/ghubai-tray.nsi).
UPDATE_GRACE = 600.0


class Installer(Protocol):
    """Getting an update onto this machine (adapters/update_install.py on Windows)."""

    async def fetch(self, release: Release) -> Path:
        """The release's installer, downloaded and checked; an exception saying why not."""

    def launch(self, path: Path, release: Release) -> None:
        """Start the installer, which waits for this process to end; OSError if not."""

    def discard(self, path: Path) -> None:
        """Delete a download that will not be installed."""

    def outcome(self) -> tuple[bool, str] | None:
        """Whether the last update started was installed, and in words; once, after it
        (None: none was started since)."""


class UpdateWatch:
    def __init__(self, store: StateStore, feed: Feed | None, clock: Callable[[], datetime],
                 rng: random.Random, first_after: timedelta = FIRST_CHECK_AFTER,
                 look: float = SETTINGS_LOOK, *, installer: Installer | None = None,
                 stop: Callable[[Stop], None] | None = None) -> None:
        self._store = store
        self._feed = feed
        self._installer = installer if stop is not None else None
        self._stop = stop
        self._release: Release | None = None  # the newest release the feed told of
        self._installing = False
        self._clock = clock
        self._rng = rng
        self._first_after = first_after
        self._look = look

    async def run(self) -> None:
        if self._installer is not None:
            outcome = await asyncio.to_thread(self._installer.outcome)
            if outcome is not None:
                installed, said = outcome
                log.log(logging.INFO if installed else logging.ERROR, "%s", said)
                if not installed:
                    self._store.notice(said)
        if self._feed is None:
            return  # no feed wired in (tests of other things)
        first = self._clock() + self._first_after  # not while the owner watches it start
        last: datetime | None = None
        failed = False
        due: datetime | None = None  # drawn once per wait, jitter included
        while True:
            settings = self._store.snapshot.settings
            if not settings.check_for_updates:
                self._store.update(None)
                due = None
                await asyncio.sleep(self._look)
                continue
            now = self._clock()
            if due is None:
                due = next_check(now, first, last, failed, self._rng)
            if due > now:
                await asyncio.sleep(min(self._look, (due - now).total_seconds()))
                continue
            last, failed, due = self._clock(), not await self._ask(settings), None

    async def _ask(self, settings: Settings) -> bool:
        assert self._feed is not None
        try:
            feed = await self._feed(settings)
        except Exception as exc:  # any failure: said once per try, retried hours later
            log.info("could not learn whether a newer version is out: %s", exc)
            return False
        found = newest(feed, __version__, settings.update_prereleases)
        self._release = found
        view = UpdateView(str(found.version), found.page, self._installer is not None) \
            if found else None
        if view is not None and view != self._store.snapshot.update:
            log.info("GhubAi Tray %s is out (this is %s): %s", view.version, __version__,
                     view.page)
        self._store.update(view)
        return True

    async def install(self) -> None:
        """Install the newest release (the menu's *Install update*, ``update install``)."""
        if self._installing:
            return
        if self._installer is None or self._stop is None:
            self._store.notice("this installation cannot update itself: download the new "
                               "version from its release page")
            return
        self._installing = True
        try:
            await self._install(self._installer, self._stop)
        finally:
            self._installing = False

    async def _install(self, installer: Installer, stop: Callable[[Stop], None]) -> None:
        if self._feed is not None:  # the newest now (a failed ask keeps what was known)
            await self._ask(self._store.snapshot.settings)
        release = self._release
        if release is None:
            self._store.notice(f"no newer version than {__version__} is known; "
                               "nothing was installed")
            return
        self._store.updating(f"Downloading {release.version}…")
        log.info("downloading GhubAi Tray %s, as asked", release.version)
        try:
            path = await installer.fetch(release)
        except Exception as exc:  # any failure: this version stays, the reason is said
            self._failed(release, str(exc) or type(exc).__name__)
            return
        try:
            await asyncio.to_thread(installer.launch, path, release)
        except OSError as exc:
            installer.discard(path)
            self._failed(release, f"its installer could not be started ({exc})")
            return
        log.info("installing GhubAi Tray %s: finishing the requests in progress, then "
                 "quitting for the installer", release.version)
        self._store.updating(f"Updating to {release.version}…")
        stop(Stop(grace=UPDATE_GRACE))

    def _failed(self, release: Release, why: str) -> None:
        problem = f"the update to {release.version} was not installed: {why}"
        log.error("%s", problem)
        self._store.updating(None)
        self._store.notice(problem)

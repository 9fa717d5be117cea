"""About once a day, whether a newer GhubAi Tray is out (README, "Updates").

The decision of when to ask and what counts as newer is pure (core/updates.py); this
loop waits, asks the feed through the port it is given, and publishes what it learnt in
the snapshot (``update``), which the tray turns into a menu item and one notification
per version. A feed that cannot answer is a line in the log and another try hours
later: it is never the owner's problem, so it never changes the icon.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from ghubai_tray import __version__
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import UpdateView
from ghubai_tray.core.updates import FIRST_CHECK_AFTER, newest, next_check
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

Feed = Callable[[Settings], Awaitable[Any]]
SETTINGS_LOOK = 30.0  # seconds: a switch turned on or off in Settings is seen this soon


class UpdateWatch:
    def __init__(self, store: StateStore, feed: Feed | None, clock: Callable[[], datetime],
                 rng: random.Random, first_after: timedelta = FIRST_CHECK_AFTER,
                 look: float = SETTINGS_LOOK) -> None:
        self._store = store
        self._feed = feed
        self._clock = clock
        self._rng = rng
        self._first_after = first_after
        self._look = look

    async def run(self) -> None:
        if self._feed is None:
            return  # no feed wired in (tests of other things)
        # when the first ask may come: first_after from now, FIRST_CHECK_AFTER by default
        started = self._clock() - FIRST_CHECK_AFTER + self._first_after
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
                due = next_check(now, started, last, failed, self._rng)
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
        view = UpdateView(str(found.version), found.page) if found else None
        if view is not None and view != self._store.snapshot.update:
            log.info("GhubAi Tray %s is out (this is %s): %s", view.version, __version__,
                     view.page)
        self._store.update(view)
        return True

"""Keeps the hours: each change of standing (shared, paused, held by a rule, not
sharing) closes a stretch for the ledger, and the stretch under way is written again
every minute, so that a crash or a power cut loses at most a minute of the record.

It reads the snapshots the store publishes (state flows one way: it never changes
them) and hands rows to the ledger's writer, which keys them by their start: the
stretch under way is one row rewritten, not a row per minute.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ghubai_tray.core.hours import Period, periods, standing_of
from ghubai_tray.core.state import Snapshot


class HoursKept:
    """``seen(snapshot)`` for every snapshot; ``flush()`` every minute and at the end."""

    def __init__(self, sink: Callable[[Period], None], clock: Callable[[], datetime]) -> None:
        self._sink = sink
        self._clock = clock
        self._standing: tuple[str, str] | None = None
        self._since: datetime | None = None

    def seen(self, snap: Snapshot) -> None:
        standing = standing_of(snap)
        if standing == self._standing:
            return
        now = self._clock()
        self.flush(now)
        self._standing, self._since = standing, now

    def flush(self, now: datetime | None = None) -> None:
        """Write the stretch under way as it stands (its rows replace the last ones)."""
        if self._standing is None or self._since is None:
            return
        for period in periods(self._since, now or self._clock(), *self._standing):
            self._sink(period)

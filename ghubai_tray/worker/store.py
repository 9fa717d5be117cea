"""The state store: the only writer of snapshots.

Every collaborator of the worker reports what happened through one of the
typed methods below; each builds the next frozen :class:`Snapshot`, hands it
to the listeners (the tray, the headless logger, the hub supervisor) and wakes
whoever waits for a state. Nothing else assigns a snapshot, so "where is X
stored?" has one answer: here, in ``snapshot`` (the settings included, pause
and all).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from ghubai_tray.core import activity
from ghubai_tray.core.activity import Activity
from ghubai_tray.core.guard import DayUse
from ghubai_tray.core.hardware import Readings
from ghubai_tray.core.ledger import Entry, tally_of
from ghubai_tray.core.server_kinds import ServerIdentity, ServerKind
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.sharing import is_shared
from ghubai_tray.core.state import (
    Counters,
    ModelView,
    OllamaStatus,
    Snapshot,
    State,
    UpdateView,
)
from ghubai_tray.core.tags import LocalModel
from ghubai_tray.worker.runtime import SideJobs

log = logging.getLogger("ghubai_tray.worker")


def model_views(models: tuple[LocalModel, ...], settings: Settings) -> tuple[ModelView, ...]:
    """Ollama's models as the menu shows them: each shared or not, by the owner's settings."""
    return tuple(ModelView(m.name, m.remote, is_shared(m, settings.share_new_models,
                                                       settings.shared_models,
                                                       settings.unshared_models))
                 for m in models)


class StateStore:
    """Holds the latest snapshot; build with the starting settings."""

    def __init__(self, settings: Settings, jobs: SideJobs,
                 today: Callable[[], date] = date.today, *,
                 wait_for_tray: bool = False) -> None:
        self._snapshot = Snapshot(settings=settings, waiting_for_tray=wait_for_tray)
        self._jobs = jobs
        self._today = today
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._changed: asyncio.Condition | None = None
        self._pulse_due = False  # a wake-up of wait_for() is scheduled (one at a time)
        self._local: tuple[LocalModel, ...] = ()  # Ollama's last model list
        # One staging rule: what is counted as requests end (the counters, today's
        # ledger) goes out with the next snapshot, whatever else that one changes.
        self._totals = Counters()
        self._per_model: dict[str, Counters] = {}
        # The tallies staged with them; None: nothing is staged (count() always stages one).
        self._activity: Activity | None = None
        self._sinks: list[Callable[[Entry], None]] = []  # where each request's row goes
        self._use = DayUse()  # today's, staged like the tallies

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener`` with every new snapshot, on the worker's thread."""
        self._listeners.append(listener)

    async def wait_for(self, predicate: Callable[[Snapshot], Any], timeout: float,
                       what: str = "a state") -> Snapshot:
        """The first snapshot satisfying ``predicate``; TimeoutError naming ``what``."""
        cond = self._condition()
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    await cond.wait_for(lambda: bool(predicate(self._snapshot)))
        except TimeoutError:
            raise TimeoutError(f"waited {timeout:g} s for {what}; last state: "
                               f"{self._snapshot.state.value} ({self._snapshot.reason})") from None
        return self._snapshot

    # -- the typed updates ------------------------------------------------------

    def connection(self, state: State, reason: str, *, next_attempt: datetime | None = None,
                   registered_models: int | None = None) -> None:
        """Where the hub connection stands (and, once the hub acknowledged, how many models)."""
        self._commit(replace(self._snapshot, connection=state, reason=reason,
                             next_attempt=next_attempt, registered_models=registered_models))

    def ollama(self, status: OllamaStatus, reason: str,
               models: tuple[LocalModel, ...] | None,
               server: ServerIdentity | None = None, kind: ServerKind | None = None) -> None:
        """What the model server answered; ``models`` None keeps the last list (it is
        away); ``server`` says what answers there, when known; ``kind`` is the kind the
        requests are now shaped for, when it changes."""
        if models is not None:
            self._local = models
        views = model_views(self._local, self._snapshot.settings)
        snap = self._snapshot
        shown = str(server) if server else None
        kind = kind or snap.server_kind
        if (status, reason, views, shown, kind) != (snap.ollama, snap.ollama_reason,
                                                    snap.models, snap.model_server,
                                                    snap.server_kind):
            self._commit(replace(snap, ollama=status, ollama_reason=reason, models=views,
                                 model_server=shown, server_kind=kind))

    def settings(self, settings: Settings) -> None:
        """The effective settings changed (the menu, the Settings window, a pause)."""
        self._commit(replace(self._snapshot, settings=settings,
                             models=model_views(self._local, settings)))

    def held(self, by: str | None, until: datetime | None, detail: str | None = None) -> None:
        """A rule holds sharing (``by``, until ``until``; a guard's reading in words), or
        none does."""
        snap = self._snapshot
        if (by, until, detail) != (snap.held_by, snap.held_until, snap.held_detail):
            self._commit(replace(snap, held_by=by, held_until=until, held_detail=detail))

    def gpus(self, readings: Readings | None) -> None:
        """The GPUs' readings, as the rules last read them (None: no guard asks)."""
        if readings != self._snapshot.gpus:
            self._commit(replace(self._snapshot, gpus=readings))

    def use_loaded(self, use: DayUse) -> None:
        """Today's use as the ledger holds it (the worker starting again mid-day)."""
        self._use = use
        self._commit(self._snapshot)

    def override_rules(self, until: datetime | None) -> None:
        if until != self._snapshot.rules_overridden_until:
            self._commit(replace(self._snapshot, rules_overridden_until=until))

    def update(self, view: UpdateView | None) -> None:
        if view != self._snapshot.update:
            self._commit(replace(self._snapshot, update=view))

    def updating(self, what: str | None) -> None:
        if what != self._snapshot.updating:
            self._commit(replace(self._snapshot, updating=what))

    def tray_shown(self) -> None:
        if self._snapshot.waiting_for_tray:
            self._commit(replace(self._snapshot, waiting_for_tray=False))

    def stopping(self) -> None:
        """The worker takes nothing new from now on (the registration empties)."""
        if not self._snapshot.stopping:
            self._commit(replace(self._snapshot, stopping=True))

    def count(self, model: str | None, *, served: int = 0, failed: int = 0, refused: int = 0,
              limited: int = 0, unanswered: int = 0, chunks: int = 0, size: int = 0) -> None:
        """Add to the counters; they go out with the next snapshot."""
        def bump(c: Counters) -> Counters:
            return Counters(c.served + served, c.failed + failed, c.refused + refused,
                            c.limited + limited, c.unanswered + unanswered, c.chunks + chunks,
                            c.bytes + size)

        self._totals = bump(self._totals)
        if model is not None:
            self._per_model[model] = bump(self._per_model.get(model, Counters()))
        self._activity = self.current_activity  # staged: it goes out with the counters

    def record(self, entry: Entry, gpu_s: float = 0.0) -> None:
        """One hub request ended (or was refused): its row for the ledger, and what it
        adds to the menu's tallies and to today's use (its share of the GPU's time,
        ``gpu_s``), from the same row (they cannot disagree)."""
        tally = tally_of(entry)
        self._use = self._use.add(entry.day, entry.energy_wh, gpu_s)
        self._activity = activity.bump(self.current_activity, self._today(),
                                       requests=tally.requests, tokens=tally.tokens,
                                       failed=tally.failed, limited=tally.limited)
        for sink in self._sinks:
            try:
                sink(entry)
            except Exception:  # a row not kept is said, never a request's end lost
                log.exception("a request's row could not be handed on")

    def keep_ledger(self, sink: Callable[[Entry], None]) -> None:
        """Send each request's row to ``sink`` (the ledger's writer, the telemetry) from now
        on."""
        self._sinks.append(sink)

    @property
    def today(self) -> date:
        return self._today()

    def requests(self, active: int, queued: int) -> None:
        """How many requests run and wait now, with the counters as they stand."""
        self._commit(replace(self._snapshot, active=active, queued=queued))

    def activity(self, ledger: Activity) -> None:
        """The activity ledger as loaded, or seen on a new day."""
        self._activity = ledger
        self._commit(self._snapshot)

    def day_changed(self) -> None:
        self.activity(activity.for_day(self.current_activity, self._today()))

    def activity_loaded(self, ledger: Activity) -> None:
        """The ledger read from the owner's file, seen on the store's today (one clock)."""
        self.activity(activity.for_day(ledger, self._today()))

    @property
    def current_activity(self) -> Activity:
        """The ledger with every request counted so far (published or not yet)."""
        return self._activity or self._snapshot.activity

    def notice(self, problem: str) -> None:
        """A problem the owner should read (the menu and ``status`` show it) until the next."""
        self._commit(replace(self._snapshot, notice=problem[:300]))

    def stopped(self) -> None:
        self._commit(replace(self._snapshot, connection=State.STOPPED, reason="stopped",
                             active=0))

    # -- publishing -----------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _commit(self, snap: Snapshot) -> None:
        if self._use != snap.today_use:
            snap = replace(snap, today_use=self._use)
        if self._activity is not None:
            snap = replace(snap, totals=self._totals, activity=self._activity,
                           per_model=tuple(sorted(self._per_model.items())))
            self._activity = None
        snap = replace(snap, sequence=self._snapshot.sequence + 1)
        self._snapshot = snap
        for listener in list(self._listeners):
            try:
                listener(snap)
            except Exception:
                log.exception("a snapshot listener failed")
        if self._pulse_due:
            return  # the pulse already on its way wakes waiters to this snapshot too
        cond = self._condition()

        async def pulse() -> None:
            self._pulse_due = False
            async with cond:
                cond.notify_all()

        try:
            task = self._jobs.spawn(pulse())
        except RuntimeError:  # no running loop: nobody can be waiting
            return
        self._pulse_due = True
        # A pulse cancelled before it ran (the worker stopping) must not leave the
        # flag up, or no later snapshot would ever wake a waiter.
        task.add_done_callback(self._pulse_ended)

    def _pulse_ended(self, _task: asyncio.Task[None]) -> None:
        self._pulse_due = False

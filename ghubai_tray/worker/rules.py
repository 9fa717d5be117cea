"""The owner's rules: when sharing is held although nobody pressed Pause.

The decision is the pure :func:`ghubai_tray.core.rules.decide`; this loop only
gathers its inputs and carries out its answer. It looks at the wall clock
(injected) at least every :data:`RULES_CHECK` seconds and exactly when the
decision says it may change (the schedule's next window, the end of the
owner-first hold); while a rule that reads a live signal is on it looks every
:data:`LOOK` seconds at the desktop (full screen, idle, battery, GPU) and every
:data:`OWNER_LOOK` at Ollama (owner first), so a game or a local chat stops
sharing within seconds.

Carrying out a hold: the registration empties (``Snapshot.held_by`` makes
``offered_models`` empty), new requests are refused in words, those running
finish, or are ended at once for a rule that needs the GPU now (a full-screen
game, another program on the GPU); and the GPU is freed as a manual pause does,
except when the owner's own use of Ollama holds sharing: unloading the model
they are chatting with would only make them wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from ghubai_tray.core import schedule
from ghubai_tray.core.hardware import Readings
from ghubai_tray.core.local_use import Loaded, Used, local_use, merged, others_working
from ghubai_tray.core.rules import (
    GUARDS,
    Act,
    Decision,
    DesktopReadings,
    Memory,
    Rule,
    Signals,
    decide,
    enabled,
    hub_words,
    read_desktop,
)
from ghubai_tray.core.server_kinds import SHORT
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Snapshot
from ghubai_tray.worker.gpu import free_gpu_once_idle
from ghubai_tray.worker.ports import OllamaLink
from ghubai_tray.worker.requests import RequestRunner
from ghubai_tray.worker.runtime import SideJobs, wait_event
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

RULES_CHECK = 15.0
LOOK = 2.0  # the desktop's signals: a few cheap local reads
# Ollama's /api/ps: Ollama logs every request it gets, so it is asked less often.
OWNER_LOOK = 5.0
DESKTOP = frozenset({Rule.FULLSCREEN, Rule.GPU_BUSY, Rule.AWAY, Rule.BATTERY})
LIVE = DESKTOP | set(GUARDS)  # the rules whose signal is looked at every LOOK seconds


class Rules:
    def __init__(self, store: StateStore, ollama: OllamaLink, runner: RequestRunner,
                 jobs: SideJobs, clock: Callable[[], datetime], check: float = RULES_CHECK,
                 desktop: DesktopReadings | None = None, look: float = LOOK,
                 owner_look: float = OWNER_LOOK,
                 gpus: Callable[[], Readings] | None = None) -> None:
        self._store = store
        self._ollama = ollama
        self._runner = runner
        self._jobs = jobs
        self._clock = clock
        self._check = check
        self._desktop = desktop
        self._look = look
        self._owner_look = owner_look
        self._gpus = gpus
        self._owner_looked: float | None = None  # the loop's time of the last /api/ps look
        self._wake = asyncio.Event()
        self._memory = Memory()
        self._seen_ps: tuple[str, Loaded] | None = None  # (Ollama URL, its last /api/ps)
        self._used_late: Used = {}
        self._looking = asyncio.Lock()  # one look at the model server at a time
        self._owner_seen = False  # a look before a hub request saw the owner's use
        self._seen = (store.snapshot.settings, store.snapshot.rules_overridden_until)
        store.subscribe(self._on_snapshot)
        ollama.look_first = self._look_first

    async def _look_first(self) -> None:
        """Before each hub request reaches the model server, while owner first is on: a
        look, because the request will move the model's expiry over whatever the owner's
        chat since the last look left there (under steady hub traffic the looks every few
        seconds saw one owner's chat in ten). What it sees is decided on at once."""
        settings = self._store.snapshot.settings
        if Rule.OWNER_FIRST not in enabled(settings):
            return
        if await self._local_use(settings):
            self._owner_seen = True
            self._wake.set()

    def _on_snapshot(self, snap: Snapshot) -> None:
        """New settings (the Settings window, a reload), or "Share anyway", are looked at
        at once."""
        if (snap.settings, snap.rules_overridden_until) != self._seen:
            self._seen = (snap.settings, snap.rules_overridden_until)
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            settings = self._store.snapshot.settings
            decision = await self.look(await self._signals(settings))
            wait = self._check
            if decision.next_look is not None:
                wait = min(wait, max(0.0, (decision.next_look - self._clock()).total_seconds()))
            on = enabled(settings)
            if on & LIVE:
                wait = min(wait, self._look)
            if Rule.OWNER_FIRST in on:
                wait = min(wait, self._owner_look)
            await wait_event(self._wake, wait)

    async def look(self, signals: Signals) -> Decision:
        """Decide on ``signals`` and carry the decision out."""
        snap = self._store.snapshot
        override = snap.rules_overridden_until
        if override is not None and override <= signals.now:
            log.info("'Share anyway' has ended: the rules apply again")
            self._store.override_rules(None)
            override = None
        decision = decide(snap.settings, signals, self._memory, override)
        self._memory = decision.memory
        await self._carry_out(decision, snap.settings)
        return decision

    async def _carry_out(self, decision: Decision, settings: Settings) -> None:
        snap = self._store.snapshot
        held_by = decision.rule.value if decision.rule is not None else None
        server = SHORT[snap.server_kind]
        if held_by != snap.held_by:
            if held_by is None:
                log.info("the rules allow sharing again (%s no longer holds it)", snap.held_by)
            else:
                until = f" until {decision.until:%a %H:%M}" if decision.until else ""
                extra = (f" ({schedule.shown(settings.schedule)})"
                         if decision.rule is Rule.SCHEDULE else "")
                log.info("a rule holds sharing%s: %s%s", until, hub_words(held_by, server), extra)
                if snap.free_gpu_when_paused and decision.rule is not Rule.OWNER_FIRST:
                    self._jobs.spawn(free_gpu_once_idle(self._store, self._ollama))
        self._store.held(held_by, decision.until, decision.detail)
        if decision.act is Act.PAUSE_NOW and held_by is not None and snap.active:
            await self._runner.cancel_all(
                f"this machine stopped sharing ({hub_words(held_by, server)})")

    async def _signals(self, settings: Settings) -> Signals:
        on = enabled(settings)
        local = False
        now = asyncio.get_running_loop().time()
        if Rule.OWNER_FIRST in on and (self._owner_looked is None
                                       or now - self._owner_looked >= self._owner_look * 0.9):
            self._owner_looked = now
            local = await self._local_use(settings)
        local, self._owner_seen = local or self._owner_seen, False
        desktop = self._desktop if on & DESKTOP else None
        now_wall = self._clock()
        signals = (Signals(now_wall, local_use=local) if desktop is None else
                   await asyncio.to_thread(read_desktop, desktop, settings, now_wall, local))
        readings = (await asyncio.to_thread(self._read_gpus)
                    if on & set(GUARDS) and self._gpus is not None else None)
        self._store.gpus(readings)
        use = self._store.snapshot.today_use.on(now_wall.date().isoformat())
        return replace(signals, gpu_temp_c=readings.hottest_c if readings else None,
                       gpu_power_w=readings.power_w if readings else None,
                       energy_today_kwh=use.kwh, gpu_hours_today=use.gpu_hours)

    def _read_gpus(self) -> Readings | None:
        """The GPUs now; a failing read is no reading (never a hold, never a stopped loop)."""
        assert self._gpus is not None
        try:
            return self._gpus()
        except Exception:
            log.exception("the GPUs could not be read")
            return None

    async def _local_use(self, settings: Settings) -> bool:
        """Whether someone on this computer used the model server since the last look.

        ``llama-server`` says how many of its slots are working: more than the worker's
        own requests there is somebody else's use. Ollama says which models it holds
        and until when (``/api/ps``), read as follows.

        The worker's uses that ended are taken before and after the look, with the
        expiry each leaves, and carried to the next look too: a hub request that ends
        during a look, or just before it, moves the model's expiry a moment later
        (Ollama's scheduler sets it once the request's context is done). Uses still
        running count for this look only (their expiries are not known yet); once
        they end, they are taken with theirs.
        """
        async with self._looking:
            return await self._look_at_server(settings)

    async def _look_at_server(self, settings: Settings) -> bool:
        client = self._ollama.client
        ours = self._ollama.running()
        busy = await client.busy_slots()
        if busy is not None:  # llama-server: its slots say whether it works for someone else
            return others_working(busy, max(ours, self._ollama.running()))
        ended_before, running_before = self._ollama.take_used()
        loaded = await client.loaded_expiries()
        ended_after, running_after = self._ollama.take_used()
        ended = merged(ended_before, ended_after)
        used = merged(self._used_late, ended, running_before, running_after)
        self._used_late = ended
        if loaded is None:
            self._seen_ps = None  # no look: the next one is a new baseline
            return False
        before = (self._seen_ps[1] if self._seen_ps is not None
                  and self._seen_ps[0] == settings.ollama_url else None)
        self._seen_ps = (settings.ollama_url, loaded)
        return local_use(before, loaded, used)

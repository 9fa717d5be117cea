"""The worker: one asyncio root task that connects, discovers, registers and relays.

It runs the same way under the tray (on a background thread) and headless (on
the main thread). :class:`Worker` only wires its collaborators together and
owns the start and the stop; each has one job:

- :class:`~ghubai_tray.worker.store.StateStore` writes every snapshot;
- :class:`~ghubai_tray.worker.commands.CommandHandler` applies commands and
  ends a timed pause;
- :class:`~ghubai_tray.worker.hub_supervisor.HubSupervisor` connects,
  registers, reads, and retries forever;
- :class:`~ghubai_tray.worker.discovery.Discovery` polls Ollama's model list;
- :class:`~ghubai_tray.worker.requests.RequestRunner` serves each request and
  ends it in exactly one final.

docs/ARCHITECTURE.md draws the threads, the state flow and the Quit path.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.adapters.hub import HubConnection
from ghubai_tray.adapters.ledger_db import Ledger
from ghubai_tray.adapters.ollama import OllamaClient
from ghubai_tray.adapters.openai_server import OpenAIServerClient
from ghubai_tray.adapters.tls import client_context
from ghubai_tray.core.hardware import Readings
from ghubai_tray.core.rules import DesktopReadings
from ghubai_tray.core.server_kinds import ServerKind
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Command, Snapshot, Stop
from ghubai_tray.core.updates import FIRST_CHECK_AFTER
from ghubai_tray.worker.commands import PAUSE_CHECK, CommandHandler, Persist
from ghubai_tray.worker.discovery import POLL_INTERVAL, Discovery
from ghubai_tray.worker.energy import EnergyMeter
from ghubai_tray.worker.hours import HoursKept
from ghubai_tray.worker.hub_supervisor import RECONNECT_SPREAD, HubSupervisor
from ghubai_tray.worker.ports import (
    Connector,
    HubLink,
    Ollama,
    OllamaLink,
    ServerFactory,
    Telemetry,
)
from ghubai_tray.worker.requests import RequestRunner, Traced, untraced
from ghubai_tray.worker.rules import LOOK, OWNER_LOOK, RULES_CHECK, Rules
from ghubai_tray.worker.runtime import Problems, SideJobs, supervised
from ghubai_tray.worker.store import StateStore
from ghubai_tray.worker.updates import Feed, Installer, UpdateWatch

log = logging.getLogger("ghubai_tray.worker")

ACTIVITY_CHECK_INTERVAL = 60.0


async def _open_hub(url: str, token: str | None, *, ssl_context: Any,
                    max_message_bytes: int) -> HubLink:
    return await HubConnection.open(url, token, ssl_context=ssl_context,
                                    max_message_bytes=max_message_bytes)


def server_for(settings: Settings, kind: ServerKind) -> Ollama:
    """The adapter of the kind of model server discovery found at the address."""
    context = client_context(settings.allow_invalid_certs)
    if kind is ServerKind.OLLAMA:
        return OllamaClient(settings.ollama_url, context)
    return OpenAIServerClient(settings.ollama_url, kind, context)


def _now() -> datetime:
    return datetime.now().astimezone()


def _instrumented(factory: ServerFactory, telemetry: Telemetry) -> ServerFactory:
    """Each model server's adapter, its HTTP calls traced."""
    def build(settings: Settings, kind: ServerKind) -> Ollama:
        server = factory(settings, kind)
        telemetry.instrument(server.http)
        return server

    return build


def _traced_by(telemetry: Telemetry | None) -> Traced:
    if telemetry is None:
        return untraced
    return lambda request, work: telemetry.traced(request.request_id, request.model,
                                                  request.endpoint, work)


def _power_of(gpus: Callable[[], Readings] | None) -> Callable[[], float | None] | None:
    """The energy meter reads the GPUs' summed draw; no sensors, no meter."""
    if gpus is None:
        return None
    return lambda: gpus().power_w


class Worker:
    """Build with settings and a token provider; ``await run()``; talk to it with ``submit()``."""

    def __init__(
        self,
        settings: Settings,
        token_provider: Callable[[str], TokenSource],
        *,
        connector: Connector = _open_hub,
        ollama: ServerFactory = server_for,
        persist: Persist | None = None,
        ledger_path: Path | None = None,
        gpus: Callable[[], Readings] | None = None,
        poll_interval: float = POLL_INTERVAL,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        pause_check: float = PAUSE_CHECK,
        wait_for_tray: bool = False,
        rules_check: float = RULES_CHECK,
        desktop: DesktopReadings | None = None,
        rules_look: float = LOOK,
        owner_look: float = OWNER_LOOK,
        keyring_locked: Callable[[], bool | None] | None = None,
        update_feed: Feed | None = None,
        first_update_check: timedelta = FIRST_CHECK_AFTER,
        update_installer: Installer | None = None,
        telemetry: Telemetry | None = None,
        reconnect_spread: float = RECONNECT_SPREAD,
    ) -> None:
        self._jobs = SideJobs()
        wall = clock or _now  # the one clock of the rules, the hours and "today"
        self._store = StateStore(settings, self._jobs, lambda: wall().date(),
                                 wait_for_tray=wait_for_tray)
        problems = Problems()
        self._telemetry = telemetry
        if telemetry is not None:
            ollama = _instrumented(ollama, telemetry)
            self._store.subscribe(telemetry.seen)
            self._store.keep_ledger(telemetry.record)
        self._ollama = OllamaLink(ollama, settings)
        self._runner = RequestRunner(self._store, self._ollama, self._jobs,
                                     EnergyMeter(_power_of(gpus)), _traced_by(telemetry))
        self._discovery = Discovery(self._store, self._ollama, self._jobs, problems,
                                    poll_interval)
        self._hub = HubSupervisor(self._store, self._runner, connector,
                                  lambda url: token_provider(url).token, self._jobs, problems,
                                  rng=rng or random.Random(), clock=clock or _now,
                                  keyring_locked=keyring_locked,
                                  reconnect_spread=reconnect_spread)
        self._updates = UpdateWatch(self._store, update_feed, clock or _now,
                                    rng or random.Random(), first_update_check,
                                    installer=update_installer, stop=self._request_stop)
        self._commands = CommandHandler(self._store, self._runner, self._hub, self._discovery,
                                        self._ollama, self._jobs, stop=self._request_stop,
                                        persist=persist, clock=clock or _now,
                                        pause_check=pause_check,
                                        install_update=self._updates.install)
        self._rules = Rules(self._store, self._ollama, self._runner, self._jobs, clock or _now,
                            rules_check, desktop=desktop, look=rules_look,
                            owner_look=owner_look, gpus=gpus)
        self._problems = problems
        self._ledger = Ledger(ledger_path) if ledger_path is not None else None
        self._hours: HoursKept | None = None
        self._clock = clock or _now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: Stop | None = None
        self._stopped = asyncio.Event()
        # Set once run() owns a loop: from then on submit() is safe from any thread.
        self.running = threading.Event()

    # -- the outside world's view -----------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._store.snapshot

    @property
    def settings(self) -> Settings:
        """The effective settings (the snapshot's): safe to read from any thread."""
        return self._store.snapshot.settings

    @property
    def refusals_pending(self) -> int:
        return self._runner.refusals_pending

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener`` with every new snapshot, on the worker's thread."""
        self._store.subscribe(listener)

    def submit(self, command: Command) -> None:
        """Hand a command to the worker; never blocks.

        Safe from any thread once :attr:`running` is set; before that, only from
        the thread that will call :meth:`run`.
        """
        if isinstance(command, Stop):
            # Stop never waits behind other commands, nor on the command loop.
            if self._loop is None:
                self._request_stop(command)
            else:
                self._loop.call_soon_threadsafe(self._request_stop, command)
        elif self._loop is None:
            self._commands.queue.put_nowait(command)  # not running yet: no loop to wake
        else:
            self._loop.call_soon_threadsafe(self._commands.queue.put_nowait, command)

    def _request_stop(self, command: Stop) -> None:
        if self._stop_requested is None:
            self._stop_requested = command
        self._stopped.set()

    async def wait_for(self, predicate: Callable[[Snapshot], Any], timeout: float,
                       what: str = "a state") -> Snapshot:
        """The first snapshot satisfying ``predicate``; TimeoutError naming ``what``."""
        return await self._store.wait_for(predicate, timeout, what)

    # -- the root task -------------------------------------------------------

    async def run(self) -> None:
        """Run until a :class:`Stop` command (or cancellation); then drain and close.

        The stop: take nothing new (the registration empties), give the requests
        in progress the Stop's grace, cancel the rest (each still gets its final),
        stop the loops, close the hub and Ollama connections, save the activity.
        """
        self._loop = asyncio.get_running_loop()
        if self._telemetry is not None:
            self._telemetry.start()
        self.running.set()
        await self._open_ledger()
        if self.settings.allow_invalid_certs:
            log.warning("ALLOW_INVALID_CERTS is on: the hub's certificate is not checked")
        tell = self._store.notice
        loops = [asyncio.create_task(supervised(name, loop, tell), name=name)
                 for name, loop in (("hub-supervisor", self._hub.run),
                                    ("discovery", self._discovery.run),
                                    ("commands", self._commands.run),
                                    ("rules", self._rules.run),
                                    ("updates", self._updates.run),
                                    ("activity", self._activity_loop))]
        try:
            await self._stopped.wait()
            self._store.stopping()
            await self._runner.drain(self._stop_requested.grace if self._stop_requested
                                     else 0.0)
        finally:
            self._store.stopping()
            requests = self._runner.abort()
            for task in loops:
                task.cancel()
            jobs = self._jobs.cancel_all()
            await asyncio.gather(*loops, *requests, *jobs, return_exceptions=True)
            await self._hub.close()
            await self._ollama.client.aclose()
            if self._ledger is not None:
                if self._hours is not None:
                    self._hours.flush()
                await asyncio.to_thread(self._ledger.close)
            if self._telemetry is not None:
                await asyncio.to_thread(self._telemetry.shutdown)
            self._store.stopped()

    async def _open_ledger(self) -> None:
        """The ledger, and the tallies it holds; without it, sharing goes on uncounted."""
        if self._ledger is None:
            return
        try:
            tallies = await asyncio.to_thread(self._ledger.open, self._store.today)
        except (OSError, sqlite3.Error) as exc:
            self._problems.log("ledger", logging.WARNING, f"the ledger cannot be kept "
                               f"({exc}): sharing goes on, but this session is not recorded")
            self._ledger = None
            return
        self._store.activity_loaded(tallies)
        self._store.use_loaded(self._ledger.today_use)
        self._store.keep_ledger(self._ledger.add)
        self._hours = HoursKept(self._ledger.add, self._clock)
        self._store.subscribe(self._hours.seen)
        self._hours.seen(self._store.snapshot)

    async def _activity_loop(self) -> None:
        """A new day: today's tallies start from zero, and the ledger is pruned."""
        while True:
            await asyncio.sleep(ACTIVITY_CHECK_INTERVAL)
            if self._hours is not None:
                self._hours.flush()  # the stretch under way, should the machine stop
            day = self._store.current_activity.day
            self._store.day_changed()
            if self._ledger is not None and self._store.today.isoformat() != day:
                self._ledger.prune_soon(self._store.today)

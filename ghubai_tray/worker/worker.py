"""The worker: one asyncio root task that connects, discovers, registers and relays.

It runs the same way under the tray (on a background thread) and headless
(on the main thread). Inside, three long-lived loops share one owner of
state, and every request is a task of its own:

- the **hub supervisor** opens a fresh :class:`~ghubai_tray.adapters.hub.HubConnection`
  per attempt, registers, reads messages, and on any failure publishes the
  reason, cancels the requests of the dead connection and waits (exponential
  backoff with jitter, capped; minutes after a rejected token) before trying
  again, forever;
- the **discovery loop** polls Ollama's ``/api/tags`` every few seconds and
  nudges the registration when the shared list changes (a heartbeat repeats
  it anyway);
- the **command loop** applies what ``submit()`` hands over from other
  threads, and ends a timed pause;
- each **request** is validated, then forwarded under a semaphore, and ends
  in exactly one final chunk sent under ``asyncio.shield`` (empty on success,
  ``[error] ...`` otherwise), unless its connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from pysignalr.messages import InvocationMessage

from ghubai_tray.adapters.config import Settings
from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.adapters.hub import HubConnection, Malformed, host_of, incoming_limit, registration
from ghubai_tray.adapters.ollama import (
    MAX_ERROR_BODY,
    OllamaClient,
    read_limited,
    unreachable_reason,
)
from ghubai_tray.adapters.tls import client_context
from ghubai_tray.core import activity
from ghubai_tray.core.activity import Activity
from ghubai_tray.core.client_errors import final_fragment, is_openai
from ghubai_tray.core.errors import (
    AuthRejected,
    GhubAiError,
    HubError,
    OllamaError,
    OllamaUnreachable,
    RequestRejected,
    TagsParseError,
    TokenStoreError,
)
from ghubai_tray.core.framing import Done, Failed, Frame, Relay, framer_for, status_error
from ghubai_tray.core.sharing import is_shared
from ghubai_tray.core.state import (
    ApplySettings,
    Command,
    Counters,
    ModelView,
    OllamaStatus,
    Pause,
    PauseMode,
    Resume,
    SetFreeGpuWhenPaused,
    SetModelShared,
    SetShareNewModels,
    Snapshot,
    State,
    Stop,
    TokenChanged,
)
from ghubai_tray.core.tags import LocalModel
from ghubai_tray.core.validation import InferenceRequest, endpoint_of, validate_request

log = logging.getLogger("ghubai_tray.worker")

# Backoff: the first retry comes within half a second (a hub restart is usually
# quick), doubling up to 30 s; jitter spreads a crowd of workers reconnecting to
# a hub that just came back. A rejected token is retried every 5 minutes only,
# and at once when the token or the hub URL changes (checked every 15 s).
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0
AUTH_RETRY = 300.0
TOKEN_RECHECK = 15.0
POLL_INTERVAL = 5.0  # a cheap /api/tags poll; RegisterNode is sent only on change
ACTIVITY_SAVE_INTERVAL = 60.0
PAUSE_CHECK = 15.0  # a timed pause looks at the wall clock at least this often
SUPERVISOR_CAP = 30.0  # longest wait before a failed loop starts again
BLOCKING_THREAD_PREFIX = "ghubai-blocking"
QUEUE_PER_SLOT = 2  # requests that may wait for a slot, per concurrent slot (at least 4)
REQUEST_TARGETS = {"requestinference", "requestopenai"}
MAX_PENDING_REFUSALS = 64  # refusals waiting for the hub to take them
MENU_SOURCE = "the menu (saved to the config file)"  # where a menu change came from
MAX_OWED_FINALS = 1024  # finals of requests cut by a lost connection, sent on the next one
LOST_MID_ANSWER = ("the worker lost its connection to the hub during the answer; "
                   "please send the request again")
REFUSAL_SEND_TIMEOUT = 10.0

PAUSED_BY_OWNER = "paused by the owner"
SHUTTING_DOWN = "worker shutting down"


def run_in_new_loop(coro: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` without waiting, at the end, for blocking calls still in progress.

    A keyring call can hang on an unlock prompt nobody answers; ``asyncio.run``
    would then wait for its thread forever at shutdown. Our blocking calls run
    on a pool of daemon-like threads we leave behind instead (see
    :func:`blocking_calls_pending`), so stopping never depends on them.
    """
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix=BLOCKING_THREAD_PREFIX)
    loop.set_default_executor(executor)
    try:
        loop.run_until_complete(coro)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        loop.close()


def blocking_calls_pending() -> bool:
    """True while a blocking call (keyring, file) of a finished worker still runs."""
    return any(t.name.startswith(BLOCKING_THREAD_PREFIX) and t.is_alive()
               for t in threading.enumerate())


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): 0.25-0.5 s, doubling, ≤ 30 s."""
    base = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** max(0, attempt - 1))
    return base * (rng or random).uniform(0.5, 1.0)


class Connector(Protocol):
    def __call__(self, url: str, token: str | None, *, ssl_context: Any,
                 max_message_bytes: int) -> Awaitable[HubConnection]: ...


def _default_connector(url: str, token: str | None, *, ssl_context: Any,
                       max_message_bytes: int) -> Awaitable[HubConnection]:
    return HubConnection.open(url, token, ssl_context=ssl_context,
                              max_message_bytes=max_message_bytes)


@dataclass
class _Relayed:
    """What one request relayed: counted locally, added to the counters once at its end."""

    chunks: int = 0
    bytes: int = 0


class _HubGone(Exception):
    """The request's hub connection died: nothing more can be sent for it."""


class Worker:
    """Build with settings and a token provider; ``await run()``; talk to it with ``submit()``."""

    def __init__(
        self,
        settings: Settings,
        token_provider: Callable[[str], TokenSource],
        *,
        connector: Connector = _default_connector,
        persist: Callable[[dict[str, Any]], None] | None = None,
        activity_path: Path | None = None,
        poll_interval: float = POLL_INTERVAL,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        pause_check: float = PAUSE_CHECK,
    ) -> None:
        self.settings = settings
        self._token_provider = token_provider
        self._connector = connector
        self._persist = persist
        self._activity_path = activity_path
        self._activity_saved: Activity | None = None
        self._poll_interval = poll_interval
        self._rng = rng or random.Random()
        self._clock = clock or _now  # the wall clock: when a timed pause ends
        self._pause_check = pause_check
        self._snapshot = Snapshot(hub_url=settings.hub_url, ollama_url=settings.ollama_url,
                                  insecure_tls=settings.allow_invalid_certs,
                                  paused=settings.paused, paused_until=settings.paused_until,
                                  free_gpu_when_paused=settings.free_gpu_when_paused,
                                  share_new_models=settings.share_new_models)
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Since Python 3.10 asyncio queues bind to a loop on first use, so the queue
        # can exist before run(): a command submitted early simply waits in it.
        self._commands: asyncio.Queue[Command] = asyncio.Queue()
        self._wake_hub = asyncio.Event()
        self._wake_discovery = asyncio.Event()
        self._registration_due = asyncio.Event()
        self._stop_requested: Stop | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._models: tuple[LocalModel, ...] = ()
        self._ollama_ok = False
        self._conn: HubConnection | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self._active = 0
        self._totals = Counters()
        self._per_model: dict[str, Counters] = {}
        self._ollama = self._new_ollama_client(settings)
        self._token: str | None = None
        self._logged_problem: dict[str, str] = {}
        self._side_jobs: set[asyncio.Task[None]] = set()
        self._refusals_pending = 0
        self._owed: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # request id -> final
        self._pulse_due = False  # a wake-up of wait_for() is scheduled (one at a time)
        # Set once run() owns a loop: from then on submit() is safe from any thread.
        self.running = threading.Event()
        self._acknowledged = False  # the hub answered Registered on this connection
        self._last_registered: list[str] | None = None

    # -- the outside world's view -----------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener`` with every new snapshot, on the worker's thread."""
        self._listeners.append(listener)

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
            self._commands.put_nowait(command)  # not running yet: same thread, no loop to wake
        else:
            self._loop.call_soon_threadsafe(self._commands.put_nowait, command)

    def _request_stop(self, command: Stop) -> None:
        if self._stop_requested is None:
            self._stop_requested = command
        self._stopped.set()

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

    # -- the root task -------------------------------------------------------

    async def run(self) -> None:
        """Run until a :class:`Stop` command (or cancellation); then drain and close."""
        self._loop = asyncio.get_running_loop()
        self.running.set()
        if self._activity_path is not None:
            self._activity_saved = await asyncio.to_thread(activity.load, self._activity_path)
            self._publish(activity=activity.for_day(self._activity_saved, date.today()))
        if self.settings.allow_invalid_certs:
            log.warning("ALLOW_INVALID_CERTS is on: the hub's certificate is not checked")
        loops = [asyncio.create_task(self._supervised(name, loop), name=name)
                 for name, loop in (("hub-supervisor", self._hub_loop),
                                    ("discovery", self._discovery_loop),
                                    ("commands", self._command_loop),
                                    ("activity", self._activity_loop))]
        try:
            await self._stopped.wait()
            await self._drain(self._stop_requested.grace if self._stop_requested else 0.0)
        finally:
            self._stopping = True
            for request in list(self._tasks.values()):
                request.cancel()
            for task in [*loops, *self._side_jobs]:
                task.cancel()
            await asyncio.gather(*loops, *self._tasks.values(), *self._side_jobs,
                                 return_exceptions=True)
            if self._conn is not None:
                await self._conn.close()
            await self._ollama.aclose()
            await self._save_activity()
            self._publish(connection=State.STOPPED, reason="stopped", active=0)

    async def _drain(self, grace: float) -> None:
        """Stop taking work, give in-flight requests ``grace`` seconds, cancel the rest."""
        self._stopping = True
        self._registration_due.set()  # tell the hub: nothing more here
        if self._tasks:
            log.info("finishing %d request(s), up to %g s", len(self._tasks), grace)
            await asyncio.wait(list(self._tasks.values()), timeout=grace)
        await self._cancel_requests(SHUTTING_DOWN)

    async def _cancel_requests(self, reason: str) -> None:
        tasks = list(self._tasks.items())
        for request_id, task in tasks:
            self._cancel_reasons[request_id] = reason
            task.cancel()
        await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)

    # -- state -----------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _publish(self, **changes: Any) -> None:
        snap = replace(self._snapshot, sequence=self._snapshot.sequence + 1, **changes)
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

        with contextlib.suppress(RuntimeError):  # no running loop: nobody can be waiting
            self._spawn(pulse())
            self._pulse_due = True

    def _model_views(self) -> tuple[ModelView, ...]:
        s = self.settings
        return tuple(ModelView(m.name, m.remote,
                               is_shared(m, s.share_new_models, s.shared_models, s.unshared_models))
                     for m in self._models)

    def _publish_models(self) -> None:
        self._publish(models=self._model_views(),
                      share_new_models=self.settings.share_new_models)
        self._registration_due.set()

    def _registration_list(self) -> list[str]:
        """What to register now: the shared models, or nothing when paused or unable to serve."""
        if self._snapshot.paused or self._stopping or not self._ollama_ok:
            return []
        return list(self._snapshot.shared_models)

    def _publish_counters(self) -> None:
        self._publish(active=self._active, queued=len(self._tasks) - self._active,
                      totals=self._totals, per_model=tuple(sorted(self._per_model.items())))

    def _count(self, model: str | None, **increments: int) -> None:
        def bump(c: Counters) -> Counters:
            return replace(c, **{k: getattr(c, k) + v for k, v in increments.items()})

        self._totals = bump(self._totals)
        if model is not None:
            self._per_model[model] = bump(self._per_model.get(model, Counters()))
        tally = {"requests": increments.get("served", 0), "tokens": increments.get("chunks", 0),
                 "failed": increments.get("failed", 0) + increments.get("refused", 0),
                 "limited": increments.get("limited", 0)}
        self._snapshot = replace(self._snapshot, activity=activity.bump(
            self._snapshot.activity, date.today(), **tally))

    async def _activity_loop(self) -> None:
        """Save the activity ledger once a minute when it changed (and at the end)."""
        while True:
            await asyncio.sleep(ACTIVITY_SAVE_INTERVAL)
            self._publish(activity=activity.for_day(self._snapshot.activity, date.today()))
            await self._save_activity()

    async def _save_activity(self) -> None:
        current = self._snapshot.activity
        if self._activity_path is None or current == self._activity_saved:
            return
        try:
            await asyncio.to_thread(activity.save, self._activity_path, current)
        except OSError as exc:
            self._log_once("activity", logging.WARNING, f"cannot save the activity: {exc}")
            return
        self._activity_saved = current

    def _log_once(self, topic: str, level: int, message: str) -> None:
        """Log a recurring problem once per change, not once per poll."""
        if self._logged_problem.get(topic) != message:
            self._logged_problem[topic] = message
            log.log(level, "%s", message)

    # -- commands -----------------------------------------------------------------

    async def _command_loop(self) -> None:
        while True:
            command = await self._next_command()
            try:
                await self._apply(command)
            except GhubAiError as exc:
                log.error("%s", exc)
                self._tell_owner(str(exc))
            except Exception:  # one failed command must not stop the next ones
                log.exception("applying %s failed", type(command).__name__)
                self._tell_owner(f"a change could not be applied ({type(command).__name__}); "
                                 "the details are in the log")

    async def _next_command(self) -> Command:
        """The next command, or Resume once a timed pause has reached its end.

        The end is a wall-clock time, checked at least every :data:`PAUSE_CHECK`
        seconds, so a clock that is changed, or a computer that sleeps, ends the
        pause at the time the menu shows, not after so many seconds of waiting.
        """
        while True:
            until = self._snapshot.paused_until if self._snapshot.paused else None
            if until is not None and self._clock() >= until:
                log.info("the pause has ended")
                return Resume()
            wait = None if until is None else min(
                self._pause_check, max(0.0, (until - self._clock()).total_seconds()))
            try:
                async with asyncio.timeout(wait):
                    return await self._commands.get()
            except TimeoutError:
                continue

    def _tell_owner(self, problem: str) -> None:
        """A problem the owner should read (the menu and ``status`` show it) until the next."""
        self._publish(notice=problem[:300])

    async def _supervised(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]
                          ) -> None:
        """Keep a long-lived loop running: a bug is logged with its traceback, the owner is
        told, and the loop starts again after a pause that grows with repeated failures."""
        failures = 0
        while True:
            try:
                await loop()
                return
            except Exception:
                failures += 1
                log.exception("the %s loop failed (%d time(s)); starting it again", name,
                              failures)
                self._tell_owner(f"part of GhubAi Tray ({name}) failed and was restarted; "
                                 "the details are in the log")
                await asyncio.sleep(min(SUPERVISOR_CAP, 0.5 * 2 ** (failures - 1)))

    async def _apply(self, command: Command) -> None:  # noqa: C901 - one branch per command
        if isinstance(command, Stop):
            self._request_stop(command)
        elif isinstance(command, Pause):
            self._publish(paused=True, paused_until=command.until)
            self._remember(paused=True, paused_until=command.until)
            self._registration_due.set()
            log.info("paused%s", f" until {command.until:%H:%M}" if command.until else "")
            await self._save({"paused": True, "paused_until": command.until})
            if command.mode is PauseMode.NOW:
                await self._cancel_requests(PAUSED_BY_OWNER)
            if self._snapshot.free_gpu_when_paused:
                self._spawn(self._free_gpu())
        elif isinstance(command, Resume):
            self._publish(paused=False, paused_until=None)
            self._remember(paused=False, paused_until=None)
            self._registration_due.set()
            log.info("resumed")
            await self._save({"paused": False, "paused_until": None})
        elif isinstance(command, SetModelShared):
            shared = [m for m in self.settings.shared_models
                      if m.casefold() != command.name.casefold()]
            unshared = [m for m in self.settings.unshared_models
                        if m.casefold() != command.name.casefold()]
            (shared if command.shared else unshared).append(command.name)
            await self._change_settings(shared_models=tuple(shared),
                                        unshared_models=tuple(unshared))
        elif isinstance(command, SetShareNewModels):
            await self._change_settings(share_new_models=command.enabled)
        elif isinstance(command, SetFreeGpuWhenPaused):
            self._publish(free_gpu_when_paused=command.enabled)
            await self._change_settings(free_gpu_when_paused=command.enabled)
        elif isinstance(command, ApplySettings):
            self._reconfigure(command.settings)
        elif isinstance(command, TokenChanged):
            self._token = None
            self._reconnect_now()

    async def _change_settings(self, **changes: Any) -> None:
        self._remember(**changes)
        self._publish_models()
        await self._save(changes)

    def _remember(self, **changes: Any) -> None:
        """Keep ``settings`` the effective ones after a change from the menu, with where it
        came from: the tray's diagnostics read them from another thread (they once said
        ``paused = False (default)`` while paused)."""
        sources = {**self.settings.sources, **dict.fromkeys(changes, MENU_SOURCE)}
        self.settings = replace(self.settings, **changes, sources=sources)

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
            self._tell_owner(problem)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a small side job; kept referenced until done, cancelled when the worker stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._side_jobs.add(task)
        task.add_done_callback(self._side_jobs.discard)

    async def _free_gpu(self) -> None:
        """Once the last request has ended, unload the shared models Ollama holds in memory."""
        try:
            await self.wait_for(lambda s: (s.active == 0 and s.queued == 0) or not s.paused,
                                timeout=self.settings.total_timeout + 60, what="requests to end")
        except TimeoutError:
            return
        if not self._snapshot.paused:
            return
        shared = {m.casefold() for m in self._snapshot.shared_models}
        for model in await self._ollama.loaded_models():
            if model.casefold() in shared and await self._ollama.unload(model):
                log.info("freed the GPU memory held by %s", model)

    def _reconfigure(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        if new.max_concurrent_requests != old.max_concurrent_requests:
            self._slots = asyncio.Semaphore(new.max_concurrent_requests)
        if new.ollama_url != old.ollama_url or new.allow_invalid_certs != old.allow_invalid_certs:
            old_client, self._ollama = self._ollama, self._new_ollama_client(new)
            self._spawn(old_client.aclose())
            self._wake_discovery.set()
        self._publish(hub_url=new.hub_url, ollama_url=new.ollama_url,
                      insecure_tls=new.allow_invalid_certs, models=self._model_views(),
                      free_gpu_when_paused=new.free_gpu_when_paused,
                      share_new_models=new.share_new_models)
        self._registration_due.set()
        if (new.hub_url, new.allow_invalid_certs) != (old.hub_url, old.allow_invalid_certs):
            self._reconnect_now()

    def _reconnect_now(self) -> None:
        self._wake_hub.set()
        if self._conn is not None:
            self._spawn(self._conn.close())

    @staticmethod
    def _new_ollama_client(settings: Settings) -> OllamaClient:
        return OllamaClient(settings.ollama_url, client_context(settings.allow_invalid_certs))

    # -- discovery -------------------------------------------------------------------

    async def _discovery_loop(self) -> None:
        while True:
            try:
                await self._discover()
            except Exception:  # a bug here must not stop discovery for good
                log.exception("unexpected error while asking Ollama for its models")
            self._wake_discovery.clear()
            await _wait_event(self._wake_discovery, self._poll_interval)

    async def _discover(self) -> None:
        url = self.settings.ollama_url
        try:
            models = await self._ollama.tags()
        except OllamaUnreachable as exc:
            self._set_ollama(False, OllamaStatus.UNREACHABLE, str(exc), None)
        except TagsParseError as exc:
            self._set_ollama(False, OllamaStatus.BAD_ANSWER,
                             f"{exc} (is something other than Ollama at {url}?)", None)
        except OllamaError as exc:
            self._set_ollama(False, OllamaStatus.BAD_ANSWER, str(exc), None)
        else:
            self._set_ollama(True, OllamaStatus.REACHABLE,
                             f"{len(models)} model(s) at {url}", models)

    def _set_ollama(self, ok: bool, status: OllamaStatus, reason: str,
                    models: tuple[LocalModel, ...] | None) -> None:
        level = logging.INFO if ok else logging.WARNING
        self._log_once("ollama", level, f"Ollama: {reason}")
        changed = ok != self._ollama_ok or (models is not None and models != self._models)
        self._ollama_ok = ok
        if models is not None:
            self._models = models  # when Ollama is away, keep the last list for the menu
        if changed or status is not self._snapshot.ollama or reason != self._snapshot.ollama_reason:
            self._publish(ollama=status, ollama_reason=reason, models=self._model_views())
        if changed:
            self._registration_due.set()

    # -- the hub supervisor ----------------------------------------------------------

    async def _read_token(self) -> str | None:
        try:
            source = await asyncio.to_thread(self._token_provider, self.settings.hub_url)
        except TokenStoreError as exc:
            self._log_once("token", logging.WARNING, f"token: {exc}")
            return None
        return source.token

    async def _hub_loop(self) -> None:
        attempt = 0
        while True:
            try:
                attempt = await self._hub_attempt(attempt)
            except Exception:  # a bug here must not end sharing for good: log it, go on
                log.exception("unexpected error in the hub connection")
                attempt += 1
                await self._retry_later("an unexpected error (details in the log)",
                                        backoff_delay(attempt, self._rng), self._token)

    async def _hub_attempt(self, attempt: int) -> int:
        """One connection attempt and, if it opens, its whole session; the next attempt number."""
        self._wake_hub.clear()
        token = self._token = await self._read_token()
        settings = self.settings
        self._publish(connection=State.CONNECTING if attempt == 0
                      else State.RECONNECTING,
                      reason=f"connecting to {host_of(settings.hub_url)}", next_attempt=None)
        if settings.allow_invalid_certs and settings.hub_url.startswith("https"):
            log.warning("connecting without checking the hub's certificate "
                        "(ALLOW_INVALID_CERTS=1)")
        try:
            context = client_context(settings.allow_invalid_certs)
            conn = await self._connector(settings.hub_url, token, ssl_context=context,
                                         max_message_bytes=incoming_limit(
                                             settings.max_request_body))
        except AuthRejected as exc:
            await self._auth_rejected(str(exc), token)
            return 1
        except HubError as exc:
            await self._retry_later(str(exc), backoff_delay(attempt + 1, self._rng), token)
            return attempt + 1
        try:
            await self._session(conn)
            reason = "the connection ended"
        except HubError as exc:
            reason = str(exc)
        finally:
            self._conn = None
            await self._cancel_requests("the hub connection was lost")
            await conn.close()
        if self._acknowledged:
            # The hub accepted us on that connection: whatever ended it, the backoff starts
            # over (sessions always end by an error, so this cannot hang on their result).
            attempt = 0
        await self._retry_later(reason, backoff_delay(attempt + 1, self._rng), token)
        return attempt + 1

    async def _retry_later(self, reason: str, delay: float, token: str | None) -> None:
        unconfigured = token is None and self.settings.is_default_hub
        if unconfigured:
            reason = ("not set up yet: no hub token, and no hub at the default address "
                      f"{self.settings.hub_url} ({reason})")
        self._log_once("hub", logging.WARNING, f"hub: {reason}")
        self._publish(connection=State.NOT_CONFIGURED if unconfigured
                      else State.RECONNECTING, reason=reason,
                      next_attempt=_now() + timedelta(seconds=delay), registered_models=None)
        await _wait_event(self._wake_hub, delay)

    async def _auth_rejected(self, reason: str, token: str | None) -> None:
        if token is None:
            reason += ": this hub needs a token; run 'ghubai-tray token set' or set PROVIDER_TOKEN"
        else:
            reason += ": check the token (replace it with 'ghubai-tray token set')"
        self._log_once("hub", logging.ERROR, f"hub: {reason}")
        retry_at = time.monotonic() + AUTH_RETRY
        self._publish(connection=State.AUTH_REJECTED, reason=reason,
                      next_attempt=_now() + timedelta(seconds=AUTH_RETRY), registered_models=None)
        while (left := retry_at - time.monotonic()) > 0:
            await _wait_event(self._wake_hub, min(left, TOKEN_RECHECK))
            if self._wake_hub.is_set() or await self._read_token() != token:
                return

    async def _session(self, conn: HubConnection) -> None:
        """Serve one connection until it ends (always by raising HubError, or cancellation)."""
        self._conn = conn
        self._logged_problem.pop("hub", None)
        log.info("connected to the hub at %s", conn.host)
        self._publish(connection=State.CONNECTED, reason=f"connected to {conn.host}",
                      next_attempt=None, registered_models=None)
        self._acknowledged, self._last_registered = False, None
        registrar = asyncio.create_task(self._registration_loop(conn), name="registration")
        if self._owed:
            self._spawn(self._pay_owed(conn))
        try:
            async for message in conn.messages():
                if isinstance(message, Malformed):
                    log.warning("ignored a message from the hub: %s", message.reason)
                elif isinstance(message, InvocationMessage):
                    try:
                        self._on_invocation(conn, message)
                    except Exception:  # one bad message must not end the connection
                        log.exception("unexpected error handling %r from the hub",
                                      message.target[:60])
        finally:
            registrar.cancel()
            with contextlib.suppress(asyncio.CancelledError, HubError):
                await registrar

    async def _registration_loop(self, conn: HubConnection) -> None:
        """RegisterNode now, on every change, and as a heartbeat while no request runs.

        A hub resets a node's load count to 0 on every RegisterNode (GhubAi does),
        so a heartbeat during a request would make it look idle and break
        least-loaded routing between workers: the heartbeat waits for a quiet moment.
        """
        last_sent = 0.0
        self._registration_due.set()
        while True:
            heartbeat = self.settings.discovery_interval
            await _wait_event(self._registration_due,
                              max(0.0, last_sent + heartbeat - time.monotonic()))
            self._registration_due.clear()
            models = self._registration_list()
            if models == self._last_registered:
                if time.monotonic() - last_sent < heartbeat:
                    continue
                if self._tasks:
                    last_sent = time.monotonic()  # no heartbeat while serving: try later
                    continue
            argument, left_out = registration(self.settings.machine_name, models)
            if left_out:
                self._log_once("registration", logging.WARNING,
                               f"{left_out} model(s) left out of the registration: the list is "
                               "too long for one hub message")
            await conn.invoke("RegisterNode", argument)
            if models != self._last_registered:
                log.info("registered %d model(s): %s", len(models), ", ".join(models) or "none")
            self._last_registered, last_sent = models, time.monotonic()

    def _on_invocation(self, conn: HubConnection, message: InvocationMessage) -> None:
        target = message.target.casefold()
        if target in REQUEST_TARGETS:
            self._accept(conn, message.arguments, message.target)
        elif target == "registered":
            self._acknowledged = True
            count = len(self._last_registered or [])
            paused = self._snapshot.paused
            self._publish(connection=State.REGISTERED, registered_models=count,
                          reason=(f"paused, connected to {conn.host}" if paused else
                                  f"sharing {count} model(s) with {conn.host}"))
        else:
            self._log_once("target", logging.WARNING,
                           f"the hub called {message.target[:60]!r}, which this worker does not "
                           "have; ignored")

    # -- requests --------------------------------------------------------------------

    def _accept(self, conn: HubConnection, arguments: Any, target: str) -> None:
        """Validate and start a request; never blocks the receive loop, never raises."""
        try:
            request = validate_request(arguments, self._snapshot.shared_models,
                                       self.settings.max_request_body, self.settings.ceilings)
            if not self._ollama_ok:
                raise RequestRejected(f"Ollama is not reachable on this machine right now "
                                      f"({self._snapshot.ollama_reason})", request.request_id)
            if self._snapshot.paused:
                raise RequestRejected(PAUSED_BY_OWNER, request.request_id)
            if self._stopping:
                raise RequestRejected(SHUTTING_DOWN, request.request_id)
            if request.request_id in self._tasks:
                log.warning("[%s] the hub sent this request twice; the copy is ignored",
                            request.request_id)
                return
            limit = self.settings.max_concurrent_requests
            if len(self._tasks) >= limit + max(4, QUEUE_PER_SLOT * limit):
                raise RequestRejected(f"this worker is busy ({len(self._tasks)} requests in "
                                      "progress or waiting); try again", request.request_id)
        except RequestRejected as exc:
            self._count(None, refused=1)
            self._publish_counters()
            if exc.request_id is None:
                log.warning("dropped a request without a usable id: %s", exc.reason)
                return
            log.warning("[%s] refused: %s", exc.request_id, exc.reason)
            self._refuse(conn, exc.request_id, exc.reason, is_openai(endpoint_of(arguments),
                                                                     target))
            return
        task = asyncio.get_running_loop().create_task(self._serve(conn, request),
                                                      name=f"request-{request.request_id}")
        self._tasks[request.request_id] = task
        self._publish_counters()

    async def _serve(self, conn: HubConnection, request: InferenceRequest) -> None:
        rid = request.request_id
        final = "[error] the request failed"
        relayed = _Relayed()
        try:
            async with self._slots:
                self._active += 1
                self._publish_counters()
                log.info("[%s] %s %s", rid, request.endpoint, request.model)
                self._note_limits(request)
                started = time.monotonic()
                try:
                    final = await self._forward(conn, request, relayed)
                finally:
                    self._active -= 1
            outcome = "served" if final == "" else "failed"
            self._count(request.model, **{outcome: 1})
            log.info("[%s] %s in %.1f s%s", rid, outcome, time.monotonic() - started,
                     f": {final}" if final else "")
            if not await asyncio.shield(self._send_final(conn, rid, final, request.openai)):
                self._owe(rid, final, request.openai)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(rid, "the request was cancelled")
            self._count(request.model, failed=1)
            log.info("[%s] cancelled: %s", rid, reason)
            if conn.closed or not await asyncio.shield(
                    self._send_final(conn, rid, f"[error] {reason}", request.openai)):
                self._owe(rid, f"[error] {LOST_MID_ANSWER}", request.openai)
            raise
        except _HubGone:
            self._count(request.model, failed=1)
            log.info("[%s] abandoned: the hub connection is gone", rid)
            self._owe(rid, f"[error] {LOST_MID_ANSWER}", request.openai)
        finally:
            self._count(request.model, chunks=relayed.chunks, bytes=relayed.bytes)
            self._tasks.pop(rid, None)
            self._cancel_reasons.pop(rid, None)
            self._publish_counters()

    def _refuse(self, conn: HubConnection, request_id: str, reason: str, openai: bool) -> None:
        """Send a refusal's final without letting a hub that does not read pile them up.

        At most :data:`MAX_PENDING_REFUSALS` wait to be sent, each for at most
        :data:`REFUSAL_SEND_TIMEOUT` seconds; beyond that they are dropped and counted
        (a hub that reads nothing cannot receive them anyway).
        """
        if self._refusals_pending >= MAX_PENDING_REFUSALS:
            self._count(None, unanswered=1)
            log.warning("[%s] the hub is not reading: this refusal was not sent", request_id)
            return
        self._refusals_pending += 1

        async def send() -> None:
            try:
                async with asyncio.timeout(REFUSAL_SEND_TIMEOUT):
                    await self._send_final(conn, request_id, f"[error] {reason}", openai,
                                           refused=True)
            except TimeoutError:
                self._count(None, unanswered=1)
                log.warning("[%s] the hub did not take the refusal within %g s", request_id,
                            REFUSAL_SEND_TIMEOUT)
            finally:
                self._refusals_pending -= 1

        self._spawn(send())

    def _note_limits(self, request: InferenceRequest) -> None:
        """Say in the log, and count, what the owner's ceilings changed in this request."""
        canonical = request.canonical
        if canonical is None or not canonical.limited:
            return
        changes = [*canonical.capped, *(f"{name} left out" for name in canonical.dropped)]
        log.info("[%s] limited by this machine's settings: %s", request.request_id,
                 "; ".join(changes)[:500])
        self._count(request.model, limited=1)

    def _owe(self, request_id: str, final: str, openai: bool) -> None:
        """Remember a final that could not be sent: the next connection sends it.

        A hub may keep a request open until its final arrives, on whichever
        connection (GhubAi has no request timeout), so a request the worker lost
        with its connection would otherwise hang its client for ever.
        """
        self._owed[request_id] = (final, openai)
        while len(self._owed) > MAX_OWED_FINALS:
            dropped, _ = self._owed.popitem(last=False)
            self._count(None, unanswered=1)
            log.warning("[%s] too many finals owed to the hub: this one is given up", dropped)

    async def _pay_owed(self, conn: HubConnection) -> None:
        """Send the finals owed from lost connections, oldest first, on this one."""
        while self._owed and not conn.closed:
            request_id, (final, openai) = next(iter(self._owed.items()))
            if not await self._send_final(conn, request_id, final, openai):
                return  # this connection is gone too: the next one tries again
            self._owed.pop(request_id, None)
            log.info("[%s] sent the final owed since the connection was lost", request_id)

    async def _send_final(self, conn: HubConnection, request_id: str, text: str, openai: bool,
                          *, refused: bool = False) -> bool:
        """The one final of a request: empty on success, else the client's error object.

        False when it could not be sent (the connection is gone)."""
        fragment = final_fragment(text, openai, refused=refused)
        try:
            await conn.invoke("StreamInferenceResponse", {"requestId": request_id,
                                                          "tokenFragment": fragment,
                                                          "isFinal": True})
        except HubError:
            log.info("[%s] the final chunk could not be sent: the hub connection is gone",
                     request_id)
            return False
        return True

    async def _forward(self, conn: HubConnection, request: InferenceRequest,
                       relayed: _Relayed) -> str:
        """Relay Ollama's answer; return the final chunk's text ("" on success).

        Two clocks bound it: the whole request (``total_timeout``) and progress
        (``idle_timeout``), which only a complete event resets, so an "Ollama"
        that trickles a byte at a time cannot hold a slot for the full hour.
        """
        settings = self.settings
        loop = asyncio.get_running_loop()
        total = asyncio.timeout(settings.total_timeout)
        progress = asyncio.timeout(settings.idle_timeout)
        try:
            async with total, progress, self._ollama.post_stream(
                    request.endpoint, request.body, settings.idle_timeout) as response:
                if response.status_code >= 300:
                    body = await read_limited(response, MAX_ERROR_BODY)
                    return f"[error] {status_error(response.status_code, body)}"
                framer = framer_for(response.headers.get("content-type"))
                async for data in response.aiter_raw():
                    frames = framer.feed(data)
                    end = await self._emit(conn, request, frames, relayed)
                    if end is not None:
                        return end
                    if frames:
                        progress.reschedule(loop.time() + settings.idle_timeout)
                end = await self._emit(conn, request, framer.finish(), relayed)
                if end is not None:
                    return end
        except TimeoutError:
            if progress.expired():
                return f"[error] {no_progress(settings.idle_timeout)}"
            return f"[error] the request took longer than {settings.total_timeout:g} s"
        except httpx.ReadTimeout:
            return f"[error] {no_progress(settings.idle_timeout)}"
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return "[error] Ollama closed the connection before the answer was complete"
        except httpx.HTTPError as exc:
            return f"[error] {unreachable_reason(exc, settings.ollama_url)}"
        return "[error] Ollama's answer ended unexpectedly"

    async def _emit(self, conn: HubConnection, request: InferenceRequest,
                    frames: list[Frame], relayed: _Relayed) -> str | None:
        """Relay what one read produced; the final chunk's text once the answer is over.

        Events that arrived together go out together, in one WebSocket frame: under
        load, one system call per event was the relay's largest cost (profiled).
        """
        texts = [f.text for f in frames if isinstance(f, Relay)]
        if texts:
            try:
                await conn.invoke_each("StreamInferenceResponse", [
                    {"requestId": request.request_id, "tokenFragment": text, "isFinal": False}
                    for text in texts])
            except HubError:
                raise _HubGone from None
            relayed.chunks += len(texts)
            relayed.bytes += sum(len(t.encode("utf-8", "replace")) for t in texts)
        for frame in frames:
            if isinstance(frame, Done):
                return ""
            if isinstance(frame, Failed):
                return f"[error] {frame.reason}"
        return None


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` up to ``timeout`` seconds; True if it was set.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11,
    ``wait_for`` loses a cancellation that arrives as the event is set
    (bpo-42130), which left a loop waiting forever during shutdown.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def no_progress(seconds: float) -> str:
    return f"Ollama sent no complete part of the answer for {seconds:g} s"


def _now() -> datetime:
    return datetime.now().astimezone()


def for_owner(settings: Settings, token_provider: Callable[[str], TokenSource]) -> Worker:
    """The worker as the owner runs it, from the tray or ``--headless`` alike: settings
    changed from the menu saved to config.toml, requests counted in the owner's activity
    file ("Since install"). The one place both modes build it, so that they cannot drift
    apart again (headless once counted nothing)."""
    from ghubai_tray.adapters.config import save_settings

    return Worker(settings, token_provider, persist=save_settings,
                  activity_path=activity.default_path())

"""The hub supervisor: connect, register, read, and on any failure wait and try again.

One :meth:`HubSupervisor.run` loop, forever: each attempt opens a fresh
connection (the adapter negotiates afresh), keeps the registration in step with
the snapshot, hands requests to the runner and, when the connection ends,
cancels that connection's requests, publishes why and waits (exponential
backoff with jitter, capped; minutes after a rejected token, at once when the
token or the hub changes) before the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from ghubai_tray.adapters.hub import Invocation, Malformed, host_of, incoming_limit, registration
from ghubai_tray.adapters.tls import client_context
from ghubai_tray.core import texts
from ghubai_tray.core.errors import AuthRejected, HubError, TokenNeeded, TokenStoreError
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Snapshot, State
from ghubai_tray.worker.ports import Connector, HubLink
from ghubai_tray.worker.requests import REQUEST_TARGETS, RequestRunner
from ghubai_tray.worker.runtime import Problems, SideJobs, wait_event
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

# Backoff: a hub that cannot be reached is tried again within half a second, then
# the wait doubles up to 30 s, with jitter. A hub that accepted us and then dropped
# the connection most likely restarted, and dropped every donor at the same moment:
# those retries are spread evenly over 10 s (then 20 s, then 30 s while it stays
# away), because half a second's jitter spreads one worker's retries, not a fleet's
# (bench/fleet.py measured 87 % of 300 workers negotiating in the same second).
# A rejected token is retried every 5 minutes only, and at once when the token or
# the hub URL changes (checked every 15 s).
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0
RECONNECT_SPREAD = 10.0
AUTH_RETRY = 300.0
TOKEN_RECHECK = 15.0


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): 0.25-0.5 s, doubling, ≤ 30 s."""
    base = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** max(0, attempt - 1))
    return base * (rng or random).uniform(0.5, 1.0)


def retry_delay(attempt: int, rng: random.Random, spread: float | None) -> float:
    """The backoff, or the spread one after a drop when ``spread`` is given."""
    return backoff_delay(attempt, rng) if spread is None else reconnect_delay(attempt, rng, spread)


def reconnect_delay(attempt: int, rng: random.Random | None = None,
                    spread: float = RECONNECT_SPREAD) -> float:
    """Seconds before retry ``attempt`` after the hub dropped an accepted connection: anywhere
    in a window of ``spread`` seconds, doubling, ≤ 30 s ("full jitter": a fleet dropped at
    once comes back evenly over the window instead of at once)."""
    window = min(BACKOFF_CAP, spread * 2.0 ** max(0, attempt - 1))
    low = min(BACKOFF_FIRST / 2, window)
    return (rng or random).uniform(low, window)


class HubSupervisor:
    def __init__(self, store: StateStore, runner: RequestRunner, connector: Connector,
                 read_token: Callable[[str], str | None], jobs: SideJobs, problems: Problems,
                 *, rng: random.Random, clock: Callable[[], datetime],
                 keyring_locked: Callable[[], bool | None] | None = None,
                 reconnect_spread: float = RECONNECT_SPREAD) -> None:
        self._store = store
        self._runner = runner
        self._connector = connector
        self._read_token_now = read_token
        self._keyring_locked = keyring_locked or (lambda: None)
        self._jobs = jobs
        self._problems = problems
        self._rng = rng
        self._clock = clock
        self._spread = reconnect_spread
        self._spread_now: float | None = None  # the spread while the hub has dropped us
        self._wake = asyncio.Event()  # try again now: the token or the hub changed
        self._switch = asyncio.Event()  # open a new connection, let the old one finish
        self._registration_due = asyncio.Event()
        self._offered: tuple[str, ...] | None = None
        self._conn: HubLink | None = None
        self._token: str | None = None
        self._token_error: str | None = None  # why the last read of the token failed
        self._acknowledged = False  # the hub answered Registered on this connection
        self._last_registered: list[str] | None = None
        # The last failure to connect: at which hub URL, in which state, and why.
        self._failure: tuple[str, State, str] | None = None
        store.subscribe(self._on_snapshot)

    def _on_snapshot(self, snap: Snapshot) -> None:
        """The one thing that wakes the registration: what to offer the hub changed."""
        if snap.offered_models != self._offered:
            self._offered = snap.offered_models
            self._registration_due.set()

    def token_changed(self) -> None:
        """The token may have changed (Settings saved, ``ghubai-tray token set``): read it,
        and only if it differs from the one this connection was opened with, switch."""
        self._jobs.spawn(self._check_token())

    async def _check_token(self) -> None:
        token = await self._read_token()
        if self._conn is None:
            self._wake.set()  # between attempts: try at once, with whatever is stored now
        elif token != self._token:
            log.info("the provider token changed: connecting with the new one")
            self.switch_over()

    def switch_over(self) -> None:
        """A new connection (new token, new hub) before the old one ends: the old one
        carries its requests to their end, then closes (make before break)."""
        self._wake.set()
        if self._conn is not None:
            self._switch.set()

    def retry_now(self) -> None:
        """End the wait before the next attempt (the connection, if open, stays)."""
        self._wake.set()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    @property
    def _settings(self) -> Settings:
        return self._store.snapshot.settings

    # -- attempts -----------------------------------------------------------------

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                attempt = await self._attempt(attempt)
            except Exception:  # a bug here must not end sharing for good: log it, go on
                log.exception("unexpected error in the hub connection")
                attempt += 1
                await self._retry_later("an unexpected error (details in the log)",
                                        backoff_delay(attempt, self._rng), self._token)

    async def _read_token(self) -> str | None:
        """The token to send; None when there is none, or when the keyring would not give
        it (``_token_error`` then says why: a locked keyring is not a missing token)."""
        self._token_error = None
        try:
            return await asyncio.to_thread(self._read_token_now, self._settings.hub_url)
        except TokenStoreError as exc:
            self._problems.log("token", logging.WARNING, f"token: {exc}")
            self._token_error = str(exc)
            return None

    async def _attempt(self, attempt: int) -> int:
        """One connection attempt and, if it opens, its whole session; the next attempt number."""
        self._wake.clear()
        token = self._token = await self._read_token()
        settings = self._settings
        failure = self._failure
        if attempt > 0 and failure is not None and failure[0] == settings.hub_url:
            # A retry keeps the state and reason of the failure it retries: the owner (and
            # the headless log) reads one reason per problem, not two alternating.
            self._store.connection(failure[1], failure[2])
        else:
            self._store.connection(State.CONNECTING if attempt == 0 else State.RECONNECTING,
                                   f"connecting to {host_of(settings.hub_url)}")
        if settings.allow_invalid_certs and settings.hub_url.startswith("https"):
            log.warning("connecting without checking the hub's certificate "
                        "(ALLOW_INVALID_CERTS=1)")
        try:
            conn = await self._connector(
                settings.hub_url, token, ssl_context=client_context(settings.allow_invalid_certs),
                max_message_bytes=incoming_limit(settings.max_request_body))
        except AuthRejected as exc:
            await self._auth_rejected(exc, token)
            return 1
        except HubError as exc:
            await self._retry_later(str(exc), retry_delay(attempt + 1, self._rng,
                                                          self._spread_now), token)
            return attempt + 1
        self._switch.clear()
        self._conn = conn  # before the task runs: a switch-over asked meanwhile is not lost
        session = asyncio.create_task(self._session(conn), name="hub-session")
        handed_over = False
        try:
            if await self._switched_during(session):
                handed_over = True
                self._jobs.spawn(self._retire(conn, session))
                return 0
            await session
            reason = "the connection ended"
        except HubError as exc:
            reason = str(exc)
        finally:
            self._conn = None
            if not handed_over:
                session.cancel()
                # its end is read whenever it comes (it ended the connection, said above), so
                # a stop racing the hub's drop leaves no "Task exception was never retrieved"
                session.add_done_callback(_read_end)
                await self._runner.cancel_on(conn, "the hub connection was lost")
                await conn.close()
        if self._acknowledged:
            # The hub accepted us on that connection: whatever ended it, the backoff starts
            # over (sessions always end by an error, so this cannot hang on their result),
            # spread as a restarted hub's whole fleet needs.
            attempt = 0
            self._spread_now = self._spread
        await self._retry_later(reason, retry_delay(attempt + 1, self._rng, self._spread_now),
                                token)
        return attempt + 1

    async def _switched_during(self, session: asyncio.Task[None]) -> bool:
        """Wait for the session to end or a switch-over to be asked; True for the latter."""
        switch = asyncio.ensure_future(self._switch.wait())
        try:
            await asyncio.wait({session, switch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            switch.cancel()
        return not session.done()

    async def _retire(self, conn: HubLink, session: asyncio.Task[None]) -> None:
        """The replaced connection: its requests run to their end (at most the request
        time limit), then it closes. It registers nothing more meanwhile, so the hub
        sends new requests to the new connection."""
        running = len(self._runner.running_on(conn))
        log.info("a new hub connection takes over; the old one closes %s",
                 f"when its {texts.counted(running, 'request')} end" if running else "now")
        try:
            with contextlib.suppress(TimeoutError):
                await self._runner.idle_on(conn, self._settings.total_timeout)
        finally:
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError, HubError):
                await session
            await self._runner.cancel_on(conn, "the hub connection was replaced")
            await conn.close()
            log.info("the old hub connection is closed")

    async def _retry_later(self, reason: str, delay: float, token: str | None) -> None:
        unconfigured = token is None and self._settings.is_default_hub
        if unconfigured:
            reason = ("not set up yet: no hub token, and no hub at the default address "
                      f"{self._settings.hub_url} ({reason})")
        self._problems.log("hub", logging.WARNING, f"hub: {reason}")
        state = State.NOT_CONFIGURED if unconfigured else State.RECONNECTING
        self._failure = (self._settings.hub_url, state, reason)
        self._store.connection(state, reason,
                               next_attempt=self._clock() + timedelta(seconds=delay))
        await wait_event(self._wake, delay)

    async def _auth_rejected(self, exc: AuthRejected, token: str | None) -> None:
        """Wait for a new token (or the slow retry): the hub refused what was sent, or
        needs a token and none was sent; each with its own state, so the tray never says
        "refused" of a token the hub did not see."""
        reason, state = str(exc), State.AUTH_REJECTED
        unreadable = isinstance(exc, TokenNeeded) and self._token_error is not None
        if unreadable:  # a token may well be stored: the keyring would not give it
            state = State.TOKEN_UNREADABLE
            reason = (f"{reason}; the token could not be read: {self._token_error}. Unlock "
                      "the keyring, then choose Retry now (or run 'ghubai-tray status')")
        elif isinstance(exc, TokenNeeded):
            state = State.TOKEN_NEEDED  # its text says what to do
        elif token is None:  # a token of the hub's own, from its redirect, was refused
            reason += ": this hub needs a token of yours; run 'ghubai-tray token set'"
        else:
            reason += ": check the token (replace it with 'ghubai-tray token set')"
        self._problems.log("hub", logging.ERROR, f"hub: {reason}")
        self._failure = None  # the retry after a refused token says it connects again
        retry_at = time.monotonic() + AUTH_RETRY
        self._store.connection(state, reason,
                               next_attempt=self._clock() + timedelta(seconds=AUTH_RETRY))
        while (left := retry_at - time.monotonic()) > 0:
            await wait_event(self._wake, min(left, TOKEN_RECHECK))
            if self._wake.is_set():
                return
            if unreadable:
                # Each read of a locked keyring may put its prompt up: only its lock is asked
                # about (no prompt), and the token read once the owner has unlocked it.
                if await asyncio.to_thread(self._keyring_locked) is False \
                        and await self._read_token() is not None:
                    return
                continue
            if await self._read_token() != token:
                return

    # -- one session --------------------------------------------------------------

    async def _session(self, conn: HubLink) -> None:
        """Serve one connection until it ends (always by raising HubError, or cancellation)."""
        self._problems.solved("hub")
        log.info("connected to the hub at %s", conn.host)
        self._store.connection(State.CONNECTED, f"connected to {conn.host}")
        self._acknowledged, self._last_registered = False, None
        registrar = asyncio.create_task(self._registration_loop(conn), name="registration")
        self._runner.connected(conn)
        try:
            async for message in conn.messages():
                if isinstance(message, Malformed):
                    log.warning("ignored a message from the hub: %s", message.reason)
                    continue
                try:
                    self._on_invocation(conn, message)
                except Exception:  # one bad message must not end the connection
                    log.exception("unexpected error handling %r from the hub",
                                  message.target[:60])
        finally:
            registrar.cancel()
            with contextlib.suppress(asyncio.CancelledError, HubError):
                await registrar

    async def _registration_loop(self, conn: HubLink) -> None:
        """RegisterNode now, on every change, and as a heartbeat while no request runs.

        A hub resets a node's load count to 0 on every RegisterNode (GhubAi does),
        so a heartbeat during a request would make it look idle and break
        least-loaded routing between workers: the heartbeat waits for a quiet moment.
        """
        last_sent = 0.0
        self._registration_due.set()
        while True:
            heartbeat = self._settings.discovery_interval
            await wait_event(self._registration_due,
                             max(0.0, last_sent + heartbeat - time.monotonic()))
            self._registration_due.clear()
            models = list(self._store.snapshot.offered_models)
            if models == self._last_registered:
                if time.monotonic() - last_sent < heartbeat:
                    continue
                if self._runner.busy:
                    last_sent = time.monotonic()  # no heartbeat while serving: try later
                    continue
            if conn is not self._conn:
                return  # replaced: the hub is to send new requests to the new connection
            argument, left_out = registration(self._settings.machine_name, models)
            if left_out:
                self._problems.log("registration", logging.WARNING,
                                   f"{texts.counted(left_out, 'model')} left out of the "
                                   "registration: the list is too long for one hub message")
            await conn.invoke("RegisterNode", argument)
            if models != self._last_registered:
                log.info("registered %d model(s): %s", len(models), ", ".join(models) or "none")
            self._last_registered, last_sent = models, time.monotonic()

    def _on_invocation(self, conn: HubLink, message: Invocation) -> None:
        target = message.target.casefold()
        if target in REQUEST_TARGETS:
            self._runner.accept(conn, message.target, message.arguments)
        elif target == "registered":
            if conn is not self._conn:
                return  # an answer on a replaced connection says nothing of the new one
            self._acknowledged = True
            self._spread_now = None
            count = len(self._last_registered or [])
            reason = (f"paused, connected to {conn.host}" if self._store.snapshot.holding
                      else f"sharing {texts.counted(count, 'model')} with {conn.host}")
            self._store.connection(State.REGISTERED, reason, registered_models=count)
        else:
            self._problems.log("target", logging.WARNING,
                               f"the hub called {message.target[:60]!r}, which this worker "
                               "does not have; ignored")


def _read_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()

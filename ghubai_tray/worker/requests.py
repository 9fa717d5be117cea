"""The request runner: accept, wait for a slot, relay, and end in exactly one final.

A hub request's whole life is :meth:`RequestRunner._serve`, read top to bottom;
it ends in one named :class:`Outcome`, and :meth:`RequestRunner._finish` is
the one place an outcome is counted, logged and its final chunk sent (empty
on success, the client's own error shape otherwise). A final that cannot be
sent because the connection is gone is *owed* and sent on the next one: a hub
may keep the request open until its final arrives, on whichever connection.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ghubai_tray.core.client_errors import final_fragment, is_openai
from ghubai_tray.core.errors import HubError, RequestRejected
from ghubai_tray.core.framing import Done, Framer
from ghubai_tray.core.ledger import Entry, limits_text
from ghubai_tray.core.native_bridge import native_answer_framer
from ghubai_tray.core.openai_bridge import answer_framer
from ghubai_tray.core.rules import hub_words
from ghubai_tray.core.server_kinds import NAMES, SHORT
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import OllamaStatus, Snapshot
from ghubai_tray.core.validation import (
    InferenceRequest,
    endpoint_of,
    request_id_of,
    validate_request,
)
from ghubai_tray.worker.energy import EnergyMeter
from ghubai_tray.worker.ports import HubLink, OllamaLink
from ghubai_tray.worker.runtime import SideJobs
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

REQUEST_TARGETS = {"requestinference", "requestopenai"}
QUEUE_PER_SLOT = 2  # requests that may wait for a slot, per concurrent slot (at least 4)
# Refusals waiting for the hub to take them, sent one after another: a hub that reads
# gets every one (a burst of 300 lost up to 210 when only 64 could wait); one that does
# not read holds at most this many (a few hundred bytes each) before they are dropped.
MAX_PENDING_REFUSALS = 4096
MAX_OWED_FINALS = 1024  # finals of requests cut by a lost connection, sent on the next one
REFUSAL_SEND_TIMEOUT = 10.0
LOST_MID_ANSWER = ("the worker lost its connection to the hub during the answer; "
                   "please send the request again")
PAUSED_BY_OWNER = "paused by the owner"
SHUTTING_DOWN = "worker shutting down"


class Outcome(enum.Enum):
    SERVED = "served"  # Ollama answered in full; the empty final went out
    FAILED = "failed"  # Ollama (or a limit) ended it early; the client got why
    CANCELLED = "cancelled"  # the owner paused, the worker stopped, or the connection dropped
    ABANDONED = "abandoned"  # the hub connection died while the answer was being relayed
    REFUSED = "refused"  # never started: a check or the worker's state refused it


def _category(outcome: Outcome, why: str) -> str:
    """Why a request did not end served, in the ledger's fixed words (core.ledger.WHY):
    the client's reason may quote what a server said of the request."""
    if outcome is Outcome.SERVED:
        return ""
    if outcome is Outcome.ABANDONED:
        return "the hub connection"
    if outcome is Outcome.CANCELLED:
        return {PAUSED_BY_OWNER: "paused", SHUTTING_DOWN: "stopping"}.get(
            why, "a rule" if why.startswith("this machine stopped sharing") else
            "the hub connection")
    # the relay's two clocks (local_server.py): the whole request, and progress
    if why.startswith("the request took longer") or "sent no complete part" in why:
        return "a limit of this machine"
    return "the model server"


@dataclass
class _Relayed:
    """What one request relayed: counted locally, added to the counters once at its end."""

    chunks: int = 0
    bytes: int = 0
    first: float | None = None  # when the first piece went to the hub (monotonic)
    end: Done | None = None  # how the server's answer ended, with its counts
    energy_wh: float | None = None  # its share of the GPU's energy, where it is measured
    gpu_s: float = 0.0  # its share of the GPU's time serving the hub


class _HubGone(Exception):
    """The request's hub connection died: nothing more can be sent for it."""


def _reframer(request: InferenceRequest) -> Callable[[Framer], Framer] | None:
    """How a ``/v1`` answer served by Ollama's native API is written back (see
    openai_bridge), with an id drawn as Ollama draws its own and the clock of this
    machine; or a native answer a server without Ollama's API gave (native_bridge)."""
    native = request.canonical.native if request.canonical else None
    if native is not None:
        return functools.partial(native_answer_framer, native, now=time.time_ns)
    shape = request.canonical.answer if request.canonical else None
    if shape is None:
        return None
    ident = f"{shape.id_prefix}{random.randrange(999)}"  # noqa: S311 - not a secret
    return functools.partial(answer_framer, shape, ident=ident, now=time.time)


def _held(snap: Snapshot) -> str:
    words = hub_words(snap.held_by or "", SHORT[snap.server_kind])
    return f"this machine is not sharing now ({words})"


def _unreachable(snap: Snapshot) -> str:
    return (f"{NAMES[snap.server_kind]} is not reachable on this machine right now "
            f"({snap.ollama_reason})")


def _entry(store: StateStore, request: InferenceRequest | None, outcome: Outcome, why: str,
           relayed: _Relayed, started: float) -> Entry:
    """The ledger's row for a request: what it was and how it went, not its words."""
    snap, now = store.snapshot, time.monotonic()
    canonical = request.canonical if request else None
    end = relayed.end
    return Entry(
        at=datetime.now().astimezone().isoformat(timespec="milliseconds"),
        day=store.today.isoformat(), hub=urlsplit(snap.settings.hub_url).hostname or "",
        model=request.model if request else "", endpoint=request.endpoint if request else "",
        server=snap.server_kind.value, why=why,
        # a request the hub's connection took with it was abandoned by the hub, whichever
        # side noticed first (the relay's send, or the connection's own end)
        outcome=Outcome.ABANDONED.value if why == "the hub connection" else outcome.value,
        prompt_tokens=end.prompt_tokens if end else None,
        output_tokens=end.output_tokens if end else None, chunks=relayed.chunks,
        ttft_ms=round((relayed.first - started) * 1000, 3) if relayed.first else None,
        duration_ms=round((now - started) * 1000, 3) if request else None,
        limits=limits_text(canonical.capped, canonical.dropped) if canonical else "",
        energy_wh=relayed.energy_wh)


def _note_limits(store: StateStore, request: InferenceRequest) -> None:
    """Say in the log, and count, what the owner's ceilings changed in this request."""
    canonical = request.canonical
    if canonical is None or not canonical.limited:
        return
    changes = [*canonical.capped, *(f"{name} left out" for name in canonical.dropped)]
    log.info("[%s] limited by this machine's settings: %s", request.request_id,
             "; ".join(changes)[:500])
    store.count(request.model, limited=1)


Traced = Callable[[InferenceRequest, Coroutine[Any, Any, None]], Coroutine[Any, Any, None]]
"""Runs one request's life (the coroutine) inside its trace (the telemetry's span)."""


def untraced(_request: InferenceRequest, work: Coroutine[Any, Any, None]
             ) -> Coroutine[Any, Any, None]:
    return work


class RequestRunner:
    """Runs the hub's requests against Ollama, at most ``max_concurrent_requests`` at once."""

    def __init__(self, store: StateStore, ollama: OllamaLink, jobs: SideJobs,
                 meter: EnergyMeter | None = None, traced: Traced = untraced) -> None:
        self._meter, self._traced = meter or EnergyMeter(None), traced
        self._store = store
        self._ollama = ollama
        self._jobs = jobs
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._conn_of: dict[str, HubLink] = {}  # request id -> the connection it came on
        self._cancel_reasons: dict[str, str] = {}
        self._slots = asyncio.Semaphore(store.snapshot.settings.max_concurrent_requests)
        self._active = 0
        self._refusals: deque[tuple[HubLink, str, str, bool]] = deque()
        self._refusing = False  # the one sender of refusals runs
        self._owed: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # request id -> final

    @property
    def refusals_pending(self) -> int:
        """Refusals not yet taken by the hub (the one being sent included)."""
        return len(self._refusals) + int(self._refusing)

    @property
    def busy(self) -> bool:
        """A request runs or waits (the registration heartbeat waits for a quiet moment)."""
        return bool(self._tasks)

    def resize(self, old: Settings, new: Settings) -> None:
        """New slots for new requests; those in progress keep theirs."""
        if new.max_concurrent_requests != old.max_concurrent_requests:
            self._slots = asyncio.Semaphore(new.max_concurrent_requests)

    # -- accepting ------------------------------------------------------------------

    def accept(self, conn: HubLink, target: str, arguments: Any) -> None:
        """Validate and start a request; never blocks the receive loop, never raises."""
        snap = self._store.snapshot
        settings = snap.settings
        try:
            try:
                request = validate_request(arguments, snap.shared_models,
                                           settings.max_request_body, settings.ceilings,
                                           snap.server_kind)
            except RequestRejected:
                raise
            except Exception as exc:  # a body no check foresaw still gets its final
                log.exception("a request could not be read")
                raise RequestRejected("this worker could not read the request",
                                      request_id_of(arguments)) from exc
            if snap.ollama is not OllamaStatus.REACHABLE:
                raise RequestRejected(_unreachable(snap), request.request_id)
            if snap.paused:
                raise RequestRejected(PAUSED_BY_OWNER, request.request_id)
            if snap.held_by:
                raise RequestRejected(_held(snap), request.request_id)
            if snap.stopping:
                raise RequestRejected(SHUTTING_DOWN, request.request_id)
            if request.request_id in self._tasks:
                log.warning("[%s] the hub sent this request twice; the copy is ignored",
                            request.request_id)
                return
            limit = settings.max_concurrent_requests
            if len(self._tasks) >= limit + max(4, QUEUE_PER_SLOT * limit):
                raise RequestRejected(f"this worker is busy ({len(self._tasks)} requests in "
                                      "progress or waiting); try again", request.request_id)
        except RequestRejected as exc:
            self._store.count(None, refused=1)
            self._store.record(_entry(self._store, None, Outcome.REFUSED, "refused",
                                      _Relayed(), time.monotonic()))
            self._publish()
            if exc.request_id is None:
                log.warning("dropped a request without a usable id: %s", exc.reason)
                return
            log.warning("[%s] refused: %s", exc.request_id, exc.reason)
            self._refuse(conn, exc.request_id, exc.reason,
                         is_openai(endpoint_of(arguments), target))
            return
        task = asyncio.get_running_loop().create_task(
            self._traced(request, self._serve(conn, request)), name=f"request-{request.request_id}")
        self._tasks[request.request_id] = task
        self._conn_of[request.request_id] = conn
        self._publish()

    # -- one request's life -----------------------------------------------------------

    async def _serve(self, conn: HubLink, request: InferenceRequest) -> None:
        rid = request.request_id
        relayed = _Relayed()
        started = time.monotonic()

        async def to_hub(texts: list[str]) -> None:
            try:
                await conn.invoke_each("StreamInferenceResponse", [
                    {"requestId": rid, "tokenFragment": text, "isFinal": False}
                    for text in texts])
            except HubError:
                raise _HubGone from None
            if relayed.first is None:
                relayed.first = time.monotonic()
            relayed.chunks += len(texts)
            relayed.bytes += sum(len(t.encode("utf-8", "replace")) for t in texts)

        try:
            async with self._slots:
                self._active += 1
                self._publish()
                log.info("[%s] %s %s", rid, request.endpoint, request.model)
                _note_limits(self._store, request)
                started = time.monotonic()
                self._meter.begin(rid)
                settings = self._store.snapshot.settings
                try:
                    keep_alive = request.canonical.keep_alive if request.canonical else None
                    await self._ollama.before_use()
                    with self._ollama.using(request.model, keep_alive) as use:
                        end = await self._ollama.client.relay(
                            request.path, request.body, to_hub,
                            idle_timeout=settings.idle_timeout,
                            total_timeout=settings.total_timeout, accepted=use.accept,
                            reframe=_reframer(request))
                finally:
                    self._active -= 1
            if isinstance(end, Done):
                relayed.end = end
                await self._finish(conn, request, Outcome.SERVED, "", started, relayed)
            else:
                await self._finish(conn, request, Outcome.FAILED, end.reason, started, relayed)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(rid, "the request was cancelled")
            await self._finish(conn, request, Outcome.CANCELLED, reason, started, relayed)
            raise
        except _HubGone:
            await self._finish(conn, request, Outcome.ABANDONED, "", started, relayed)
        finally:
            self._store.count(request.model, chunks=relayed.chunks, size=relayed.bytes)
            self._tasks.pop(rid, None)
            self._conn_of.pop(rid, None)
            self._cancel_reasons.pop(rid, None)
            self._publish()

    async def _finish(self, conn: HubLink, request: InferenceRequest, outcome: Outcome,
                      why: str, started: float, relayed: _Relayed) -> None:
        """Count, log and send the one final of a request that ended as ``outcome``.

        ``why`` is the reason of a failure or cancellation. What the client gets:
        the empty final when served; ``[error] why`` otherwise; and, when the
        connection that carried it is gone, a final owed to the next connection
        saying the answer was cut.
        """
        rid = request.request_id
        self._store.count(request.model, served=int(outcome is Outcome.SERVED),
                          failed=int(outcome is not Outcome.SERVED))
        relayed.energy_wh, relayed.gpu_s = self._meter.end(rid)
        self._store.record(_entry(self._store, request, outcome, _category(outcome, why),
                                  relayed, started), relayed.gpu_s)
        final, lost = ("" if outcome is Outcome.SERVED else f"[error] {why}",
                       f"[error] {LOST_MID_ANSWER}")
        if outcome in (Outcome.SERVED, Outcome.FAILED):
            log.info("[%s] %s in %.1f s%s", rid, outcome.value, time.monotonic() - started,
                     f": {final}" if final else "")
            if not await asyncio.shield(self._send_final(conn, rid, final, request.openai)):
                self._owe(rid, final, request.openai)
        elif outcome is Outcome.CANCELLED:
            log.info("[%s] cancelled: %s", rid, why)
            if conn.closed or not await asyncio.shield(
                    self._send_final(conn, rid, final, request.openai)):
                self._owe(rid, lost, request.openai)
        else:
            log.info("[%s] abandoned: the hub connection is gone", rid)
            self._owe(rid, lost, request.openai)

    def _publish(self) -> None:
        self._store.requests(active=self._active, queued=len(self._tasks) - self._active)

    # -- ending requests early ------------------------------------------------------------

    def running_on(self, conn: HubLink) -> dict[str, asyncio.Task[None]]:
        return {r: self._tasks[r] for r, c in self._conn_of.items() if c is conn}

    async def idle_on(self, conn: HubLink, timeout: float) -> None:
        """Until no request of ``conn`` runs (new ones included), at most ``timeout``."""
        async with asyncio.timeout(timeout):
            while tasks := self.running_on(conn):
                await asyncio.wait(tasks.values())

    async def cancel_on(self, conn: HubLink, reason: str) -> None:
        """Cancel the requests that came on ``conn``; each ends with ``[error] reason``."""
        await self._cancel(list(self.running_on(conn).items()), reason)

    async def cancel_all(self, reason: str) -> None:
        """Cancel every request; each ends with ``[error] reason``."""
        await self._cancel(list(self._tasks.items()), reason)

    async def _cancel(self, tasks: list[tuple[str, asyncio.Task[None]]], reason: str) -> None:
        for request_id, task in tasks:
            self._cancel_reasons[request_id] = reason
            task.cancel()
        await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)

    async def drain(self, grace: float) -> None:
        """Give the requests in progress ``grace`` seconds, then cancel the rest."""
        if self._tasks:
            log.info("finishing %d request(s), up to %g s", len(self._tasks), grace)
            await asyncio.wait(list(self._tasks.values()), timeout=grace)
        await self.cancel_all(SHUTTING_DOWN)

    def abort(self) -> list[asyncio.Task[None]]:
        """Cancel every request at once (the worker's last moment); the tasks to gather."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        return tasks

    # -- finals --------------------------------------------------------------------------

    def _refuse(self, conn: HubLink, request_id: str, reason: str, openai: bool) -> None:
        """Queue a refusal's final for the one sender, without letting a hub that does not
        read pile them up.

        Refusals go out one after another, each within :data:`REFUSAL_SEND_TIMEOUT`
        seconds. A hub that reads gets every one, however many; one that does not is
        given up on at the first timeout (what waits for it is dropped and counted), and
        at most :data:`MAX_PENDING_REFUSALS` wait meanwhile.
        """
        if self.refusals_pending >= MAX_PENDING_REFUSALS:
            self._store.count(None, unanswered=1)
            log.warning("[%s] the hub is not reading: this refusal was not sent", request_id)
            return
        self._refusals.append((conn, request_id, f"[error] {reason}", openai))
        if not self._refusing:
            self._refusing = True
            self._jobs.spawn(self._send_refusals())

    async def _send_refusals(self) -> None:
        try:
            while self._refusals:
                conn, request_id, final, openai = self._refusals.popleft()
                try:
                    async with asyncio.timeout(REFUSAL_SEND_TIMEOUT):
                        sent = await self._send_final(conn, request_id, final, openai,
                                                      refused=True)
                except TimeoutError:
                    self._give_up_refusals(conn, request_id)
                    continue
                if not sent:  # the connection is gone: the next one sends it
                    self._owe(request_id, final, openai)
        finally:
            self._refusing = False

    def _give_up_refusals(self, conn: HubLink, request_id: str) -> None:
        """The hub did not take a refusal in time: it is not reading this connection, so
        the refusals waiting for it are dropped, and counted, rather than each waited for."""
        waiting = [r for r in self._refusals if r[0] is conn]
        self._refusals = deque(r for r in self._refusals if r[0] is not conn)
        self._store.count(None, unanswered=1 + len(waiting))
        log.warning("[%s] the hub did not take the refusal within %g s; %d more refusals for "
                    "it were dropped", request_id, REFUSAL_SEND_TIMEOUT, len(waiting))

    def _owe(self, request_id: str, final: str, openai: bool) -> None:
        """Remember a final that could not be sent: the next connection sends it.

        A hub may keep a request open until its final arrives, on whichever
        connection (GhubAi has no request timeout), so a request the worker lost
        with its connection would otherwise hang its client for ever.
        """
        self._owed[request_id] = (final, openai)
        while len(self._owed) > MAX_OWED_FINALS:
            dropped, _ = self._owed.popitem(last=False)
            self._store.count(None, unanswered=1)
            log.warning("[%s] too many finals owed to the hub: this one is given up", dropped)

    def connected(self, conn: HubLink) -> None:
        """A new connection is open: send it the finals owed from lost ones."""
        if self._owed:
            self._jobs.spawn(self._pay_owed(conn))

    async def _pay_owed(self, conn: HubLink) -> None:
        while self._owed and not conn.closed:
            request_id, (final, openai) = next(iter(self._owed.items()))
            if not await self._send_final(conn, request_id, final, openai):
                return  # this connection is gone too: the next one tries again
            self._owed.pop(request_id, None)
            log.info("[%s] sent the final owed since the connection was lost", request_id)

    async def _send_final(self, conn: HubLink, request_id: str, text: str, openai: bool,
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

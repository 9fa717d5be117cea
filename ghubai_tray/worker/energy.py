"""The GPU's power sampled while the hub's requests run, and each request's share of it.

While at least one request runs, the GPU's draw is read every :data:`INTERVAL`
seconds (off the loop: a file or a library call); when a request ends, its share of
the energy drawn during its life is computed (core/energy.py: shared equally with the
requests running beside it) for its ledger row. Nothing is read while no request
runs, and nothing at all where no reading is available: the row's energy is then
empty, never a guess.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ghubai_tray.core.energy import JOULES_PER_WH, Sample, Span, shares

log = logging.getLogger("ghubai_tray.worker")

INTERVAL = 0.5
MAX_SAMPLES = 100_000  # a day of one request at two a second: the oldest go first
STEADY = Sample(0.0, 1.0)  # one watt for ever: energy shares become time shares


class EnergyMeter:
    """``begin(id)`` when a request starts running, ``end(id)`` when it ends: its Wh."""

    def __init__(self, read: Callable[[], float | None] | None, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._interval = interval
        self._clock = clock
        self._running: dict[str, float] = {}  # request id -> its start
        self._ended: list[Span] = []  # spans that may still share time with a running one
        self._samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def begin(self, request_id: str) -> None:
        self._running[request_id] = self._clock()
        if self._read is None:
            return  # no reading: the time is kept (the GPU-time budget), not the energy
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sample(),
                                                                name="energy-samples")

    def end(self, request_id: str) -> tuple[float | None, float]:
        """The Wh the request's share comes to (None when no reading was had), and its
        share of the GPU's time, in seconds: shared as the energy is, so the day's shares
        add up to the time at least one hub request ran (the GPU-time budget's)."""
        start = self._running.pop(request_id, None)
        if start is None:
            return None, 0.0
        now = self._clock()
        others = [Span(s, now) for s in self._running.values()]
        spans = [Span(start, now), *others, *self._ended]
        share = shares(self._samples, spans)[0]
        seconds = (shares([STEADY], spans)[0] or 0.0) * JOULES_PER_WH  # 1 W: Wh to seconds
        self._ended.append(spans[0])
        self._forget()
        return (round(share, 6) if share is not None else None), round(seconds, 3)

    def _forget(self) -> None:
        """Keep only what a running request may still need."""
        if not self._running:
            self._ended.clear()
            self._samples.clear()
            return
        oldest = min(self._running.values())
        self._ended = [s for s in self._ended if s.end > oldest]
        keep = [s for s in self._samples if s.at >= oldest]
        earlier = [s for s in self._samples if s.at < oldest][-1:]  # the draw at its start
        self._samples = (earlier + keep)[-MAX_SAMPLES:]

    async def _sample(self) -> None:
        assert self._read is not None
        while self._running:
            try:
                watts = await asyncio.to_thread(self._read)
            except Exception:  # a reading that fails is no reading, never a stopped request
                log.exception("the GPU's power could not be read")
                watts = None
            if watts is not None:
                self._samples.append(Sample(self._clock(), watts))
                del self._samples[:-MAX_SAMPLES]
            await asyncio.sleep(self._interval)

"""The GPU's energy, shared out among the requests it served: pure arithmetic.

The worker samples the GPU's power draw while requests run (NVML's power usage, or an
AMD card's ``hwmon`` reading). Between two samples the draw is taken to change
linearly (the trapezoid rule); each stretch of time is then cut where requests start
and end, and the energy of each piece is shared equally among the requests running
in it. Time with no request running is the owner's, and is nobody's share. So the
shares add up to exactly the energy drawn while the hub's requests ran, and two
requests running together each carry half of what the GPU drew meanwhile.

Everything here is pure: the caller gives the samples and the requests' times, all in
seconds on one monotonic clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

JOULES_PER_WH = 3600.0


@dataclass(frozen=True)
class Sample:
    at: float  # seconds
    watts: float


@dataclass(frozen=True)
class Span:
    start: float  # seconds
    end: float


def _watts_at(samples: Sequence[Sample], times: Sequence[float], moment: float) -> float:
    """The draw at ``moment``, linear between samples, held flat past either end
    (``samples`` in time order, ``times`` their times: found by bisection, as a long
    request's end is shared out over thousands of samples, on the worker's loop)."""
    if moment <= times[0]:
        return samples[0].watts
    index = bisect.bisect_left(times, moment)
    if index == len(samples):
        return samples[-1].watts
    before, after = samples[index - 1], samples[index]
    width = after.at - before.at
    if width <= 0:
        return after.watts
    fraction = min(1.0, max(0.0, (moment - before.at) / width))
    watts = before.watts + (after.watts - before.watts) * fraction
    # never outside the two readings, whatever the rounding
    return min(max(watts, min(before.watts, after.watts)), max(before.watts, after.watts))


def _pieces(samples: Sequence[Sample], spans: Sequence[Span]
            ) -> Iterator[tuple[float, list[int]]]:
    """Each stretch between two cuts (a sample, a start, an end) with spans running in it:
    its joules, and which spans run."""
    ordered = sorted(samples, key=lambda s: s.at)
    times = [s.at for s in ordered]
    cuts = sorted({p for s in spans for p in (s.start, s.end)} | set(times))
    for left, right in zip(cuts, cuts[1:], strict=False):
        running = [i for i, s in enumerate(spans) if s.start <= left and right <= s.end]
        if running and right > left:
            watts = (_watts_at(ordered, times, left) + _watts_at(ordered, times, right)) / 2
            yield watts * (right - left), running


def shares(samples: Sequence[Sample], spans: Sequence[Span]) -> list[float | None]:
    """Each span's share of the energy, in Wh; None for all when there is no sample (the
    draw is not known: the ledger leaves the column empty rather than guess)."""
    if not samples:
        return [None] * len(spans)
    totals = [0.0] * len(spans)
    for joules, running in _pieces(samples, spans):
        for index in running:
            totals[index] += joules / len(running)
    return [t / JOULES_PER_WH for t in totals]


def drawn_while_running(samples: Sequence[Sample], spans: Sequence[Span]) -> float:
    """The Wh the GPU drew while at least one span ran (what :func:`shares` adds up to)."""
    if not samples:
        return 0.0
    return sum(joules for joules, _ in _pieces(samples, spans)) / JOULES_PER_WH

"""``make bench-fleet``: many workers on one hub, the hub restarted, and what it sees.

Starts ``--workers`` headless workers (the real ``Worker``, each with its own machine
name and connection, built as the composition root builds one, without a tray, a
keyring or a ledger) in one process against one test hub and one Ollama stand-in; once
all are registered, restarts the hub (every socket dropped, the same port), and
measures:

- the time until every worker is registered again: p50, p99 and the last;
- the negotiations per second the hub saw, at the peak (one-second buckets), against
  what a herd with no jitter would bring (all of them in the first second): the spread
  of the first retry after a drop (``RECONNECT_SPREAD``) is what spreads them;
- each worker's memory and CPU while idle (the process's resident memory and CPU time
  over an idle minute, divided by the workers; the hub and stand-in included, so an
  upper bound).

Then the same figures extrapolated, on paper, to 10,000 donors on one hub.

    python -m bench.fleet [--quick] [--write] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import resource
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from bench.real_ollama import write_section
from bench.run import pct
from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.adapters.hub import HubConnection
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Stop
from ghubai_tray.worker import RECONNECT_SPREAD, Worker
from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn

BEGIN, END = "<!-- fleet:begin -->", "<!-- fleet:end -->"
MODELS = ("llama3.2:1b", "mistral:7b")
TOKEN = "fleet-token"
IDLE = 60.0  # seconds the idle cost is measured over


@asynccontextmanager
async def fleet(count: int, hub: GridHub, ollama: OllamaStandIn) -> AsyncIterator[list[Worker]]:
    """``count`` workers, running; stopped at the end."""
    base = Settings(hub_url=hub.url, ollama_url=ollama.url, discovery_interval=30.0)
    connector = functools.partial(HubConnection.open, server_timeout=30.0,
                                  keepalive_interval=15.0)
    workers = [Worker(replace(base, machine_name=f"donor-{i:05d}"),
                      lambda url: TokenSource(TOKEN, "the benchmark"), connector=connector,
                      poll_interval=30.0) for i in range(count)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.submit(Stop(grace=0.0))
        await asyncio.wait(tasks, timeout=60)


def registered(hub: GridHub, count: int) -> bool:
    machines = {n.machine_name for n in hub.nodes.values() if n.models == MODELS}
    return len(machines) == count


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(count: int, idle: float) -> dict[str, Any]:
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
    await hub.start()
    await ollama.start()
    before = _rss_mib()
    try:
        async with fleet(count, hub, ollama):
            started = time.monotonic()
            await hub.wait_until(lambda: registered(hub, count), 600, "the fleet")
            first_up = time.monotonic() - started
            rss, cpu = _rss_mib(), _cpu_s()
            await asyncio.sleep(idle)
            idle_cpu = (_cpu_s() - cpu) / idle
            seen = len(hub.http)
            restarted = time.monotonic()
            await hub.restart()
            await hub.wait_until(lambda: registered(hub, count), 600, "the fleet again")
            again = sorted(r.at - restarted for r in hub.registrations if r.at >= restarted
                           and r.models == MODELS)
            firsts: dict[str, float] = {}
            for r in hub.registrations:
                if r.at >= restarted and r.models == MODELS:
                    firsts.setdefault(r.machine_name, r.at - restarted)
            back = sorted(firsts.values())
            negotiations = [r.at - restarted for r in hub.http[seen:]
                            if r.path.endswith("/negotiate")]
    finally:
        await hub.stop()
        await ollama.stop()
    buckets = Counter(int(t) for t in negotiations)
    return {"count": count, "first_up": first_up, "back": back, "registrations": len(again),
            "negotiations": len(negotiations), "peak": max(buckets.values(), default=0),
            "peak_second": max(buckets, key=lambda k: buckets[k], default=0),
            "spread": max(negotiations, default=0.0),
            "rss_each_mib": (rss - before) / count, "cpu_each": idle_cpu / count}


def table(found: dict[str, Any]) -> list[str]:
    count, back = found["count"], found["back"]
    per_s = found["peak"]
    scale = 10_000 / count
    share = per_s / max(found["negotiations"], 1)
    even = 1 / RECONNECT_SPREAD
    verdict = ("That is a thundering herd: most of the fleet knocked in the same second." if
               share > 0.5 else
               f"After a drop each worker's first retry comes anywhere in the next "
               f"{RECONNECT_SPREAD:g} s, which spreads them (an even spread would put {even:.0%} "
               "in each second); a hub that cannot take that rate would need a wider window.")
    return [
        f"{count} workers in one process (each its own hub connection), one test hub, one "
        "Ollama stand-in; the hub restarted once all were registered.",
        "",
        "| figure | measured |",
        "|---|---:|",
        f"| all registered at the start | {found['first_up']:.1f} s |",
        f"| registered again after the restart: p50 | {statistics.median(back):.2f} s |",
        f"| p99 | {pct(back, 99):.2f} s |",
        f"| the last | {back[-1]:.2f} s |",
        f"| negotiations after the restart | {found['negotiations']} over "
        f"{found['spread']:.1f} s |",
        f"| peak negotiations in one second | {per_s}/s (second {found['peak_second']}) |",
        f"| a herd without jitter would bring | {count}/s |",
        f"| memory per idle worker | {found['rss_each_mib']:.2f} MiB |",
        f"| CPU per idle worker | {found['cpu_each'] * 1000:.2f} ms/s |",
        "",
        f"On paper, for 10,000 donors on one hub (× {scale:g}): {share:.0%} of the "
        f"reconnections came in the busiest second here, so the hub would see about "
        f"{per_s * scale:,.0f} negotiations in one second, every donor back within about "
        f"{back[-1]:.0f} s (plus the hub's own time per negotiation, which this test hub "
        f"does not have). {verdict} While idle, the donors' keep-alives cost the hub "
        f"{10_000 / 15:,.0f} pings a second (one per worker every 15 s), and each donor's "
        f"worker about {found['rss_each_mib']:.1f} MiB and {found['cpu_each'] * 1000:.1f} ms "
        "of CPU a second here (its model server's polling included).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="many workers on one hub, the hub restarted")
    parser.add_argument("--workers", type=int, default=0, help="how many (default: 300, "
                        "100 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer workers, a shorter idle")
    parser.add_argument("--write", action="store_true", help="keep the table in RESULTS.md")
    arguments = parser.parse_args()
    count = arguments.workers or (100 if arguments.quick else 300)
    found = asyncio.run(measure(count, 10.0 if arguments.quick else IDLE))
    rows = table(found)
    print("\n".join(rows))
    if arguments.write:
        write_section(BEGIN, END, "### A fleet: many workers, the hub restarted", rows,
                      f"`python -m bench.fleet --workers {count}`")


if __name__ == "__main__":
    main()

"""The owner's rules hold sharing without anyone pressing Pause: the schedule.

The worker runs between the test hub and the Ollama stand-in with an injected wall
clock (a mutable one, moved by the test), so "now" is whatever the test says.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from ghubai_tray.core.schedule import parse
from ghubai_tray.core.state import Pause, PauseMode, ShareAnyway, State
from tests.worker_bed import error_of, running_bed, with_settings

ZONE = timezone(timedelta(hours=1))
WEDNESDAY_NOON = datetime(2026, 12, 2, 12, 0, tzinfo=ZONE)
MODELS = ("llama3.2:1b", "mistral:7b")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_outside_the_schedule_nothing_is_shared_and_it_says_why() -> None:
    clock = Clock(WEDNESDAY_NOON)
    evenings = with_settings(schedule=parse("Mon-Fri 18:00-23:30"))
    async with running_bed(settings=evenings, clock=clock) as bed:
        await bed.registered()
        snap = await bed.worker.wait_for(lambda s: s.held_by == "schedule", 10, "the hold")
        assert snap.held_until == WEDNESDAY_NOON.replace(hour=18)
        assert snap.state is State.PAUSED and snap.offered_models == ()
        node = next(iter(bed.hub.nodes.values()))  # a hub that sends one anyway
        await bed.hub.invoke(node.connection_id, "RequestInference", {
            "requestId": "r1", "model": "llama3.2:1b", "endpointUri": "/api/chat",
            "requestBody": json.dumps({"model": "llama3.2:1b", "messages": []})})
        await bed.hub.wait_until(lambda: bed.hub.ignored_chunks, 10, "the refusal")
        assert error_of(bed.hub.ignored_chunks[0]["tokenFragment"]) == (
            "this machine is not sharing now (its owner's schedule)")


async def test_inside_the_schedule_it_shares_and_follows_the_clock() -> None:
    clock = Clock(WEDNESDAY_NOON.replace(hour=19))
    evenings = with_settings(schedule=parse("Mon-Fri 18:00-23:30"))
    async with running_bed(settings=evenings, clock=clock, rules_check=0.05) as bed:
        await bed.registered(*MODELS)
        assert bed.worker.snapshot.held_by is None
        clock.now = WEDNESDAY_NOON.replace(hour=23, minute=31)  # the worker looks often
        await bed.registered()
        snap = bed.worker.snapshot
        assert snap.held_by == "schedule"
        assert snap.held_until == WEDNESDAY_NOON.replace(day=3, hour=18)


async def test_share_anyway_sets_the_rules_aside_for_the_hour_then_they_apply_again() -> None:
    clock = Clock(WEDNESDAY_NOON)
    evenings = with_settings(schedule=parse("Mon-Fri 18:00-23:30"))
    async with running_bed(settings=evenings, clock=clock, rules_check=0.05) as bed:
        await bed.worker.wait_for(lambda s: s.held_by == "schedule", 10, "the hold")
        bed.worker.submit(ShareAnyway(WEDNESDAY_NOON + timedelta(hours=1)))
        await bed.registered(*MODELS)
        assert bed.worker.snapshot.held_by is None
        clock.now = WEDNESDAY_NOON + timedelta(hours=1, minutes=1)
        await bed.registered()
        snap = bed.worker.snapshot
        assert snap.held_by == "schedule" and snap.rules_overridden_until is None


async def test_a_manual_pause_wins_over_share_anyway() -> None:
    clock = Clock(WEDNESDAY_NOON)
    evenings = with_settings(schedule=parse("Mon-Fri 18:00-23:30"))
    async with running_bed(settings=evenings, clock=clock, rules_check=0.05) as bed:
        bed.worker.submit(Pause(PauseMode.NOW))
        bed.worker.submit(ShareAnyway(WEDNESDAY_NOON + timedelta(hours=1)))
        snap = await bed.worker.wait_for(lambda s: s.rules_overridden_until is not None, 10,
                                         "the override")
        assert snap.paused and snap.offered_models == ()
        await bed.registered()

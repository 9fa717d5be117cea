"""The owner's rules hold sharing without anyone pressing Pause: the schedule.

The worker runs between the test hub and the Ollama stand-in with an injected wall
clock (a mutable one, moved by the test), so "now" is whatever the test says.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx

from ghubai_tray.adapters.desktop_signals import X11, DesktopSignals
from ghubai_tray.core.schedule import parse
from ghubai_tray.core.state import Pause, PauseMode, ShareAnyway, State
from tests.adapters.test_desktop_signals import GAME, needs_x
from tests.paths import ARTIFACTS
from tests.testbed.desktop import real_desktop, wait_for
from tests.testbed.ollama import OllamaStandIn
from tests.worker_bed import Bed, error_of, running_bed, with_settings

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


# -- owner first: the owner's own chat with Ollama comes before the hub's ------------


async def _local_chat(bed: Bed, model: str, **options: str) -> None:
    """A chat of the owner's, straight to Ollama as any local client sends it."""
    async with httpx.AsyncClient(base_url=bed.ollama.url) as client:
        response = await client.post("/api/chat", json={
            "model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}],
            **options})
        assert response.status_code == 200


def _looks(bed: Bed) -> int:
    return len([r for r in bed.ollama.requests if r.path == "/api/ps"])


async def _chat_until_held(bed: Bed, model: str = "mistral:7b") -> float:
    """The owner chats, as people do, a message every few seconds, until sharing is held;
    when the last message went. (A message of the owner's in the same look as a hub
    request on the same model, or the next look, is taken for the worker's: a later one
    is seen.)"""
    for _ in range(5):
        await _local_chat(bed, model)
        sent = time.monotonic()
        try:
            await bed.worker.wait_for(lambda s: s.held_by == "your use of Ollama", 3,
                                      "owner first to hold sharing")
            return sent
        except TimeoutError:
            continue
    raise AssertionError("five chats of the owner's did not hold sharing")


async def test_a_local_chat_stops_sharing_within_seconds_until_the_hold_has_passed() -> None:
    hold = 3.0
    async with running_bed(settings=with_settings(owner_first_hold=hold), rules_look=0.2,
                           owner_look=0.2) as bed:
        await bed.registered(*MODELS)
        served = await bed.request("/api/chat", {
            "model": "llama3.2:1b", "messages": [{"role": "user", "content": "x"}]})
        await served.wait()  # the hub's own request: not the owner's use
        looks = _looks(bed)
        await bed.ollama.wait_until(lambda: _looks(bed) >= looks + 3, 10, "three more looks")
        assert bed.worker.snapshot.held_by is None
        seen = await _chat_until_held(bed)
        snap = bed.worker.snapshot
        assert snap.offered_models == () and snap.held_until is not None
        await bed.registered()  # the hub sees an empty registration
        # Sharing comes back by itself, and not before the hold time has passed.
        await bed.registered(*MODELS)
        assert time.monotonic() - seen >= hold - 0.5
        assert bed.worker.snapshot.held_by is None
        assert "mistral:7b" not in bed.ollama.unloads  # the owner's model stays loaded


async def test_the_look_before_a_hub_request_sees_the_chat_it_would_cover() -> None:
    """The owner's chat ends, then a hub request on the same model moves its expiry over
    the chat's before the next regular look (a minute away here): the look the worker makes
    before forwarding the hub's request sees the chat all the same."""
    async with running_bed(settings=with_settings(owner_first_hold=60.0), rules_look=60.0,
                           owner_look=60.0) as bed:
        await bed.registered(*MODELS)
        await (await bed.request("/api/chat", {
            "model": "mistral:7b", "messages": [{"role": "user", "content": "x"}]},
            model="mistral:7b")).wait()
        assert bed.worker.snapshot.held_by is None  # the hub's own request is not the owner's
        await _local_chat(bed, "mistral:7b", keep_alive="10m")  # an expiry not the worker's
        await (await bed.request("/api/chat", {
            "model": "mistral:7b", "messages": [{"role": "user", "content": "x"}]},
            model="mistral:7b")).wait()
        await bed.worker.wait_for(lambda s: s.held_by == "your use of Ollama", 10,
                                  "the look before the request to see the owner's chat")
        await bed.registered()


async def test_a_server_slow_to_say_what_it_holds_delays_a_hub_request_a_second_at_most(
) -> None:
    async with running_bed(rules_look=60.0, owner_look=60.0) as bed:
        await bed.registered(*MODELS)
        bed.ollama.ps_delay = 30.0
        started = time.monotonic()
        served = await bed.request("/api/chat", {
            "model": "llama3.2:1b", "messages": [{"role": "user", "content": "x"}]})
        await served.wait(20)
        assert json.loads(served.fragments[-1])["done"] is True
        assert time.monotonic() - started < 10  # the look waited 1 s; the server, 30
        bed.ollama.ps_delay = 0.0


async def test_owner_first_off_ignores_local_chats() -> None:
    async with running_bed(settings=with_settings(owner_first=False), rules_look=0.1,
                           owner_look=0.1) as bed:
        await bed.registered(*MODELS)
        looks = len([r for r in bed.ollama.requests if r.path == "/api/ps"])
        await _local_chat(bed, "mistral:7b")
        served = await bed.request("/api/chat", {
            "model": "llama3.2:1b", "messages": [{"role": "user", "content": "x"}]})
        await served.wait()
        assert bed.worker.snapshot.held_by is None
        assert len([r for r in bed.ollama.requests if r.path == "/api/ps"]) == looks  # no looks


# -- game mode: a full-screen app in front, on a real X server -------------------


@needs_x
async def test_a_game_going_full_screen_pauses_sharing_now_and_ends_running_requests() -> None:
    ollama = OllamaStandIn(token_delay=0.05, reply_tokens=["word "] * 10_000)
    with real_desktop(ARTIFACTS / "rules", tray_host=False, window_manager=True) as desk:
        game = subprocess.Popen([sys.executable, "-c", GAME], env={**desk.env})
        signals = DesktopSignals(display=desk.env["DISPLAY"])
        try:
            await asyncio.to_thread(wait_for, "the game's window",
                                    lambda: desk.managed("a game"), 30)
            async with running_bed(ollama=ollama, desktop=signals, rules_look=0.2) as bed:
                await bed.registered(*MODELS)
                long = await bed.request("/api/chat", {
                    "model": "llama3.2:1b", "messages": [{"role": "user", "content": "long"}]})
                await anext(aiter(long.stream()))  # generating now
                # Each step seen on the display by a reader of the test's own first, so
                # that a slow window manager is not taken for the worker's failure.
                seen = X11(desk.env["DISPLAY"])
                try:
                    desk.run("wmctrl", "-a", "a game")
                    await asyncio.to_thread(wait_for, "the game in front",
                                            lambda: seen.fullscreen() is False, 30)
                    desk.run("wmctrl", "-r", "a game", "-b", "add,fullscreen")
                    await asyncio.to_thread(wait_for, "the game full screen",
                                            lambda: seen.fullscreen() is True, 30)
                finally:
                    seen.close()
                await long.wait(30)
                assert error_of(long.chunks[-1]["tokenFragment"]) == (
                    "this machine stopped sharing (a full-screen app is running on it)")
                snap = await bed.worker.wait_for(lambda s: s.held_by == "full-screen app", 10,
                                                 "the hold")
                assert snap.state is State.PAUSED
                await bed.registered()
                desk.run("wmctrl", "-r", "a game", "-b", "remove,fullscreen")
                await bed.registered(*MODELS, timeout=60)  # after SETTLE (30 s) clear
        finally:
            signals.close()
            game.terminate()
            game.wait(10)

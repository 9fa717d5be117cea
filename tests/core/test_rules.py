"""The one decision: every rule, the hysteresis, the override (hypothesis and examples)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core import schedule
from ghubai_tray.core.local_use import expiry_seconds, local_use, model_key
from ghubai_tray.core.rules import (
    HUB_WORDS,
    PAUSES_NOW,
    SETTLE,
    Act,
    Decision,
    Memory,
    Rule,
    Signals,
    decide,
    hub_words,
)
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.texts import HELD_BY, RULE_NAMES, held

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ALL_ON = Settings(owner_first=True, pause_when_fullscreen=True, pause_when_gpu_busy=True,
                  share_when_idle_only=True, idle_minutes=10, pause_on_battery=True)
maybe = st.none() | st.booleans()
signals = st.builds(Signals, st.just(NOON), st.booleans(), maybe, maybe,
                    st.none() | st.floats(0, 7200), maybe)
settings = st.builds(Settings, owner_first=st.booleans(), pause_when_fullscreen=st.booleans(),
                     pause_when_gpu_busy=st.booleans(), share_when_idle_only=st.booleans(),
                     idle_minutes=st.integers(1, 60), pause_on_battery=st.booleans(),
                     owner_first_hold=st.floats(0, 3600))


def test_nothing_holds_when_nothing_is_known() -> None:
    assert decide(ALL_ON, Signals(NOON)).act is Act.SHARE


def test_each_rule_holds_with_its_own_act_and_reason() -> None:
    cases = [(Signals(NOON, fullscreen=True), Rule.FULLSCREEN, Act.PAUSE_NOW),
             (Signals(NOON, gpu_busy=True), Rule.GPU_BUSY, Act.PAUSE_NOW),
             (Signals(NOON, local_use=True), Rule.OWNER_FIRST, Act.FINISH_THEN_PAUSE),
             (Signals(NOON, idle_seconds=30), Rule.AWAY, Act.FINISH_THEN_PAUSE),
             (Signals(NOON, on_battery=True), Rule.BATTERY, Act.FINISH_THEN_PAUSE)]
    for sig, rule, act in cases:
        decision = decide(ALL_ON, sig)
        assert (decision.rule, decision.act) == (rule, act)
        off = replace(ALL_ON, owner_first=False, pause_when_fullscreen=False,
                      pause_when_gpu_busy=False, share_when_idle_only=False,
                      pause_on_battery=False)
        assert decide(off, sig).act is Act.SHARE


def test_idle_long_enough_shares_and_a_game_wins_over_a_chat() -> None:
    assert decide(ALL_ON, Signals(NOON, idle_seconds=600)).act is Act.SHARE
    both = decide(ALL_ON, Signals(NOON, local_use=True, fullscreen=True))
    assert (both.rule, both.act) == (Rule.FULLSCREEN, Act.PAUSE_NOW)


def test_owner_first_holds_for_the_hold_time_after_the_last_local_use() -> None:
    first = decide(ALL_ON, Signals(NOON, local_use=True))
    assert first.until == NOON + timedelta(seconds=300)
    later = decide(ALL_ON, Signals(NOON + timedelta(seconds=299)), first.memory)
    assert later.rule is Rule.OWNER_FIRST
    again = decide(ALL_ON, Signals(NOON + timedelta(seconds=120), local_use=True), first.memory)
    assert again.until == NOON + timedelta(seconds=420)  # each use starts the hold over
    assert decide(ALL_ON, Signals(NOON + timedelta(seconds=300)), first.memory).act is Act.SHARE


def test_a_flicker_does_not_flap_the_registration() -> None:
    on = decide(ALL_ON, Signals(NOON, fullscreen=True))
    off = decide(ALL_ON, Signals(NOON + timedelta(seconds=1), fullscreen=False), on.memory)
    assert off.rule is Rule.FULLSCREEN  # still held: clear for less than SETTLE
    assert off.next_look == NOON + SETTLE
    gone = decide(ALL_ON, Signals(NOON + SETTLE, fullscreen=False), off.memory)
    assert gone.act is Act.SHARE and not gone.memory.last_held


def test_the_schedule_is_a_rule_with_its_next_change() -> None:
    evenings = replace(ALL_ON, schedule=schedule.parse("18:00-23:00"))
    decision = decide(evenings, Signals(NOON))
    assert (decision.rule, decision.act) == (Rule.SCHEDULE, Act.FINISH_THEN_PAUSE)
    assert decision.until == decision.next_look == NOON.replace(hour=18)


def test_share_anyway_sets_every_rule_aside_until_it_ends() -> None:
    hour = NOON + timedelta(hours=1)
    decision = decide(ALL_ON, Signals(NOON, fullscreen=True, local_use=True), Memory(), hour)
    assert decision.act is Act.SHARE and decision.next_look is not None
    assert decision.next_look <= hour
    assert Rule.FULLSCREEN in decision.memory.last_held  # the signals are still followed
    ended = decide(ALL_ON, Signals(hour), decision.memory, hour)
    assert ended.act is Act.SHARE  # an hour later the game is over, the chat too


@given(settings, signals)
def test_the_decision_is_consistent(s: Settings, sig: Signals) -> None:
    decision = decide(s, sig)
    assert (decision.act is Act.SHARE) == (decision.rule is None)
    if decision.rule is not None:
        assert (decision.act is Act.PAUSE_NOW) == (decision.rule in PAUSES_NOW)
        assert hub_words(decision.rule.value) and "you" not in hub_words(decision.rule.value)
        assert held(decision.rule.value, None).startswith("Paused")
    # Nothing but a signal the owner switched on can hold sharing.
    unknown = Signals(sig.now)
    assert decide(s, unknown).act is Act.SHARE


@given(settings, st.lists(signals, min_size=1, max_size=12), st.integers(1, 120))
def test_once_held_a_rule_lets_go_only_after_its_release_time(
        s: Settings, looks: list[Signals], step: int) -> None:
    memory, previous = Memory(), Decision(Act.SHARE)
    for i, sig in enumerate(looks):
        now = NOON + timedelta(seconds=i * step)
        decision = decide(s, replace(sig, now=now), memory)
        for rule, when in previous.memory.last_held.items():
            release = (timedelta(seconds=s.owner_first_hold) if rule is Rule.OWNER_FIRST
                       else timedelta(0) if rule is Rule.AWAY else SETTLE)
            if now < when + release:
                assert decision.act is not Act.SHARE, (rule, when, now)
        memory, previous = decision.memory, decision


def test_local_use_is_told_from_the_workers_own() -> None:
    before = {"llama3.2:latest": "2026-12-02T12:05:00Z"}
    moved = {"llama3.2:latest": "2026-12-02T12:06:00Z"}
    assert not local_use(None, moved, [])  # the first look is a baseline
    assert local_use(before, moved, [])
    assert not local_use(before, moved, ["Llama3.2"])  # the worker used it meanwhile
    assert local_use(before, {**before, "qwen3:8b": "0001-01-01T00:00:00Z"}, ["llama3.2"])
    assert not local_use(before, {}, [])  # unloaded: no use
    assert not local_use(before, dict(before), [])


def test_an_expiry_the_workers_use_would_not_leave_is_somebody_elses() -> None:
    before = {"llama3.2:latest": "2026-12-02T12:05:00Z"}
    moved = {"llama3.2:latest": "2026-12-02T12:10:00.123456789Z"}  # Ollama's nanoseconds
    ours = expiry_seconds("2026-12-02T12:10:01+00:00")
    assert ours is not None
    assert not local_use(before, moved, {"llama3.2:latest": frozenset({ours})})
    # the owner's chat ended 10 minutes later than the worker's use would leave it
    assert local_use(before, moved, {"llama3.2:latest": frozenset({ours - 600})})
    # a use whose expiry is unknown (running, or Ollama's default) still covers it
    assert not local_use(before, moved, {"llama3.2:latest": frozenset({ours - 600, None})})
    # an expiry written in local time with an offset reads the same
    local = {"llama3.2:latest": "2026-12-02T13:10:00.5+01:00"}
    assert not local_use(before, local, {"llama3.2:latest": frozenset({ours})})
    assert expiry_seconds("not a time") is None
    assert not local_use(before, {"llama3.2:latest": "garbled"},
                         {"llama3.2:latest": frozenset({ours})})


names = st.sampled_from(["llama3.2", "llama3.2:latest", "qwen3:8b", "me/model:q4", "Gemma"])
expiries = st.dictionaries(names.map(model_key), st.sampled_from(["a", "b", "c"]), max_size=4)


@given(expiries, expiries, st.sets(names))
def test_local_use_never_blames_the_owner_for_the_workers_models(
        before: dict[str, str], now: dict[str, str], used: set[str]) -> None:
    if local_use(before, now, used):
        changed = {m for m, e in now.items() if before.get(m) != e}
        assert changed - {model_key(m) for m in used}
    if not {m for m, e in now.items() if before.get(m) != e} - {model_key(m) for m in used}:
        assert not local_use(before, now, used)


def test_every_rule_has_its_own_words_for_the_owner_and_for_the_hub() -> None:
    assert set(HELD_BY) == set(RULE_NAMES) == {rule.value for rule in Rule}
    assert set(HUB_WORDS) == set(Rule)
    assert held("full-screen app", "18:00") == "Paused: a full-screen app is running"
    assert held("schedule", "18:00") == "Paused until 18:00 (schedule)"

"""doctor judges the outcome: a pause, or rules that share nothing, is not "all is well"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ghubai_tray.core.errors import AuthRejected, HubUnreachable, TokenNeeded
from ghubai_tray.core.schedule import parse
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.tags import LocalModel
from ghubai_tray.doctor import (
    Check,
    Level,
    connection_report,
    hub_check,
    judged_token,
    rules_check,
    sharing_check,
    tls_check,
    verdict,
)
from tests.testbed.hub import GridHub

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MODELS = (LocalModel("llama3.2:1b"), LocalModel("mistral:7b"),
          LocalModel("gpt-oss:120b-cloud", remote=True))
FINE = Check(Level.OK, "Ollama", "2 model(s)")


def test_the_models_that_would_really_be_shared_are_named() -> None:
    check = sharing_check(Settings(), MODELS, NOW)
    assert check is not None and check.level is Level.OK
    assert check.detail == "2 models would be shared: llama3.2:1b, mistral:7b"
    assert verdict([FINE, check]) == ("All is well: this machine is ready to share its models.", 0)


def test_rules_that_share_nothing_fail_with_the_way_out() -> None:
    settings = Settings(share_new_models=False, shared_models=("phi3:mini",))
    check = sharing_check(settings, MODELS, NOW)
    assert check is not None and check.level is Level.FAIL
    assert "none of Ollama's 3 models would be shared" in check.detail
    assert "choose some under Models in the menu" in check.detail
    assert check.more == ("shared_models names phi3:mini, which Ollama does not have",)
    assert verdict([FINE, check]) == ("1 problem to fix: sharing.", 1)
    only_cloud = sharing_check(Settings(), MODELS[2:], NOW)
    assert only_cloud is not None and only_cloud.level is Level.FAIL
    assert "cloud model" in only_cloud.detail


def test_a_named_model_ollama_lacks_is_a_warning_beside_what_is_shared() -> None:
    check = sharing_check(Settings(shared_models=("phi3:mini", "MISTRAL:7b")), MODELS, NOW)
    assert check is not None and check.level is Level.WARN
    assert check.more == ("shared_models names phi3:mini, which Ollama does not have",)


def test_a_pause_is_said_with_its_end_and_fails_the_verdict() -> None:
    until = NOW + timedelta(hours=3)
    check = sharing_check(Settings(paused=True, paused_until=until), MODELS, NOW)
    assert check is not None and check.level is Level.FAIL and check.name == "paused"
    assert f"until {until.astimezone():%a %d %b %H:%M}" in check.detail
    assert "Resume in the menu ends it" in check.detail
    assert verdict([FINE, check]) == (
        "Ready, but paused: nothing is shared until the pause ends.", 1)
    forever = sharing_check(Settings(paused=True), None, NOW)
    assert forever is not None and "until you choose Resume" in forever.detail


def test_a_pause_whose_end_has_passed_is_over() -> None:
    settings = replace(Settings(), paused=True, paused_until=NOW - timedelta(minutes=1))
    check = sharing_check(settings, MODELS, NOW)
    assert check is not None and check.level is Level.OK


def test_without_ollamas_answer_nothing_is_claimed() -> None:
    assert sharing_check(Settings(), None, NOW) is None


async def test_an_https_url_for_an_http_hub_gets_the_http_hint_and_no_tls_ok() -> None:
    hub = GridHub()
    await hub.start()
    try:
        settings = Settings(hub_url=hub.url.replace("http://", "https://"))
        line, failure = await hub_check(settings, None)
        tls = tls_check(replace(settings), failure)
    finally:
        await hub.stop()
    assert line.level is Level.FAIL and "the secure connection" in line.detail
    assert line.more == (f"a hub answers on plain http at this address: if it is yours, set "
                         f"the Hub URL to {hub.url} (the token then crosses the network "
                         "unencrypted)",)
    assert tls.level is Level.WARN and tls.detail.startswith("not verified")


async def test_test_connection_shows_the_fix_a_probe_found() -> None:
    """The Settings window's Test connection left the hints out ("one line each"): the
    owner who typed 127.0.0.1:5080 (completed to https://) was not told to try http://.
    (The report runs its own event loop, as the window's thread does: on a thread here.)"""
    import asyncio

    hub = GridHub()
    await hub.start()
    try:
        settings = Settings(hub_url=hub.url.replace("http://", "https://"),
                            ollama_url="http://127.0.0.1:9")
        report, ok = await asyncio.to_thread(connection_report, settings, "any-token")
    finally:
        await hub.stop()
    assert not ok
    lines = report.splitlines()
    hub_line = next(i for i, line in enumerate(lines) if line.startswith("[FAIL] hub:"))
    assert lines[hub_line + 1].strip().startswith(
        f"a hub answers on plain http at this address: if it is yours, set the Hub URL to "
        f"{hub.url}")


async def test_a_hub_url_without_its_path_gets_the_gridhub_hint() -> None:
    hub = GridHub()
    await hub.start()
    try:
        for url in (hub.base, hub.base + "/", hub.base + "/wrong"):
            line, _ = await hub_check(Settings(hub_url=url), None)
            assert line.level is Level.FAIL and "(HTTP 404)" in line.detail
            assert line.more == (f"the hub answers at {hub.url}: set that as the Hub URL",)
        line, _ = await hub_check(Settings(hub_url=hub.url.replace("127.0.0.1", "localhost")
                                           .replace("/gridhub", "/nothing/gridhub")), None)
        assert line.more == ()  # a /gridhub path already: nothing to guess
    finally:
        await hub.stop()


def test_a_schedule_that_holds_sharing_now_is_not_all_is_well() -> None:
    evenings = Settings(schedule=parse("Mon-Fri 18:00-23:30"),
                        sources={"schedule": "the variable GHUBAI_SCHEDULE"})
    check = rules_check(evenings, Readings(), NOW)  # Wednesday noon
    assert check.level is Level.FAIL
    assert check.detail == ("the schedule (Mon,Tue,Wed,Thu,Fri 18:00-23:30, the variable "
                            "GHUBAI_SCHEDULE) holds sharing now: the hub gets no models until "
                            "Wed 02 Dec 18:00")
    assert verdict([FINE, check])[1] == 1
    inside = rules_check(evenings, Readings(), NOW.replace(hour=19))
    assert inside.level is Level.INFO
    assert inside.detail.endswith("schedule (Mon,Tue,Wed,Thu,Fri 18:00-23:30); none holds "
                                  "sharing now")
    # one verdict: the models line says only what would be shared
    assert sharing_check(evenings, MODELS, NOW) == sharing_check(Settings(), MODELS, NOW)


def test_a_token_is_ok_only_once_the_hub_accepted_it() -> None:
    found = Check(Level.OK, "token", "from the OS keyring")
    assert judged_token(found, "t", None) == Check(Level.OK, "token",
                                                   "from the OS keyring; the hub accepted it")
    refused = judged_token(found, "t", AuthRejected("the hub refused the token"))
    assert refused.level is Level.FAIL and "the hub refused it: replace it" in refused.detail
    withheld = judged_token(found, "t", TokenNeeded("the hub at h needs a provider token"))
    assert withheld.level is Level.INFO and "not sent" in withheld.detail
    unreached = judged_token(found, "t", HubUnreachable("nothing answers"))
    assert unreached.level is Level.INFO and "not verified" in unreached.detail
    none = Check(Level.WARN, "token", "none is set")
    assert judged_token(none, None, None).detail == "none set, and this hub needs none"
    assert judged_token(none, None, HubUnreachable("x")) == none
    needed = judged_token(none, None, TokenNeeded("the hub at h needs a provider token"))
    assert needed == Check(Level.FAIL, "token", "none is set, and this hub needs one")
    keyring_broken = Check(Level.FAIL, "token", "the OS keyring cannot be read")
    assert judged_token(keyring_broken, None, TokenNeeded("x")) == keyring_broken


class Readings:
    """What the desktop would say (the real readings are tested on a real X server and
    under Wine in tests/adapters/test_desktop_signals.py); here, doctor's judgment."""

    def __init__(self, fullscreen: bool | None = None, battery: bool | None = None) -> None:
        self._fullscreen, self._battery = fullscreen, battery

    def fullscreen(self) -> bool | None:
        return self._fullscreen

    def idle_seconds(self) -> float | None:
        return None

    def on_battery(self) -> bool | None:
        return self._battery

    def gpu_busy(self) -> bool | None:
        return None


def test_doctor_lists_the_rules_and_fails_while_one_holds_sharing() -> None:
    quiet = rules_check(Settings(), Readings(fullscreen=False, battery=False))
    assert quiet.level is Level.INFO
    assert quiet.detail == ("on: owner first (300 s hold), pause when full screen, "
                            "pause on battery; none holds sharing now")
    unknown = rules_check(Settings(pause_when_gpu_busy=True), Readings())
    assert "pause when the GPU is busy (not available on this computer)" in unknown.detail
    assert "pause when full screen (not available on this computer)" in unknown.detail
    game = rules_check(Settings(), Readings(fullscreen=True))
    assert game.level is Level.FAIL
    assert game.detail.startswith("Paused: a full-screen app is running: the hub gets no models")
    off = Settings(owner_first=False, pause_when_fullscreen=False, pause_on_battery=False)
    assert rules_check(off, Readings(fullscreen=True)).detail == "on: none; none holds sharing now"

"""doctor judges the outcome: a pause, or rules that share nothing, is not "all is well"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ghubai_tray.config import Settings
from ghubai_tray.doctor import Check, Level, sharing_check, verdict
from ghubai_tray.tags import LocalModel

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MODELS = (LocalModel("llama3.2:1b"), LocalModel("mistral:7b"),
          LocalModel("gpt-oss:120b-cloud", remote=True))
FINE = Check(Level.OK, "Ollama", "2 model(s)")


def test_the_models_that_would_really_be_shared_are_named() -> None:
    check = sharing_check(Settings(), MODELS, NOW)
    assert check is not None and check.level is Level.OK
    assert check.detail == "2 model(s) would be shared: llama3.2:1b, mistral:7b"
    assert verdict([FINE, check]) == ("All is well: this machine is ready to share its models.", 0)


def test_rules_that_share_nothing_fail_with_the_way_out() -> None:
    settings = Settings(share_new_models=False, shared_models=("phi3:mini",))
    check = sharing_check(settings, MODELS, NOW)
    assert check is not None and check.level is Level.FAIL
    assert "none of Ollama's 3 model(s) would be shared" in check.detail
    assert "choose some under Models in the menu" in check.detail
    assert check.more == ("shared_models names phi3:mini, which Ollama does not have",)
    assert verdict([FINE, check]) == ("1 problem(s) to fix: sharing.", 1)
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

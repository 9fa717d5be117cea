"""Settings layering, errors that name the setting and its source, atomic writes."""

from __future__ import annotations

import os
import socket
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ghubai_tray.adapters.config import load_settings, save_settings
from ghubai_tray.core.errors import ConfigError
from ghubai_tray.core.settings import DEFAULT_HUB_URL, SETTINGS, Settings


def test_defaults_are_the_seeds(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "none.toml", environ={})
    assert (s.hub_url, s.ollama_url, s.allow_invalid_certs) == (
        "https://localhost:7197/gridhub", "http://localhost:11434", False)
    assert s.machine_name == socket.gethostname()
    assert (s.discovery_interval, s.max_concurrent_requests, s.max_request_body) == (
        30.0, 2, 30_000_000)
    assert s.share_new_models and not s.paused and s.source("hub_url") == "default"


def test_every_setting_has_a_variable_a_flag_and_a_default() -> None:
    defaults = Settings()
    for s in SETTINGS:
        assert s.env and s.flag.startswith("--") and s.help
        assert s.default is None or getattr(defaults, s.key) == s.default, s.key


def test_layers_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('hub_url = "https://file.example/gridhub"\nmax_concurrent_requests = 3\n'
                    'idle_timeout = 42\nmachine_name = "from-file"\n')
    env = {"HUB_URL": "https://env.example/gridhub", "GHUBAI_MAX_CONCURRENT_REQUESTS": "4"}
    s = load_settings(path, env, {"max_concurrent_requests": "5"})
    assert s.hub_url == "https://env.example/gridhub"
    assert s.max_concurrent_requests == 5 and s.idle_timeout == 42.0
    assert s.machine_name == "from-file"
    assert s.source("hub_url") == "the variable HUB_URL"
    assert s.source("max_concurrent_requests") == "the flag --max-concurrent-requests"
    assert s.source("idle_timeout") == f"the config file {path}"


@pytest.mark.parametrize("raw,expected", [("1", True), ("0", False), ("true", True),
                                          ("No", False), ("on", True), ("", False)])
def test_allow_invalid_certs_reads_like_the_seed(raw: str, expected: bool, tmp_path: Path) -> None:
    s = load_settings(tmp_path / "x.toml", {"ALLOW_INVALID_CERTS": raw})
    assert s.allow_invalid_certs is expected


ERRORS = {
    "bad-url-variable": ({"HUB_URL": "hub.example.com"}, None, None,
                         "hub_url from the variable HUB_URL is 'hub.example.com': expected an "
                         "http:// or https:// URL of the hub"),
    "url-with-password": ({"HUB_URL": "https://u:p@hub/x"}, None, None, "without a user name"),
    "bad-bool": ({"ALLOW_INVALID_CERTS": "maybe"}, None, None,
                 "allow_invalid_certs from the variable ALLOW_INVALID_CERTS is 'maybe': "
                 "expected 1 or 0"),
    "zero-concurrency-flag": ({}, {"max_concurrent_requests": "0"}, None,
                              "max_concurrent_requests from the flag --max-concurrent-requests "
                              "is '0': expected a whole number of requests from 1 to 64"),
    "fractional-concurrency": ({"GHUBAI_MAX_CONCURRENT_REQUESTS": "1.5"}, None, None,
                               "expected a whole number"),
    "bad-size": ({"GHUBAI_MAX_REQUEST_BODY": "lots"}, None, None, "expected a size"),
    "bad-time-in-file": ({}, None, 'paused_until = "tomorrow"\n',
                         "paused_until from the config file"),
    "wrong-type-in-file": ({}, None, "idle_timeout = true\n", "expected a number of seconds"),
    "token-in-file": ({}, None, 'token = "abc"\n', "tokens belong in the OS keyring"),
    "not-toml": ({}, None, "hub_url = \n", "is not valid TOML"),
    "models-not-names": ({}, None, "shared_models = [1, 2]\n", "expected a list of model names"),
}


@pytest.mark.parametrize("env,flags,file,message", ERRORS.values(), ids=ERRORS.keys())
def test_invalid_values_name_the_setting_and_source(
    env: dict[str, str], flags: dict[str, str] | None, file: str | None, message: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    if file is not None:
        path.write_text(file)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env, flags)
    assert message in str(caught.value)


def test_a_token_in_the_file_is_refused_without_repeating_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('provider_token = "s3cr3t-value"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert "s3cr3t-value" not in str(caught.value)


def test_sizes_and_model_lists(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "x.toml", {"GHUBAI_MAX_REQUEST_BODY": "8MiB",
                                            "GHUBAI_SHARED_MODELS": " a, B ,,a "})
    assert s.max_request_body == 8 * 1024 * 1024
    assert s.shared_models == ("a", "B") and s.share_new_models is False
    s = load_settings(tmp_path / "x.toml", {"GHUBAI_SHARED_MODELS": "all"})
    assert s.shared_models == () and s.share_new_models is True
    s = load_settings(tmp_path / "x.toml", {"GHUBAI_SHARED_MODELS": "a",
                                            "GHUBAI_SHARE_NEW_MODELS": "1"})
    assert s.share_new_models is True
    s = load_settings(tmp_path / "x.toml", {}, {"shared_models": "a,b"})
    assert s.shared_models == ("a", "b") and s.share_new_models is False
    assert s.source("share_new_models") == "the flag --shared-models"


def test_a_pause_end_implies_paused(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "x.toml", {"GHUBAI_PAUSED_UNTIL": "2026-11-24T18:30:00+01:00"})
    assert s.paused and s.paused_until == datetime.fromisoformat("2026-11-24T18:30:00+01:00")


def test_save_is_atomic_keeps_unknown_keys_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    path.parent.mkdir()
    path.write_text('future_key = "kept"\n[future_table]\nx = 1\n')
    until = datetime.fromisoformat("2026-11-25T07:00:00+01:00")
    save_settings({"paused": True, "paused_until": until, "shared_models": ("a", "b")}, path)
    doc = tomllib.loads(path.read_text())
    assert doc["future_key"] == "kept" and doc["future_table"] == {"x": 1}
    s = load_settings(path, {})
    assert s.paused and s.paused_until == until and s.shared_models == ("a", "b")
    save_settings({"paused_until": None}, path)
    assert load_settings(path, {}).paused_until is None
    assert os.listdir(path.parent) == ["config.toml"], "no temporary file left behind"


def test_save_refuses_a_bad_value_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_settings({"max_concurrent_requests": 3}, path)
    before = path.read_bytes()
    with pytest.raises(ConfigError):
        save_settings({"max_concurrent_requests": 0}, path)
    with pytest.raises(ConfigError):
        save_settings({"token": "nope"}, path)
    assert path.read_bytes() == before


def test_default_hub_is_detected(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "x.toml", {}).hub_url == DEFAULT_HUB_URL


def test_values_are_shown_in_words_not_python_reprs() -> None:
    from datetime import datetime

    from ghubai_tray.core.settings import shown

    assert [shown(v) for v in (True, False, (), ("a", "b"), None, 30.0, 0.5, 8192)] == [
        "yes", "no", "(none)", "a, b", "(none)", "30", "0.5", "8192"]
    assert shown(datetime(2026, 12, 2, 18, 30, tzinfo=UTC)) == "2026-12-02 18:30+00:00"

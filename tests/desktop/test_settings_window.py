"""The settings window: the form's checks, and the real window driven on a real display."""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.desktop.settings_window import TITLE, validate_form
from tests.paths import ARTIFACTS
from tests.processes import clean_environment
from tests.testbed.desktop import Desktop, Window, desktop_available, real_desktop, wait_for
from tests.worker_bed import TOKEN

GOOD = {"hub_url": "https://hub.example.com/gridhub", "ollama_url": "http://localhost:11434",
        "allow_invalid_certs": False, "max_concurrent_requests": "3", "max_context": "4096",
        "max_output_tokens": "1000", "max_keep_alive": "60", "max_images": "2",
        "max_image_size": "5MiB"}


def test_a_valid_form_gives_typed_settings() -> None:
    parsed, errors = validate_form(GOOD)
    assert errors == {}
    assert parsed == {**GOOD, "max_concurrent_requests": 3, "max_context": 4096,
                      "max_output_tokens": 1000, "max_keep_alive": 60.0, "max_images": 2,
                      "max_image_size": 5 * 1024 * 1024}


@pytest.mark.parametrize("field,value,message", [
    ("hub_url", "hub.example.com", "Expected an http:// or https:// URL of the hub"),
    ("ollama_url", "localhost:11434", "Expected an http:// or https:// URL of Ollama"),
    ("max_concurrent_requests", "0", "Expected a whole number of requests from 1 to 64"),
    ("max_concurrent_requests", "two", "Expected a whole number"),
    ("max_keep_alive", "-1", "Expected a number of seconds from 0 to 86400"),
    ("max_context", "10000000", "Expected a whole number of tokens from 256 to 1048576"),
    ("max_output_tokens", "0", "Expected a whole number of tokens from 1"),
])
def test_each_invalid_field_is_explained_and_nothing_is_kept(field: str, value: Any,
                                                              message: str) -> None:
    parsed, errors = validate_form({**GOOD, field: value})
    assert parsed == {}, "nothing is saved half-valid"
    assert list(errors) == [field] and errors[field].startswith(message)


def settings_window(desk: Desktop) -> Window | None:
    return next((w for w in desk.windows(tree=False) if w.name == TITLE and w.width > 100), None)


@pytest.mark.skipif(not desktop_available() and not os.environ.get("CI"),
                    reason="Xvfb and xdotool needed (make test installs them)")
async def test_the_window_refuses_a_bad_url_then_saves_settings_and_token(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    artifacts = ARTIFACTS
    env = {**clean_environment(tmp_path), **keyring_env}
    with real_desktop(artifacts, extra_env={"DBUS_SESSION_BUS_ADDRESS":
                                            keyring_env["DBUS_SESSION_BUS_ADDRESS"]}) as desk:
        env.update(desk.env)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ghubai_tray", "--settings-window", env=env)
        try:
            window = await asyncio.to_thread(wait_for, "the settings window",
                                             lambda: settings_window(desk))
            assert isinstance(window, Window)
            area = (window.width, window.height, window.x, window.y)
            await asyncio.to_thread(desk.run, "xdotool", "search", "--name", TITLE,
                                    "windowfocus", "--sync")
            await asyncio.to_thread(desk.screenshot, "settings-window.png", area)
            await asyncio.to_thread(desk.press, "ctrl+slash")
            await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "20",
                                    "hub.example.com")
            await asyncio.to_thread(desk.press, "Return")
            await asyncio.to_thread(desk.screenshot, "settings-window-invalid.png", area)
            assert proc.returncode is None, "a bad value keeps the window open"
            assert not (tmp_path / "config" / "config.toml").exists(), "nothing was saved"
            await asyncio.to_thread(desk.press, "ctrl+slash")
            await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "20",
                                    "https://hub.example.com/gridhub")
            await asyncio.to_thread(desk.press, "Tab", "Tab")
            await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "10", TOKEN)
            await asyncio.to_thread(desk.press, "Return")
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    config = tomllib.loads((tmp_path / "config" / "config.toml").read_text())
    assert config["hub_url"] == "https://hub.example.com/gridhub"
    assert TOKEN not in str(config)
    from tests.processes import cli

    code, out, _ = await cli("token", "status", env={**env, "HUB_URL": config["hub_url"]})
    assert code == 0 and "comes from the OS keyring" in out

"""The settings window: the form's checks, and the real window driven on a real display."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tomllib
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.core.schedule import parse
from ghubai_tray.core.settings import Settings
from ghubai_tray.desktop.settings_window import (
    TITLE,
    complete_hub_url,
    locked_by,
    validate_form,
)
from tests.paths import ARTIFACTS
from tests.processes import clean_environment
from tests.testbed.desktop import Desktop, Window, desktop_available, real_desktop, wait_for
from tests.testbed.hub import AuthMode, GridHub
from tests.worker_bed import TOKEN

GOOD = {"hub_url": "https://hub.example.com/gridhub", "ollama_url": "http://localhost:11434",
        "allow_invalid_certs": False, "max_concurrent_requests": "3", "max_context": "4096",
        "max_output_tokens": "1000", "max_keep_alive": "60", "max_images": "2",
        "max_image_size": "5MiB", "schedule": "Mon-Fri 18:00-23:30", "owner_first": True,
        "owner_first_hold": "120", "pause_when_fullscreen": True, "pause_on_battery": False,
        "share_when_idle_only": True, "idle_minutes": "5", "pause_when_gpu_busy": False,
        "max_messages": "200", "max_embedding_inputs": "64", "max_tools": "8",
        "max_stop_strings": "4", "max_prompt_size": "1MiB", "check_for_updates": False,
        "max_gpu_temp": "85", "resume_gpu_temp": "0", "max_gpu_power": "0",
        "daily_energy_kwh": "0.5", "daily_gpu_hours": "0"}


def test_a_valid_form_gives_typed_settings() -> None:
    parsed, errors = validate_form(GOOD)
    assert errors == {}
    assert parsed == {**GOOD, "max_concurrent_requests": 3, "max_context": 4096,
                      "max_output_tokens": 1000, "max_keep_alive": 60.0, "max_images": 2,
                      "max_image_size": 5 * 1024 * 1024, "schedule": parse("Mon-Fri 18:00-23:30"),
                      "owner_first_hold": 120.0, "idle_minutes": 5, "max_messages": 200,
                      "max_embedding_inputs": 64, "max_tools": 8, "max_stop_strings": 4,
                      "max_prompt_size": 1024 * 1024, "max_gpu_temp": 85.0,
                      "resume_gpu_temp": 0.0, "max_gpu_power": 0.0, "daily_energy_kwh": 0.5,
                      "daily_gpu_hours": 0.0}


@pytest.mark.parametrize("field,value,message", [
    ("hub_url", "hub.example.com", "Expected an http:// or https:// URL of the hub"),
    ("ollama_url", "localhost:11434", "Expected an http:// or https:// URL of Ollama"),
    ("max_concurrent_requests", "0", "Expected a whole number of requests from 1 to 64"),
    ("max_concurrent_requests", "two", "Expected a whole number"),
    ("max_keep_alive", "-1", "Expected a number of seconds from 0 to 86400"),
    ("max_context", "10000000", "Expected a whole number of tokens from 256 to 1048576"),
    ("max_output_tokens", "0", "Expected a whole number of tokens from 1"),
    ("schedule", "evenings", "Expected windows like 18:00-23:30"),
    ("max_gpu_temp", "20", "Expected 0 (off) or a number of °C from 40 to 110"),
    ("daily_energy_kwh", "lots", "Expected 0 (off) or a number of kWh"),
])
def test_each_invalid_field_is_explained_and_nothing_is_kept(field: str, value: Any,
                                                              message: str) -> None:
    parsed, errors = validate_form({**GOOD, field: value})
    assert parsed == {}, "nothing is saved half-valid"
    assert list(errors) == [field] and errors[field].startswith(message)


@pytest.mark.parametrize("typed,completed", [
    ("hub.example.com", "https://hub.example.com/gridhub"),
    ("hub.example.com/", "https://hub.example.com/gridhub"),
    ("http://192.168.1.5:5080", "http://192.168.1.5:5080/gridhub"),
    ("https://hub.example.com/other", "https://hub.example.com/other"),
    (" hub.example.com:7197 ", "https://hub.example.com:7197/gridhub"),
    ("", ""), ("not a url", "not a url"),
])
def test_a_bare_host_is_completed_to_the_hub_url(typed: str, completed: str) -> None:
    assert complete_hub_url(typed) == completed


def test_fields_a_variable_or_flag_decides_are_locked_with_where_from() -> None:
    settings = Settings(sources={"hub_url": "the variable HUB_URL",
                                 "max_context": "the flag --max-context",
                                 "ollama_url": "the config file /x/config.toml"})
    assert locked_by(settings, "hub_url") == "the variable HUB_URL"
    assert locked_by(settings, "max_context") == "the flag --max-context"
    assert locked_by(settings, "ollama_url") is None
    assert locked_by(settings, "max_images") is None


def settings_window(desk: Desktop) -> Window | None:
    return next((w for w in desk.windows(tree=False) if w.name == TITLE and w.width > 100), None)


@dataclass
class OpenWindow:
    desk: Desktop
    proc: asyncio.subprocess.Process
    window: Window

    @property
    def area(self) -> tuple[int, int, int, int]:
        return (self.window.width, self.window.height, self.window.x, self.window.y)

    async def closes(self) -> int:
        return await asyncio.wait_for(self.proc.wait(), 20)


@asynccontextmanager
async def settings_window_open(tmp_path: Path, keyring_env: dict[str, str], *args: str,
                               **variables: str) -> AsyncIterator[OpenWindow]:
    """The real window (``ghubai-tray --settings-window ARGS``) on a real display, focused;
    killed at the end if it is still open."""
    env = {**clean_environment(tmp_path), **keyring_env, **variables}
    with real_desktop(ARTIFACTS, extra_env={"DBUS_SESSION_BUS_ADDRESS":
                                            keyring_env["DBUS_SESSION_BUS_ADDRESS"]}) as desk:
        env.update(desk.env)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ghubai_tray", "--settings-window", *args, env=env)
        try:
            window = await asyncio.to_thread(wait_for, "the settings window",
                                             lambda: settings_window(desk))
            assert isinstance(window, Window)
            # Tk maps the window itself before its widgets, and keys that arrive in between
            # go to the bare window and are lost (1 to 8 leading characters of the hub URL
            # were, 6 runs in 30). The first field's label is mapped last, so once it is
            # painted, the field is mapped and holds the focus.
            await asyncio.to_thread(wait_for, "the settings window to draw its fields",
                                    lambda: first_label_drawn(desk, window))
            await asyncio.to_thread(desk.run, "xdotool", "search", "--name", TITLE,
                                    "windowfocus", "--sync")
            yield OpenWindow(desk, proc, window)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


NEEDS_DISPLAY = pytest.mark.skipif(not desktop_available() and not os.environ.get("CI"),
                                   reason="Xvfb and xdotool needed (make test installs them)")


@NEEDS_DISPLAY
async def test_the_window_refuses_a_bad_url_then_saves_settings_and_token(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    async with settings_window_open(tmp_path, keyring_env) as opened:
        desk = opened.desk
        # a 1366x768 screen with a taskbar and a title bar leaves about 700 px (767 before)
        assert opened.window.height <= 700, opened.window.height
        await asyncio.to_thread(desk.screenshot, "settings-window.png", opened.area)
        await asyncio.to_thread(desk.press, "ctrl+slash")
        await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "20",
                                "ftp://hub.example.com")
        await asyncio.to_thread(desk.press, "Return")
        await asyncio.to_thread(desk.screenshot, "settings-window-invalid.png", opened.area)
        assert opened.proc.returncode is None, "a bad value keeps the window open"
        assert not (tmp_path / "config" / "config.toml").exists(), "nothing was saved"
        await asyncio.to_thread(desk.press, "ctrl+slash")
        await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "20",
                                "hub.example.com")  # completed to its /gridhub URL
        await asyncio.to_thread(desk.press, "Tab", "Tab")
        await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "10", TOKEN)
        await asyncio.to_thread(desk.press, "Return")
        assert await opened.closes() == 0
    config = tomllib.loads((tmp_path / "config" / "config.toml").read_text())
    assert config["hub_url"] == "https://hub.example.com/gridhub"
    assert TOKEN not in str(config)
    from tests.processes import cli

    env = {**clean_environment(tmp_path), **keyring_env, "HUB_URL": config["hub_url"]}
    code, out, _ = await cli("token", "status", env=env)
    assert code == 0 and "comes from the OS keyring" in out


@NEEDS_DISPLAY
async def test_a_field_set_by_a_variable_is_locked_and_not_saved(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    async with settings_window_open(tmp_path, keyring_env, "--max-images", "3",
                                    HUB_URL="https://hub.example.com/gridhub",
                                    GHUBAI_TOKEN_FROM_VARIABLE="1") as opened:
        await asyncio.to_thread(opened.desk.screenshot, "settings-window-locked.png",
                                opened.area)
        await asyncio.to_thread(opened.desk.press, "Return")  # Save
        assert await opened.closes() == 0
    config = tomllib.loads((tmp_path / "config" / "config.toml").read_text())
    assert "hub_url" not in config and "max_images" not in config, config
    assert config["ollama_url"] == "http://localhost:11434"


def _dark_in(desk: Desktop, window: Window, box: tuple[int, int, int, int]) -> bool:
    """Black text in this part of the window: the X server cannot tell us what Tk drew,
    the pixels can."""
    from PIL import Image

    shot = desk.screenshot(".settings-window-probe.png",  # a probe: make screenshots skips it
                           (window.width, window.height, window.x, window.y))
    with Image.open(shot) as image:
        low = image.convert("L").crop(box).getextrema()[0]
        return isinstance(low, int | float) and low < 100


def first_label_drawn(desk: Desktop, window: Window) -> bool:
    """The first field's label ("Hub URL", top left of the first tab) is on screen."""
    return _dark_in(desk, window, (20, 40, 200, 80))


def result_shown(desk: Desktop, window: Window) -> bool:
    """Text has appeared in the result box (the lower part of the window is no longer
    blank)."""
    return _dark_in(desk, window, (30, int(window.height * 0.75), window.width // 2,
                                   int(window.height * 0.9)))


@NEEDS_DISPLAY
async def test_a_failed_test_shows_why_first_and_offers_save_anyway(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    try:
        async with settings_window_open(tmp_path, keyring_env) as opened:
            desk = opened.desk
            await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "10", hub.url)
            await asyncio.to_thread(desk.press, "alt+t")
            await hub.wait_until(lambda: bool(hub.tokens_seen), 20, "the test to reach the hub")
            await asyncio.to_thread(wait_for, "the test's result",
                                    lambda: result_shown(desk, opened.window), 30)
            await asyncio.to_thread(desk.screenshot, "settings-window-test-failed.png",
                                    opened.area)
            await asyncio.to_thread(desk.press, "Return")  # Save anyway
            assert await opened.closes() == 0
    finally:
        await hub.stop()
    config = tomllib.loads((tmp_path / "config" / "config.toml").read_text())
    assert config["hub_url"] == hub.url, "saved anyway, as the owner chose"


@NEEDS_DISPLAY
@pytest.mark.skipif(sys.platform == "win32", reason="watches the Secret Service's D-Bus")
@pytest.mark.parametrize("first_run", [True, False])
async def test_a_first_run_opens_the_keyring_only_on_save(
        tmp_path: Path, keyring_env: dict[str, str], first_run: bool) -> None:
    """The first run's window and the desktop's keyring prompt came up together (the
    window asked the keyring what it holds as it opened). Now a first run asks nothing of
    the keyring until Save; a configured one still shows what is stored. Watched on the
    Secret Service's own bus: the time of each call to it."""
    import subprocess
    import threading
    import time

    calls: list[float] = []
    monitor = subprocess.Popen(  # line-buffered: each call is seen as it happens
        ["stdbuf", "-oL", "dbus-monitor", "--address", keyring_env["DBUS_SESSION_BUS_ADDRESS"],
         "type='method_call',destination='org.freedesktop.secrets'"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def read() -> None:
        assert monitor.stdout is not None
        for line in monitor.stdout:
            if "destination=org.freedesktop.secrets" in line:
                calls.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        variables = {} if first_run else {"HUB_URL": "https://hub.example.com/gridhub"}
        async with settings_window_open(tmp_path, keyring_env, **variables) as opened:
            desk = opened.desk
            if first_run:
                await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "10",
                                        "hub.example.com")
                await asyncio.to_thread(desk.press, "Tab", "Tab")
                await asyncio.to_thread(desk.run, "xdotool", "type", "--delay", "10", TOKEN)
                saved_at = time.monotonic()
                await asyncio.to_thread(desk.press, "Return")
                assert await opened.closes() == 0
                await asyncio.to_thread(wait_for, "the token to be stored", lambda: calls)
                assert min(calls) > saved_at, "the keyring was asked before Save"
            else:  # the control: a configured window shows what is stored
                await asyncio.to_thread(wait_for, "the window to ask the keyring",
                                        lambda: calls)
                await asyncio.to_thread(desk.press, "Escape")
                assert await opened.closes() != 0
    finally:
        monitor.terminate()
        monitor.wait(10)
        reader.join(10)
        if monitor.stdout is not None:
            monitor.stdout.close()


@NEEDS_DISPLAY
@pytest.mark.skipif(sys.platform != "linux", reason="locks a Secret Service collection")
def test_the_keyring_line_says_locked_and_follows_the_unlock(
    tmp_path: Path, keyring_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At an automatic login the keyring is locked: the line says so (not "cannot be
    used"), and once the owner unlocks it, says what is stored, with no click. The window
    is built in this process on a real display, so its line can be read back."""
    import tkinter as tk

    import keyring
    from keyring.backends import SecretService

    from ghubai_tray.adapters.credentials import store_token
    from ghubai_tray.core import texts
    from ghubai_tray.desktop.settings_window import SettingsWindow
    from tests.testbed.secrets import lock_keyring, unlock_keyring

    for key, value in keyring_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GHUBAI_CONFIG", str(tmp_path / "config.toml"))
    previous = keyring.get_keyring()
    keyring.set_keyring(SecretService.Keyring())  # type: ignore[no-untyped-call]
    hub = "https://hub.example.com/gridhub"
    try:
        store_token(hub, TOKEN)
        lock_keyring(keyring_env)
        with real_desktop(ARTIFACTS, extra_env={"DBUS_SESSION_BUS_ADDRESS":
                                                keyring_env["DBUS_SESSION_BUS_ADDRESS"]}) as desk:
            monkeypatch.setenv("DISPLAY", desk.env["DISPLAY"])
            root = tk.Tk(className="ghubai-tray-settings")
            try:
                window = SettingsWindow(root, Settings(hub_url=hub, sources={
                    "hub_url": "the config file"}), lambda *_: ("", True))

                def line_is(text: str) -> bool:
                    root.update()
                    return str(window.token_state.cget("text")) == text

                wait_for("the locked line", lambda: line_is(texts.SETTINGS_KEYRING_LOCKED)
                         or None, 30)
                # keyring leaves the D-Bus connection of a read that found the collection
                # locked open (tests/adapters/test_credentials.py): collected here, expected
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ResourceWarning)
                    gc.collect()
                unlock_keyring(keyring_env)
                wait_for("the line to follow the unlock",
                         lambda: line_is(texts.SETTINGS_TOKEN_STORED) or None, 30)
            finally:
                root.destroy()
    finally:
        keyring.set_keyring(previous)


MEASURE = """
import tkinter as tk
from ghubai_tray.core.settings import Settings
from ghubai_tray.desktop.settings_window import SettingsWindow
from ghubai_tray.desktop.tk_scaling import scale_to_desktop
root = tk.Tk(className="ghubai-tray-settings")
used = scale_to_desktop(root)
SettingsWindow(root, Settings(hub_url="https://hub.example.com/gridhub",
                              sources={"hub_url": "the config file"}), lambda *_: ("", True))
root.update_idletasks()
print(used, root.winfo_reqheight())
"""


@NEEDS_DISPLAY
@pytest.mark.skipif(sys.platform != "linux", reason="Xft.dpi is X's")
def test_the_window_fits_768_lines_and_scales_with_the_desktops_dpi(tmp_path: Path) -> None:
    """At 100 % (96 dpi) the window is at most 700 px high; a desktop at 150 % (GNOME and
    KDE then say Xft.dpi: 144 in the X resources) gets it half as large again, as every
    other app there, instead of the small text Tk keeps without reading it. Each size is
    measured by a process of its own, as the window is (Tk keeps a display's font sizes
    for the life of the process)."""
    import subprocess

    from Xlib import Xatom, display

    def height_at(dpi: int, env: dict[str, str]) -> tuple[str, int]:
        screen = display.Display(env["DISPLAY"])
        screen.screen().root.change_property(screen.intern_atom("RESOURCE_MANAGER"),
                                             Xatom.STRING, 8, f"Xft.dpi:\t{dpi}\n".encode())
        screen.sync()  # the property is there before Tk looks
        screen.close()
        done = subprocess.run([sys.executable, "-c", MEASURE], env=env, capture_output=True,
                              text=True, timeout=60, check=True)
        used, height = done.stdout.split()
        return used, int(height)

    with real_desktop(ARTIFACTS, notifications=False) as desk:
        env = {**clean_environment(tmp_path), **desk.env}
        (dpi, normal), (large_dpi, large) = height_at(96, env), height_at(144, env)
    assert (dpi, large_dpi) == ("96.0", "144.0")
    assert normal <= 700, normal
    assert large >= normal * 1.3, (normal, large)

"""The Windows installer, installed and run under Wine, as a Windows user would.

Run by ``make dist-windows-check``, which builds ``dist/ghubai-tray-VERSION-setup.exe``
(PyInstaller and NSIS, ``make dist-windows``) and sets ``GHUBAI_SETUP_EXE``. One fresh
Wine prefix and one real desktop (Xvfb, trayer, a session bus) for the module; the
tests run in order: install, the console entry, headless, the tray, upgrade, uninstall.
Everything is checked from outside the app: files, the registry (``reg query``), the
test hub's registry of nodes, X windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghubai_tray import __version__
from tests.paths import ARTIFACTS
from tests.testbed.desktop import Desktop, Window, desktop_available, real_desktop, wait_for
from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.wine import (
    WindowsRun,
    kill_group,
    unix_to_windows,
    windows_run,
    wine_available,
)
from tests.testbed.wine_tray import click_until as _click_until
from tests.testbed.wine_tray import icon as _icon
from tests.testbed.wine_tray import open_menu as _open_menu
from tests.worker_bed import TOKEN

SETUP = os.environ.get("GHUBAI_SETUP_EXE", "")
pytestmark = [
    pytest.mark.windist,
    pytest.mark.skipif(not SETUP, reason="set GHUBAI_SETUP_EXE (make dist-windows-check does)"),
    pytest.mark.skipif(not wine_available() or not desktop_available(),
                       reason="Wine, Xvfb and trayer are needed (make windows-deps)"),
]
APP = "GhubAi Tray"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\GhubAiTray"
RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
MODELS = ("llama3.2:1b", "mistral:7b")


class Installed:
    def __init__(self, run: WindowsRun, desk: Desktop) -> None:
        self.run, self.desk = run, desk

    @property
    def folder(self) -> Path:
        return self.run.local_appdata / "Programs" / APP

    @property
    def settings(self) -> Path:
        return self.run.local_appdata / "GhubAi"

    def install(self) -> None:
        code, out = self.run.run([SETUP, "/S"], timeout=300)
        assert code == 0, out

    def popen(self, program: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self.run.popen([str(self.folder / program), *args], env=env)


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    with real_desktop(ARTIFACTS) as desk, windows_run(python=False, env=desk.env) as run:
        box = Installed(run, desk)
        box.install()
        yield box


def test_the_installer_puts_the_app_where_windows_users_look(installed: Installed) -> None:
    names = {p.name for p in installed.folder.iterdir()}
    assert {"ghubai-tray.exe", "ghubai-tray-cli.exe", "uninstall.exe", "_internal"} <= names
    internal = installed.folder / "_internal"
    # tkinter and Tcl/Tk: without them the shipped app has no Settings window at all.
    assert (internal / "_tkinter.pyd").is_file() and (internal / "tk86t.dll").is_file()
    assert not list(installed.folder.rglob("bcryptprimitives.dll")), "the Wine lane's shim"
    assert (installed.run.start_menu / f"{APP}.lnk").is_file()
    entry = installed.run.reg_query(UNINSTALL_KEY)
    assert entry is not None, "no entry in Settings > Apps"
    assert entry["DisplayName"] == APP and entry["DisplayVersion"] == __version__
    assert entry["Publisher"] == "GhubAi"
    assert entry["QuietUninstallString"].endswith('uninstall.exe" /S')
    assert int(entry["EstimatedSize"], 16) > 10_000  # KiB
    run_value = installed.run.reg_query(RUN_KEY, APP)
    assert run_value is not None and run_value[APP].endswith('ghubai-tray.exe"')


def test_the_console_entry_answers_version_and_doctor(installed: Installed) -> None:
    code, out = installed.run.run([str(installed.folder / "ghubai-tray-cli.exe"), "--version"],
                                  timeout=120)
    assert code == 0 and out.strip() == f"GhubAi Tray {__version__}"

    async def doctor() -> tuple[int, str]:
        hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
        await hub.start()
        await ollama.start()
        try:
            return await asyncio.to_thread(installed.run.run, [
                str(installed.folder / "ghubai-tray-cli.exe"), "doctor"], env={
                "HUB_URL": hub.url, "OLLAMA_LOCAL_URL": ollama.url, "PROVIDER_TOKEN": TOKEN},
                timeout=120)
        finally:
            await hub.stop()
            await ollama.stop()

    code, out = asyncio.run(doctor())
    assert code == 0, out
    assert "[  ok] Ollama: 2 models" in out and "[  ok] hub: negotiate, WebSocket" in out
    assert "C:\\users\\" in out and "\\AppData\\Local\\GhubAi\\config.toml" in out
    assert TOKEN not in out


async def _serve_one_stream(installed: Installed, program: str) -> tuple[
        subprocess.Popen[bytes], GridHub, OllamaStandIn]:
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn(token_delay=0.01)
    await hub.start()
    await ollama.start()
    proc = installed.popen(program, "--headless", HUB_URL=hub.url, OLLAMA_LOCAL_URL=ollama.url,
                           PROVIDER_TOKEN=TOKEN, GHUBAI_MACHINE_NAME="wine-node")
    await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()), 120,
                         "the installed app to register")
    req = await hub.dispatch(MODELS[0], "/api/chat", {"model": MODELS[0], "stream": True,
                                                      "messages": [{"role": "user",
                                                                    "content": "hi"}]})
    await req.wait(60)
    assert len(req.fragments) > 2 and req.chunks[-1]["isFinal"], "a stream, relayed whole"
    return proc, hub, ollama


async def test_the_installed_app_serves_headless(installed: Installed) -> None:
    proc, hub, ollama = await _serve_one_stream(installed, "ghubai-tray.exe")
    try:
        # The windowed app has no console, so no Ctrl-C: it ends as Windows ends a program.
        kill_group(proc)
    finally:
        await hub.stop()
        await ollama.stop()
    log = (installed.settings / "Logs" / "ghubai-tray.log").read_text(errors="replace")
    assert "registered 2 model(s)" in log and "served in" in log and TOKEN not in log


async def test_the_console_entry_serves_headless_and_stops_on_ctrl_c(
        installed: Installed) -> None:
    proc, hub, ollama = await _serve_one_stream(installed, "ghubai-tray-cli.exe")
    try:
        # Wine turns a Unix SIGINT into the CTRL_C_EVENT of the program's console.
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    finally:
        kill_group(proc)
        await hub.stop()
        await ollama.stop()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "Ctrl-C received: stopping" in text and "stopped" in text, text
    assert "served in" in text, "headless logs to its console as well as its file"


def _settings(desk: Desktop) -> Window | None:
    return next((w for w in desk.windows(tree=False) if w.name == "GhubAi Tray settings"), None)


def _settings_open(desk: Desktop) -> bool:
    return _settings(desk) is not None


def _close_settings(desk: Desktop) -> None:
    """Escape in the Settings window is Cancel (there is no window manager to close it)."""
    def closed() -> bool:
        if (window := _settings(desk)) is None:
            return True
        try:
            desk.run("xdotool", "windowfocus", "--sync", window.id)
            desk.run("xdotool", "key", "--window", window.id, "Escape")
        except subprocess.CalledProcessError:
            pass  # the window went between the look and the key (closing): look again
        time.sleep(1)
        return not _settings_open(desk)

    wait_for("Settings to close", closed, 60)


def _steady_screenshot(desk: Desktop, name: str, crop: tuple[int, int, int, int]) -> None:
    """A screenshot once the window has finished drawing: two in a row alike (Tk under
    Wine draws its widgets over a few hundred milliseconds, and X says nothing when done)."""
    last = [b""]

    def steady() -> bool:
        shot = desk.screenshot(name, crop).read_bytes()
        same, last[0] = shot == last[0], shot
        time.sleep(0.3)
        return same

    wait_for(f"{name} to stop changing", steady, 30)





def test_the_installed_tray_docks_opens_settings_and_quits(installed: Installed) -> None:
    desk = installed.desk
    proc = installed.popen("ghubai-tray.exe", OLLAMA_LOCAL_URL="http://127.0.0.1:9")
    try:
        wait_for("the icon docked in the tray", lambda: _icon(desk), 120)
        window = wait_for("the first run's Settings window", lambda: _settings(desk), 60)
        _steady_screenshot(desk, "windows-settings.png", (
            window.width + 10, window.height + 10, max(0, window.x - 5), max(0, window.y - 5)))
        _close_settings(desk)
        _click_until(desk, "1", "a left click to open Settings", lambda: _settings(desk), 5)
        _close_settings(desk)
        menu = _open_menu(desk)
        desk.screenshot("windows-menu.png",
                        (menu.width + 40, menu.height + 40, max(0, menu.x - 20), 0))
        # Quit, the last item (Win32 menus: 17 px an item, a 3 px frame), clicked.
        desk.run("xdotool", "mousemove", str(menu.x + 40), str(menu.y + menu.height - 12))
        time.sleep(0.5)
        desk.run("xdotool", "click", "1")
        assert proc.wait(60) == 0
    finally:
        kill_group(proc)


async def test_pause_in_the_installed_trays_menu_reaches_the_hub(installed: Installed) -> None:
    desk = installed.desk
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
    await hub.start()
    await ollama.start()
    proc = installed.popen("ghubai-tray.exe", HUB_URL=hub.url, OLLAMA_LOCAL_URL=ollama.url,
                           PROVIDER_TOKEN=TOKEN, GHUBAI_MACHINE_NAME="wine-tray")
    try:
        await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()), 120,
                             "the tray to register")
        menu = await asyncio.to_thread(_open_menu, desk)
        icon = _icon(desk)
        assert icon is not None
        # Three status lines, a separator, then Pause (Win32 menus: 17 px an item, 10 px a
        # separator, from the top of the menu window).
        x, y = menu.x + 40, menu.y + 10 + 3 * 17 + 10
        desk.run("xdotool", "mousemove", str(x), str(y))
        await asyncio.sleep(0.5)
        desk.run("xdotool", "click", "1")  # opens the submenu beside it
        submenu = await asyncio.to_thread(wait_for, "the Pause submenu", lambda: next(
            (w for w in desk.windows(tree=False) if '"ghubai-tray.exe"' in w.wm_class
             and not w.name and w.width > 100 and w.id != menu.id), None))
        right = max(menu.x + menu.width, icon.x + icon.width) + 10
        desk.screenshot("windows-pause-menu.png", (right - submenu.x + 10, max(
            menu.height, submenu.height) + 10, max(0, submenu.x - 10), 0))
        desk.run("xdotool", "mousemove", str(submenu.x + 40), str(submenu.y + 10))
        await asyncio.sleep(0.5)
        desk.run("xdotool", "click", "1")  # its first entry: Pause now
        await hub.wait_until(lambda: any(r.models == () and r.machine_name == "wine-tray"
                                         for r in hub.registrations), 60,
                             "the paused tray to register no models")
    finally:
        kill_group(proc)
        await hub.stop()
        await ollama.stop()


def test_installing_over_itself_upgrades_and_keeps_the_settings(installed: Installed) -> None:
    installed.settings.mkdir(parents=True, exist_ok=True)
    config = installed.settings / "config.toml"
    config.write_text('machine_name = "kept-over-upgrades"\n', encoding="utf-8")
    stale = installed.folder / "_internal" / "left-by-an-old-version.dll"
    stale.write_bytes(b"old")
    installed.install()
    assert config.read_text(encoding="utf-8") == 'machine_name = "kept-over-upgrades"\n'
    assert not stale.exists(), "an upgrade replaces the program whole"
    code, out = installed.run.run([str(installed.folder / "ghubai-tray-cli.exe"), "doctor"],
                                  timeout=120)
    assert "machine_name = kept-over-upgrades" in out, out


def test_the_installer_refuses_a_folder_of_the_owners(installed: Installed,
                                                      tmp_path: Path) -> None:
    """Installed into a folder of the owner's, the uninstaller would once have removed
    the whole folder with it."""
    folder = tmp_path / "Documents"  # no space: NSIS takes /D= unquoted, and Wine quotes
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    code, out = installed.run.run([SETUP, "/S", f"/D={unix_to_windows(folder)}"], timeout=300)
    assert code == 2, out
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"


def _uninstall(installed: Installed) -> None:
    """Run the QuietUninstallString as Windows does, and wait for the files to go.

    NSIS's uninstaller copies itself to %TEMP%, starts the copy and returns at once, so
    the exit code seen here is only the launch's. Under Wine that launch once exited 1
    with nothing printed (CI, 2026-12-05): when it did not start the uninstall, it is
    asked once more; a second failure fails the test.
    """
    uninstaller = installed.folder / "uninstall.exe"
    code, out = installed.run.run([str(uninstaller), "/S"], timeout=120)
    if code != 0:
        with contextlib.suppress(AssertionError):  # wait_for times out so
            wait_for("the uninstaller to finish", lambda: not uninstaller.exists(), 30)
        if uninstaller.exists():
            code, out = installed.run.run([str(uninstaller), "/S"], timeout=120)
            assert code == 0, out
    wait_for("the uninstaller to finish", lambda: not uninstaller.exists(), 120)


def test_a_silent_uninstall_leaves_only_the_users_settings(installed: Installed) -> None:
    # a file of the owner's in the program folder stays, and so does the folder
    mine = installed.folder / "mine.txt"
    mine.write_text("mine", encoding="utf-8")
    _uninstall(installed)
    assert sorted(p.name for p in installed.folder.iterdir()) == ["mine.txt"]
    mine.unlink()
    installed.install()
    _uninstall(installed)
    wait_for("the program folder to go", lambda: not installed.folder.exists(), 120)
    assert installed.run.reg_query(UNINSTALL_KEY) is None
    assert installed.run.reg_query(RUN_KEY, APP) is None
    assert not (installed.run.start_menu / f"{APP}.lnk").exists()
    assert (installed.settings / "config.toml").is_file(), "a silent uninstall keeps them"
    assert re.search(r"kept-over-upgrades", (installed.settings / "config.toml").read_text())

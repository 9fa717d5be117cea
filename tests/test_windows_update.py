"""Updating as installed, under Wine: two test builds of the app (``make
dist-windows-update-check`` builds them, OLD and NEW, each carrying a release key made for
the run), a releases feed on loopback serving NEW, the test hub and the Ollama stand-in.

The OLD tray, installed by its setup.exe, set up the way an owner does (config.toml and
the token in Credential Manager) and sharing, is asked to install the update; first one
signed by another key (asked with ``update install``), which must change nothing, then
the real one (the menu's *Install update*, clicked): the tray lets its
work finish, quits, the installer replaces it and starts NEW, which registers with the
hub again with the settings and the token it found.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import ARTIFACTS
from tests.testbed.desktop import Desktop, desktop_available, real_desktop
from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.release_key import ReleaseKey, minisign_available, signed_release
from tests.testbed.releases import serving
from tests.testbed.wine import WindowsRun, kill_group, windows_run, wine_available
from tests.testbed.wine_tray import open_menu
from tests.worker_bed import TOKEN

BUILDS = Path(os.environ.get("GHUBAI_UPDATE_TEST", "/nonexistent"))
OLD = os.environ.get("GHUBAI_UPDATE_OLD", "")
NEW = os.environ.get("GHUBAI_UPDATE_NEW", "")
pytestmark = [
    pytest.mark.windist,
    pytest.mark.skipif(not OLD or not BUILDS.is_dir(),
                       reason="make dist-windows-update-check builds the two versions"),
    pytest.mark.skipif(not wine_available() or not desktop_available()
                       or not minisign_available(),
                       reason="Wine, Xvfb, trayer and minisign are needed"),
]
APP = "GhubAi Tray"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\GhubAiTray"
MODELS = ("llama3.2:1b", "mistral:7b")
MACHINE = "wine-update"


@pytest.fixture
def box() -> Iterator[tuple[WindowsRun, Desktop]]:
    with real_desktop(ARTIFACTS) as desk, windows_run(python=False, env=desk.env) as run:
        yield run, desk


def folder(run: WindowsRun) -> Path:
    return run.local_appdata / "Programs" / APP


def cli(run: WindowsRun, *args: str) -> tuple[int, str]:
    return run.run([str(folder(run) / "ghubai-tray-cli.exe"), *args], timeout=600)


def set_token(run: WindowsRun) -> None:
    proc = run.popen([str(folder(run) / "ghubai-tray-cli.exe"), "token", "set"])
    out, _ = proc.communicate(TOKEN.encode() + b"\n", timeout=300)
    assert proc.returncode == 0, out


def registered_after(hub: GridHub, seen: int) -> bool:
    return any(r.machine_name == MACHINE and r.models == MODELS
               for r in hub.registrations[seen:])


async def test_the_installed_tray_updates_itself_and_comes_back_sharing(
        box: tuple[WindowsRun, Desktop], tmp_path: Path) -> None:
    run, desk = box
    key = ReleaseKey(BUILDS / "key", existing=True)
    other = ReleaseKey(tmp_path / "other-key")
    new_setup = (BUILDS / f"ghubai-tray-{NEW}-setup.exe").read_bytes()
    code, out = run.run([str(BUILDS / f"ghubai-tray-{OLD}-setup.exe"), "/S"], timeout=300)
    assert code == 0, out
    assert (await asyncio.to_thread(cli, run, "--version"))[1].strip() == f"GhubAi Tray {OLD}"
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
    await hub.start()
    await ollama.start()
    tray = None
    async with serving([signed_release(f"v{NEW}", other, new_setup)]) as feed:
        try:
            settings = run.local_appdata / "GhubAi"
            settings.mkdir(parents=True, exist_ok=True)
            (settings / "config.toml").write_text(
                f'hub_url = "{hub.url}"\nollama_url = "{ollama.url}"\n'
                f'machine_name = "{MACHINE}"\nupdate_url = "{feed.url}"\n', encoding="utf-8")
            await asyncio.to_thread(set_token, run)
            tray = run.popen([str(folder(run) / "ghubai-tray.exe")])
            await hub.wait_until(lambda: registered_after(hub, 0), 180, "the OLD tray to share")

            # signed by another key: refused, the download deleted, OLD still sharing
            code, out = await asyncio.to_thread(cli, run, "update", "install")
            assert code == 1, out
            assert f"the update to {NEW} was not installed: SHA256SUMS is not the " \
                   "project's: it is signed with another key" in out
            assert tray.poll() is None, "the running tray stays"
            updates = settings / "updates"
            assert not updates.exists() or list(updates.iterdir()) == []
            assert hub.nodes and all(n.models == MODELS for n in hub.nodes.values())

            # the real one, from the menu's item, which the refused try brought: a notice
            # line, the three status lines, a separator, then "Install update 0.0.2"
            # (Win32 menus: 17 px an item, 10 px a separator, from the menu's top)
            feed.releases = [signed_release(f"v{NEW}", key, new_setup)]
            seen = len(hub.registrations)
            menu = await asyncio.to_thread(open_menu, desk)
            desk.screenshot("windows-install-update-menu.png",
                            (menu.width + 40, menu.height + 40, max(0, menu.x - 20), 0))
            desk.run("xdotool", "mousemove", str(menu.x + 40),
                     str(menu.y + 10 + 4 * 17 + 10))
            await asyncio.sleep(0.5)
            desk.run("xdotool", "click", "1")
            assert await asyncio.to_thread(tray.wait, 300) == 0, "OLD quits for the installer"
            await hub.wait_until(lambda: registered_after(hub, seen), 600,
                                 "NEW, started by the installer, to share again")
        finally:
            if tray is not None:
                kill_group(tray)
            await hub.stop()
            await ollama.stop()
    code, out = await asyncio.to_thread(cli, run, "--version")
    assert out.strip() == f"GhubAi Tray {NEW}", out
    entry = run.reg_query(UNINSTALL_KEY)
    assert entry is not None and entry["DisplayVersion"] == NEW
    log = (settings / "Logs" / "ghubai-tray.log").read_text(errors="replace")
    assert f"Updated to {NEW}, as asked" in log
    assert re.search(r"machine_name = \"wine-update\"", (settings / "config.toml").read_text())
    assert TOKEN not in log
    assert list((settings / "updates").iterdir()) == [], "the download is tidied away"

"""The .deb as a user gets it: install with dpkg, run it, remove it, see what stays.

Run by ``make dist-check`` (which builds the package and sets ``GHUBAI_DEB``),
as root, as in CI: it really installs into /opt and /usr and removes again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import ARTIFACTS
from tests.processes import clean_environment, offline_environment
from tests.testbed.desktop import desktop_available, real_desktop, wait_for
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.otlp import OtlpReceiver
from tests.worker_bed import TOKEN

DEB = os.environ.get("GHUBAI_DEB", "")
pytestmark = [pytest.mark.dist,
              pytest.mark.skipif(not DEB, reason="set GHUBAI_DEB (make dist-check does)"),
              pytest.mark.skipif(sys.platform == "win32" or os.geteuid() != 0,
                                 reason="installing a .deb needs Linux and root")]
MODELS = ("llama3.2:1b", "mistral:7b")


def dpkg(*args: str) -> str:
    return subprocess.run(["dpkg", *args], check=True, capture_output=True, text=True,
                          timeout=300).stdout


@pytest.fixture(scope="module")
def installed() -> Iterator[list[str]]:
    """Install the package; yield its files; remove it and check nothing is left behind."""
    subprocess.run(["dpkg", "-r", "ghubai-tray"], capture_output=True, timeout=300)
    dpkg("-i", DEB)
    files = [f for f in dpkg("-L", "ghubai-tray").splitlines() if f and f != "/."]
    yield files
    dpkg("-r", "ghubai-tray")
    left = [f for f in files if os.path.lexists(f) and not os.path.isdir(f)]
    assert left == [], f"files left behind after removal: {left[:5]}"
    assert not Path("/opt/ghubai-tray").exists()


def test_the_package_holds_what_a_desktop_needs(installed: list[str]) -> None:
    expected = ["/opt/ghubai-tray/ghubai-tray", "/usr/bin/ghubai-tray",
                "/usr/share/applications/ghubai-tray.desktop",
                "/usr/share/icons/hicolor/48x48/apps/ghubai-tray.png",
                "/usr/lib/systemd/user/ghubai-tray.service",
                "/usr/share/man/man1/ghubai-tray.1.gz"]
    assert set(expected) <= set(installed)
    control = dpkg("-s", "ghubai-tray")
    assert "Recommends: gir1.2-ayatanaappindicator3-0.1" in control
    version = subprocess.run(["/usr/bin/ghubai-tray", "--version"], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    assert version.startswith("GhubAi Tray ")
    man = subprocess.run(["zcat", "/usr/share/man/man1/ghubai-tray.1.gz"], capture_output=True,
                         text=True, check=True).stdout
    assert ".SH NAME" in man and "HUB_URL" in man


GLIBC = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
         "ld-linux-x86-64.so.2", "libutil.so.1"}


def test_every_library_taken_from_the_system_is_a_dependency(installed: list[str]) -> None:
    """The bundle leaves some libraries to the system (PyInstaller never bundles the
    graphics stack's libxcb and libwayland; we leave libdbus-1): each must come from a
    package the .deb depends on, or a machine without it gets a tray that cannot start."""
    bundled: set[str] = set()
    needed: set[str] = set()
    for path in map(Path, installed):
        if not path.is_relative_to("/opt/ghubai-tray") or not path.is_file():
            continue
        bundled.add(path.name)
        dynamic = subprocess.run(["readelf", "-d", str(path)], capture_output=True,
                                 text=True).stdout
        needed |= {line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines()
                   if "(NEEDED)" in line}
    from_system = needed - bundled - GLIBC
    assert from_system, "the bundle is expected to use a few system libraries"
    depends = next(line for line in dpkg("-s", "ghubai-tray").splitlines()
                   if line.startswith("Depends:"))
    depended = {d.strip().split(" ")[0] for d in depends.split(":", 1)[1].split(",")}
    for library in sorted(from_system):
        owner = dpkg("-S", f"*/{library}").split(":", 1)[0]
        assert owner in depended, f"{library} (from {owner}) is not in {depends}"


async def test_installed_doctor_and_headless_relay_a_streamed_request(
    installed: list[str], tmp_path: Path
) -> None:
    """Headless as a fleet's machine runs it, OpenTelemetry on: the .deb carries the
    [otel] extra, and the request's trace, the metrics and the logs reach a collector."""
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    ollama = OllamaStandIn(token_delay=0.01)
    collector = OtlpReceiver()
    await hub.start()
    await ollama.start()
    await collector.start()
    env = {**clean_environment(tmp_path), "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
           "OLLAMA_LOCAL_URL": ollama.url}
    try:
        doctor = await asyncio.create_subprocess_exec(
            "/usr/bin/ghubai-tray", "doctor", env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(doctor.communicate(), 60)
        assert doctor.returncode == 0, out.decode()
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/ghubai-tray", "--headless", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={
                **env, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500"})
        try:
            await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()),
                                 60, "the installed worker to register")
            req = await hub.dispatch("llama3.2:1b", "/api/chat", {
                "model": "llama3.2:1b", "stream": True,
                "messages": [{"role": "user", "content": "hi"}]})
            await req.wait()
            assert json.loads(req.fragments[-1])["done"] is True
            await collector.wait_until(lambda: any(
                s.name == "hub request /api/chat" for s in collector.spans()), 30,
                "the request's span from the installed worker")
            await collector.wait_until(lambda: "ghubai.requests" in collector.metrics(), 30,
                                       "its metrics")
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
        assert proc.returncode == 0, err.decode()
        assert TOKEN.encode() not in err
        assert b"OpenTelemetry" not in err or b"could not export" not in err, err.decode()
        assert any("/api/chat llama3.2:1b" in r.body.string_value for r in collector.logs())
        assert TOKEN.encode() not in b"".join(collector.raw)
    finally:
        await hub.stop()
        await ollama.stop()
        await collector.stop()
    # What the user made stays theirs: removal must not touch it (checked after dpkg -r).
    assert (tmp_path / "logs" / "ghubai-tray.log").exists()


async def test_the_installed_package_names_apt_for_a_newer_version(
        installed: list[str], tmp_path: Path) -> None:
    """Installed from the .deb, a newer release is installed with apt, and the notice
    (here: update check, which says what the tray's notification says) names the command."""
    from tests.testbed.releases import FeedRelease, ReleasesFeed

    feed = ReleasesFeed([FeedRelease("v99.0.0")])
    await feed.start()
    try:
        env = {**clean_environment(tmp_path), "GHUBAI_UPDATE_URL": feed.url}
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/ghubai-tray", "update", "check", env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await feed.stop()
    assert proc.returncode == 10, out.decode()
    assert "GhubAi Tray 99.0.0 is out" in out.decode()
    assert "sudo apt install ./ghubai-tray_amd64.deb" in out.decode()


@pytest.mark.skipif(not desktop_available(), reason="Xvfb and trayer needed")
async def test_installed_tray_shows_its_icon(installed: list[str], tmp_path: Path) -> None:
    env = offline_environment(tmp_path)
    with real_desktop(ARTIFACTS) as desk:
        env.update(desk.env)
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/ghubai-tray", env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            icon = await asyncio.to_thread(wait_for, "the installed app's icon", desk.tray_icon)
            await asyncio.to_thread(desk.screenshot, "installed-tray.png",
                                    (320, 40, icon.x + icon.width - 320, 0))
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0

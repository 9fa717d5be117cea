"""Installing an update from the menu (Windows' path), run on Linux with every part real
but the installer: the releases feed on loopback with releases signed by the real
``minisign``, the real download and checks, the test hub and the Ollama stand-in. In the
installer's place a real program is started (a Python one-liner that notes how it was
started), since setup.exe runs only on Windows: tests/test_windows_dist.py runs that."""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray import __version__
from ghubai_tray.adapters.update_install import PENDING, SetupInstaller
from ghubai_tray.app import release_feed
from ghubai_tray.core.signatures import parse_public_key
from ghubai_tray.core.state import InstallUpdate, State
from ghubai_tray.core.updates import parse_version
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.release_key import (
    MINISIGN_MISSING,
    ReleaseKey,
    minisign_available,
    signed_release,
)
from tests.testbed.releases import ReleasesFeed, serving
from tests.worker_bed import running_bed, with_settings

pytestmark = pytest.mark.skipif(not minisign_available(),
                                reason=MINISIGN_MISSING)
mine = parse_version(__version__)
assert mine is not None
NEWER = f"{mine.major}.{mine.minor + 1}.0"
INSTALLER = b"MZ" + b"\x90" * 50_000
CHAT = {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    return ReleaseKey(tmp_path_factory.mktemp("release-key"))


@pytest.fixture
async def feed(key: ReleaseKey) -> AsyncIterator[ReleasesFeed]:
    async with serving([signed_release(f"v{NEWER}", key, INSTALLER)]) as server:
        yield server


def installer(folder: Path, key: ReleaseKey, program: list[str] | None = None,
              current: str = __version__) -> SetupInstaller:
    """The real installer port; ``program`` is started in setup.exe's place, and notes
    its arguments (the checked installer's path) in ``started.json`` beside it."""
    def command(setup: Path) -> list[str]:
        return program or [sys.executable, "-c", "import json, sys; open(sys.argv[1] + "
                           "'.started.json', 'w').write(json.dumps(sys.argv[1:]))", str(setup)]
    return SetupInstaller(folder, parse_public_key(key.public_text),
                          ssl.create_default_context, command=command, current=current)


def options(feed: ReleasesFeed, port: SetupInstaller) -> dict[str, Any]:
    return {"settings": with_settings(update_url=feed.url), "update_feed": release_feed,
            "update_installer": port, "first_update_check": timedelta(hours=1)}


async def test_install_update_downloads_checks_lets_requests_finish_and_hands_over(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    folder = tmp_path / "updates"
    ollama = OllamaStandIn(token_delay=0.05, reply_tokens=["x"] * 40)
    port = installer(folder, key)
    async with running_bed(ollama=ollama, **options(feed, port)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        req = await bed.request("/api/chat", {**CHAT, "stream": True})
        await anext(aiter(req.stream()))
        bed.worker.submit(InstallUpdate())
        await bed.worker.wait_for(lambda s: s.updating == f"Updating to {NEWER}…", 30,
                                  "the update to be handed to its installer")
        setup = folder / f"ghubai-tray-{NEWER}-setup.exe"
        started = folder / f"ghubai-tray-{NEWER}-setup.exe.started.json"
        await feed.wait_until(lambda: started.exists(), 30, "the installer to be started")
        assert json.loads(started.read_text()) == [str(setup)]
        assert [p.wait(30) for p in port.launched] == [0]
        assert setup.read_bytes() == INSTALLER, "what it is given is the checked download"
        await req.wait()  # the request in progress finishes whole...
        assert json.loads(req.fragments[-1])["done"] is True
        assert len("".join(json.loads(f).get("message", {}).get("content", "")
                           for f in req.fragments)) == 40
        # ...and then the worker stops, having told the hub nothing more is served here
        await bed.worker.wait_for(lambda s: s.connection is State.STOPPED, 30, "stopped")
        assert bed.hub.registrations[-1].models == ()
    note = json.loads((folder / PENDING).read_text())
    assert note == {"from": __version__, "to": NEWER, "installer": setup.name}
    # the new version, at its first start, says so once and tidies up
    assert installer(folder, key, current=NEWER).outcome() == (True, f"Updated to {NEWER}, "
                                                                     "as asked")
    assert list(folder.iterdir()) == []
    assert installer(folder, key, current=NEWER).outcome() is None


async def test_a_failed_install_is_said_by_the_version_that_still_runs(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    folder = tmp_path / "updates"
    folder.mkdir()
    (folder / PENDING).write_text(json.dumps({"from": __version__, "to": NEWER}))
    async with running_bed(**options(feed, installer(folder, key))) as bed:
        snap = await bed.worker.wait_for(lambda s: s.notice is not None, 30, "the notice")
        assert snap.notice == (f"the update to {NEWER} did not install; this is still "
                               f"{__version__}. Try again from the menu, or download it "
                               "from its release page")
        assert not (folder / PENDING).exists()


async def test_a_bad_signature_leaves_this_version_running_and_deletes_the_download(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    other = ReleaseKey(tmp_path / "other-key")
    feed.releases = [signed_release(f"v{NEWER}", other, INSTALLER)]
    folder = tmp_path / "updates"
    async with running_bed(**options(feed, installer(folder, key))) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.worker.submit(InstallUpdate())
        snap = await bed.worker.wait_for(lambda s: s.notice is not None, 30, "the refusal")
        assert snap.notice is not None and snap.notice.startswith(
            f"the update to {NEWER} was not installed: SHA256SUMS is not the project's: "
            "it is signed with another key")
        assert snap.updating is None and snap.connection is State.REGISTERED
        assert not folder.exists() or list(folder.iterdir()) == []
        # still serving
        req = await bed.request("/api/chat", {**CHAT, "stream": False})
        await req.wait()
        assert json.loads(req.fragments[-1])["done"] is True


async def test_an_installer_that_cannot_start_leaves_this_version_running(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    folder = tmp_path / "updates"
    port = installer(folder, key, program=[str(tmp_path / "no-such-program")])
    async with running_bed(**options(feed, port)) as bed:
        await bed.registered("llama3.2:1b", "mistral:7b")
        bed.worker.submit(InstallUpdate())
        snap = await bed.worker.wait_for(lambda s: s.notice is not None, 30, "the failure")
        assert snap.notice is not None and snap.notice.startswith(
            f"the update to {NEWER} was not installed: its installer could not be started")
        assert list(folder.iterdir()) == [], "the download and the note are gone"
        assert snap.connection is State.REGISTERED


async def test_with_nothing_newer_nothing_is_installed(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    feed.releases = [signed_release(f"v{__version__}", key, INSTALLER)]
    async with running_bed(**options(feed, installer(tmp_path / "u", key))) as bed:
        bed.worker.submit(InstallUpdate())
        snap = await bed.worker.wait_for(lambda s: s.notice is not None, 30, "the answer")
        assert snap.notice == f"no newer version than {__version__} is known; nothing was " \
                              "installed"
        assert feed.downloads == []

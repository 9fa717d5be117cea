"""Update notices: ``ghubai-tray update check`` and the worker's daily look, against a
releases feed on loopback (tests/testbed/releases.py) in the GitHub Releases API's shape."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray import __version__
from ghubai_tray.app import release_feed
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import UpdateView
from ghubai_tray.core.updates import parse_version
from ghubai_tray.worker.runtime import SideJobs
from ghubai_tray.worker.store import StateStore
from ghubai_tray.worker.updates import UpdateWatch
from tests.processes import clean_environment, cli
from tests.testbed.releases import FeedFault, FeedRelease, ReleasesFeed, serving

mine = parse_version(__version__)
assert mine is not None
NEWER = f"v{mine.major}.{mine.minor + 1}.0"
OLDER = "v0.0.1"


@pytest.fixture
async def feed() -> AsyncIterator[ReleasesFeed]:
    async with serving() as server:
        yield server


async def check(feed: ReleasesFeed, tmp_path: Path, *args: str,
                **variables: str) -> tuple[int, str, str]:
    env = {**clean_environment(tmp_path), "GHUBAI_UPDATE_URL": feed.url, **variables}
    return await cli("update", "check", *args, env=env)


@pytest.mark.parametrize("tags,code,said", [
    ([NEWER, f"v{__version__}", OLDER], 10, f"GhubAi Tray {NEWER[1:]} is out (this is "
                                            f"{__version__})"),
    ([f"v{__version__}", OLDER], 0, f"GhubAi Tray {__version__} is the newest version."),
    ([OLDER], 0, "is the newest version"),
    ([], 0, "is the newest version"),
])
async def test_update_check_says_what_the_feed_has(feed: ReleasesFeed, tmp_path: Path,
                                                   tags: list[str], code: int,
                                                   said: str) -> None:
    feed.releases = [FeedRelease(t) for t in tags]
    got, out, err = await check(feed, tmp_path)
    assert (got, said in out) == (code, True), out + err
    headers = {k.lower(): v for k, v in feed.seen[-1].items()}
    assert headers["user-agent"] == f"GhubAi-Tray/{__version__}"
    # nothing but the User-Agent and what any HTTP client sends: no token, no machine name
    assert set(headers) <= {"host", "user-agent", "accept", "accept-encoding", "connection"}


async def test_pre_releases_only_when_asked_for(feed: ReleasesFeed, tmp_path: Path) -> None:
    feed.releases = [FeedRelease(NEWER + "-rc.1", prerelease=True), FeedRelease(OLDER)]
    assert (await check(feed, tmp_path))[0] == 0
    code, out, _ = await check(feed, tmp_path, "--json", GHUBAI_UPDATE_PRERELEASES="1")
    assert code == 10
    assert json.loads(out) == {"current": __version__, "newest": NEWER[1:] + "-rc.1",
                               "update": True,
                               "page": f"{feed.url.split('/repos')[0]}/releases/tag/"
                                       f"{NEWER}-rc.1"}


@pytest.mark.parametrize("fault,said", [
    (FeedFault.RATE_LIMITED, "the releases feed limits how often it is asked (until "),
    (FeedFault.NOT_JSON, "the releases feed's answer is not JSON"),
])
async def test_a_feed_that_cannot_tell_is_exit_1_in_words(feed: ReleasesFeed, tmp_path: Path,
                                                          fault: FeedFault, said: str) -> None:
    feed.fault = fault
    code, _, err = await check(feed, tmp_path)
    assert code == 1 and said in err, err


async def test_a_feed_that_is_down_or_slow_is_exit_1(tmp_path: Path) -> None:
    env = {**clean_environment(tmp_path)}  # nothing listens at its loopback feed address
    code, _, err = await cli("update", "check", env=env)
    assert code == 1 and "the releases feed cannot be reached (ConnectError)" in err
    from ghubai_tray.adapters.tls import client_context
    from ghubai_tray.adapters.update_feed import FeedError, fetch_feed

    server = ReleasesFeed()
    await server.start()
    server.fault = FeedFault.SLOW
    try:
        with pytest.raises(FeedError, match="did not answer within 0.5 s"):
            await fetch_feed(server.url, client_context(False), timeout=0.5)
    finally:
        await server.stop()


class NoJitter(random.Random):
    """The jitter drawn as none, so that the test's clock says exactly when asks are due
    (core/updates.py's tests cover the jitter's bounds)."""

    def uniform(self, a: float, b: float) -> float:
        return a


async def watch(settings: Settings, feed: Any, now: list[datetime]) -> tuple[
        StateStore, asyncio.Task[None]]:
    store = StateStore(settings, SideJobs())
    updates = UpdateWatch(store, feed, lambda: now[0], NoJitter(),
                          first_after=timedelta(0), look=0.01)
    return store, asyncio.create_task(updates.run())


async def test_the_worker_learns_of_a_newer_version_and_asks_again_a_day_later(
        feed: ReleasesFeed) -> None:
    feed.releases = [FeedRelease(NEWER)]
    now = [datetime(2026, 12, 5, 12, 0).astimezone()]
    store, task = await watch(Settings(update_url=feed.url), release_feed, now)
    try:
        snap = await store.wait_for(lambda s: s.update is not None, 30, "the update")
        assert snap.update == UpdateView(NEWER[1:], f"{feed.url.split('/repos')[0]}"
                                                    f"/releases/tag/{NEWER}")
        assert len(feed.seen) == 1
        feed.releases = []
        now[0] += timedelta(days=1)  # a day later (the jitter is drawn as 0 here)
        await feed.wait_until(lambda: len(feed.seen) == 2, 30, "the second ask")
        await store.wait_for(lambda s: s.update is None, 30, "no update any more")
    finally:
        task.cancel()


async def test_with_the_check_off_the_feed_is_never_asked(feed: ReleasesFeed) -> None:
    asked: list[Settings] = []

    async def counted(settings: Settings) -> Any:
        asked.append(settings)
        return await release_feed(settings)

    now = [datetime(2026, 12, 5, 12, 0).astimezone()]
    store, task = await watch(Settings(update_url=feed.url, check_for_updates=False),
                              counted, now)
    try:
        # an update told of before the owner turned the check off is taken back: once
        # that is done, the watch has run with the check off, and it asked nothing
        store.update(UpdateView("9.9.9", "https://example.com/"))
        await store.wait_for(lambda s: s.update is None, 30, "the watch to see the check off")
        assert asked == [] and feed.seen == []
        store.settings(Settings(update_url=feed.url))
        await feed.wait_until(lambda: len(feed.seen) == 1, 30, "the ask once turned on")
    finally:
        task.cancel()


@pytest.mark.skipif(sys.platform == "win32", reason="Linux's answer")
async def test_update_install_on_linux_says_where_updates_come_from(
        feed: ReleasesFeed, tmp_path: Path) -> None:
    feed.releases = [FeedRelease(NEWER)]
    env = {**clean_environment(tmp_path), "GHUBAI_UPDATE_URL": feed.url}
    code, out, err = await cli("update", "install", env=env)
    assert code == 1, out + err
    assert "on Linux GhubAi Tray does not install its own updates; 'ghubai-tray update " \
           "check' says whether one is out" in err
    assert feed.seen == [] and feed.downloads == [], "nothing asked, nothing downloaded"

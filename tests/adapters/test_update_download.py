"""Downloading and checking an update against a releases feed on loopback, with
releases signed by the real ``minisign`` program (tests/testbed/release_key.py)."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ghubai_tray.adapters.update_download import UpdateError, download_verified
from ghubai_tray.adapters.update_feed import fetch_feed
from ghubai_tray.core.signatures import parse_public_key
from ghubai_tray.core.updates import Release, releases
from tests.testbed.release_key import (
    MINISIGN_MISSING,
    SETUP,
    ReleaseKey,
    minisign_available,
    signed_release,
    sums,
)
from tests.testbed.releases import ReleasesFeed, serving

pytestmark = pytest.mark.skipif(not minisign_available(),
                                reason=MINISIGN_MISSING)
CURRENT = "0.1.0"
INSTALLER = b"MZ" + bytes(range(256)) * 400  # 100 KiB of a pretend setup.exe


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    return ReleaseKey(tmp_path_factory.mktemp("release-key"))


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    return ReleaseKey(tmp_path_factory.mktemp("other-key"))


@pytest.fixture
async def feed() -> AsyncIterator[ReleasesFeed]:
    async with serving() as server:
        yield server


async def the_release(feed: ReleasesFeed) -> Release:
    found = releases(await fetch_feed(feed.url, ssl.create_default_context()))
    assert found, "the feed lists the release"
    return found[0]


async def download(feed: ReleasesFeed, key: ReleaseKey, folder: Path,
                   current: str = CURRENT) -> Path:
    return await download_verified(await the_release(feed), parse_public_key(
        key.public_text), folder, current, ssl.create_default_context())


async def refused(feed: ReleasesFeed, key: ReleaseKey, folder: Path,
                  current: str = CURRENT) -> str:
    with pytest.raises(UpdateError) as caught:
        await download(feed, key, folder, current)
    assert not folder.exists() or list(folder.iterdir()) == [], "nothing is left behind"
    return str(caught.value)


async def test_a_newer_signed_release_is_downloaded_whole(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    feed.releases = [signed_release("v0.2.0", key, INSTALLER)]
    path = await download(feed, key, tmp_path / "updates")
    assert path.name == "ghubai-tray-0.2.0-setup.exe"
    assert path.read_bytes() == INSTALLER
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("current", ["0.2.0", "0.3.0", "1.0.0"])
async def test_the_same_or_an_older_version_is_refused(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path, current: str) -> None:
    feed.releases = [signed_release("v0.2.0", key, INSTALLER)]
    said = await refused(feed, key, tmp_path / "updates", current)
    assert said == f"0.2.0 is not newer than this version ({current})"
    assert feed.downloads == [], "nothing is downloaded for it"


async def test_a_pre_release_is_installed_as_any_release(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    feed.releases = [signed_release("v0.2.0-rc.1", key, INSTALLER)]
    feed.releases[0].prerelease = True
    path = await download(feed, key, tmp_path / "updates")
    assert path.name == "ghubai-tray-0.2.0-rc.1-setup.exe"


async def test_a_changed_installer_is_refused(feed: ReleasesFeed, key: ReleaseKey,
                                              tmp_path: Path) -> None:
    release = signed_release("v0.2.0", key, INSTALLER)
    release.served[SETUP] = b"MZ evil" + INSTALLER[7:]  # the same size
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert "is not the file SHA256SUMS lists (its SHA-256 differs)" in said


async def test_a_cut_download_is_refused(feed: ReleasesFeed, key: ReleaseKey,
                                         tmp_path: Path) -> None:
    release = signed_release("v0.2.0", key, INSTALLER)
    release.served[SETUP] = INSTALLER[:5000]
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert said == f"the download of {SETUP} was cut short (5000 of {len(INSTALLER)} bytes)"


async def test_a_longer_download_than_listed_is_refused(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    release = signed_release("v0.2.0", key, INSTALLER)
    release.served[SETUP] = INSTALLER + b"more"
    feed.releases = [release]
    assert "is larger than the release says" in await refused(feed, key, tmp_path / "u")


async def test_changed_sums_are_refused(feed: ReleasesFeed, key: ReleaseKey,
                                        tmp_path: Path) -> None:
    evil = b"MZ evil"
    release = signed_release("v0.2.0", key, INSTALLER)
    release.files[SETUP] = evil  # the feed lists it, and sums that name it...
    release.files["SHA256SUMS"] = sums({SETUP: evil})  # ...under the old signature
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert said == "SHA256SUMS is not the project's: its signature does not match its content"


async def test_another_keys_signature_is_refused(feed: ReleasesFeed, key: ReleaseKey,
                                                 other_key: ReleaseKey,
                                                 tmp_path: Path) -> None:
    feed.releases = [signed_release("v0.2.0", other_key, INSTALLER)]
    said = await refused(feed, key, tmp_path / "updates")
    assert said.startswith("SHA256SUMS is not the project's: it is signed with another key")


async def test_a_forged_signature_with_the_right_key_id_is_refused(
        feed: ReleasesFeed, key: ReleaseKey, other_key: ReleaseKey, tmp_path: Path) -> None:
    release = signed_release("v0.2.0", other_key, INSTALLER)
    lines = release.files["SHA256SUMS.minisig"].decode().splitlines()
    import base64
    raw = bytearray(base64.b64decode(lines[1]))
    raw[2:10] = parse_public_key(key.public_text).key_id  # claims to be the project's
    lines[1] = base64.b64encode(bytes(raw)).decode()
    release.files["SHA256SUMS.minisig"] = ("\n".join(lines) + "\n").encode()
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert said == "SHA256SUMS is not the project's: its signature does not match its content"


async def test_an_altered_trusted_comment_is_refused(feed: ReleasesFeed, key: ReleaseKey,
                                                     tmp_path: Path) -> None:
    release = signed_release("v0.1.5", key, INSTALLER)
    release.tag = "v0.2.0"
    release.files["SHA256SUMS.minisig"] = release.files["SHA256SUMS.minisig"].replace(
        b"GhubAi Tray 0.1.5", b"GhubAi Tray 0.2.0")
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert said == "SHA256SUMS is not the project's: its signed comment was altered"


async def test_an_old_releases_files_under_a_new_tag_are_refused(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path) -> None:
    release = signed_release("v0.0.9", key, INSTALLER)  # genuinely signed, but old
    release.tag = "v9.0.0"
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert said == "the signed SHA256SUMS is for version 0.0.9, not 9.0.0"


@pytest.mark.parametrize("leave_out", [SETUP, "SHA256SUMS", "SHA256SUMS.minisig"])
async def test_a_release_without_its_files_is_refused(
        feed: ReleasesFeed, key: ReleaseKey, tmp_path: Path, leave_out: str) -> None:
    release = signed_release("v0.2.0", key, INSTALLER)
    del release.files[leave_out]
    feed.releases = [release]
    assert await refused(feed, key, tmp_path / "updates") == f"release 0.2.0 has no {leave_out}"


async def test_a_garbled_signature_file_is_refused(feed: ReleasesFeed, key: ReleaseKey,
                                                   tmp_path: Path) -> None:
    release = signed_release("v0.2.0", key, INSTALLER)
    release.files["SHA256SUMS.minisig"] = b"<html>not found</html>"
    feed.releases = [release]
    said = await refused(feed, key, tmp_path / "updates")
    assert said.startswith("SHA256SUMS.minisig is unreadable: ")


async def test_a_build_without_a_release_key_says_so(feed: ReleasesFeed, key: ReleaseKey,
                                                     tmp_path: Path) -> None:
    feed.releases = [signed_release("v0.2.0", key, INSTALLER)]
    with pytest.raises(UpdateError, match="this build carries no release key"):
        await download_verified(await the_release(feed), None, tmp_path, CURRENT,
                                ssl.create_default_context())
    assert feed.downloads == []


async def test_a_missing_download_is_refused(feed: ReleasesFeed, key: ReleaseKey,
                                             tmp_path: Path) -> None:
    feed.releases = [signed_release("v0.2.0", key, INSTALLER)]
    release = await the_release(feed)
    feed.releases = []  # gone between the feed and the download
    with pytest.raises(UpdateError, match=r"SHA256SUMS could not be downloaded \(HTTP 404\)"):
        await download_verified(release, parse_public_key(key.public_text), tmp_path,
                                CURRENT, ssl.create_default_context())


def test_the_sums_the_tests_write_are_sha256sums(tmp_path: Path) -> None:
    # the same form installer/release.py writes (and sha256sum --check reads)
    assert sums({"a": b"x"}) == f"{hashlib.sha256(b'x').hexdigest()}  a\n".encode()


async def test_a_huge_sums_file_is_refused_unread(feed: ReleasesFeed, key: ReleaseKey,
                                                  tmp_path: Path) -> None:
    release = signed_release("v0.2.0", key, INSTALLER)
    release.files["SHA256SUMS"] = b"0" * 70_000
    feed.releases = [release]
    assert await refused(feed, key, tmp_path / "updates") == "SHA256SUMS is far too large"

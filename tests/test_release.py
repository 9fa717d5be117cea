"""The release's own checks: one version, its changelog section, checksums signed with
minisign and checked by the real ``minisign`` and ``sha256sum`` programs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghubai_tray import __version__
from ghubai_tray.adapters.release_check import verify
from ghubai_tray.core.signatures import (
    parse_public_key,
    parse_signature,
    parse_sums,
    release_comment,
    signed_version,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "installer"))
import release  # noqa: E402

CHANGELOG = """# Changelog

Intro text.

## [Unreleased]

### Added

- something new

## [1.2.0] - 2026-12-01

### Fixed

- a thing

## [1.1.0] - unreleased

[Unreleased]: https://github.com/ghubai/ghubai-tray/compare/v1.2.0...HEAD
[1.2.0]: https://github.com/ghubai/ghubai-tray/releases/tag/v1.2.0
"""

needs_minisign = pytest.mark.skipif(
    not shutil.which("minisign") and not os.environ.get("CI"),
    reason="minisign is needed (make test installs it)")


def test_each_version_has_its_section_and_date() -> None:
    found = release.sections(CHANGELOG)
    assert found["Unreleased"] == (None, "### Added\n\n- something new")
    assert found["1.2.0"] == ("2026-12-01", "### Fixed\n\n- a thing")
    assert found["1.1.0"] == ("unreleased", "")
    assert release.notes("1.2.0", CHANGELOG) == "### Fixed\n\n- a thing"


@pytest.mark.parametrize("tag,version,why", [
    ("v1.2.1", "1.2.0", "the tag v1.2.1 does not name this version (1.2.0"),
    ("1.2.0", "1.2.0", "the tag 1.2.0 does not name this version"),
    ("v1.3.0", "1.3.0", "CHANGELOG.md has no section for 1.3.0"),
    ("v1.1.0", "1.1.0", "CHANGELOG.md's section for 1.1.0 is empty"),
])
def test_a_tag_is_released_only_as_its_own_dated_version(tag: str, version: str,
                                                         why: str) -> None:
    with pytest.raises(release.ReleaseError, match=why.replace("(", r"\(")):
        release.check(tag, version, CHANGELOG)


def test_a_dated_section_of_the_tagged_version_passes() -> None:
    release.check("v1.2.0", "1.2.0", CHANGELOG)
    undated = CHANGELOG.replace("## [1.2.0] - 2026-12-01", "## [1.2.0]")
    with pytest.raises(release.ReleaseError, match="has no release date"):
        release.check("v1.2.0", "1.2.0", undated)


def test_the_projects_version_is_the_packages_and_its_changelog_has_it() -> None:
    assert release.package_version() == __version__
    changelog = release.CHANGELOG.read_text(encoding="utf-8")
    assert release.notes(__version__, changelog)
    assert "Unreleased" in release.sections(changelog)


@needs_minisign
def test_the_sums_are_signed_so_that_minisign_and_sha256sum_check_them(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["minisign", "-G", "-W", "-p", str(keys / "k.pub"), "-s",
                    str(keys / "k.sec")], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=30)
    files = tmp_path / "dist"
    files.mkdir()
    (files / "ghubai-tray-1.2.0-setup.exe").write_bytes(os.urandom(4096))
    (files / "ghubai-tray_1.2.0_amd64.deb").write_bytes(os.urandom(3000))
    comment = release.COMMENT.format("1.2.0")
    assert comment == release_comment("1.2.0"), "the app reads the version back from it"
    written = release.write_sums(files, keys / "k.sec", comment)
    assert [p.name for p in written] == ["SHA256SUMS", "SHA256SUMS.minisig"]
    sums = (files / "SHA256SUMS").read_text()
    assert sums.count("\n") == 2 and "SHA256SUMS" not in sums

    def verified() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["minisign", "-V", "-p", str(keys / "k.pub"), "-m",
                               str(files / "SHA256SUMS")], capture_output=True, text=True,
                              timeout=30, check=False)

    def summed() -> int:
        return subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=files,
                              capture_output=True, timeout=30, check=False).returncode

    done = verified()
    assert done.returncode == 0 and "GhubAi Tray 1.2.0 release files" in done.stdout
    assert summed() == 0
    # the app reads and checks the same files
    signature = parse_signature((files / "SHA256SUMS.minisig").read_text())
    verify(parse_public_key((keys / "k.pub").read_text()), signature,
           (files / "SHA256SUMS").read_bytes())
    assert signed_version(signature) == "1.2.0"
    assert set(parse_sums(sums)) == {"ghubai-tray-1.2.0-setup.exe", "ghubai-tray_1.2.0_amd64.deb"}
    exe = files / "ghubai-tray-1.2.0-setup.exe"
    exe.write_bytes(exe.read_bytes()[:-1] + b"\0")  # a tampered download
    assert summed() != 0
    (files / "SHA256SUMS").write_text(release.sha256sums(files))  # ... and sums to match
    assert verified().returncode != 0, "the signature no longer matches the sums"


def test_nothing_to_release_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(release.ReleaseError, match="holds no files"):
        release.sha256sums(tmp_path)


def test_the_builds_are_staged_under_the_names_the_readme_links(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("ghubai-tray-1.2.0-setup.exe", "ghubai-tray_1.2.0_amd64.deb",
                 "ghubai-tray-1.2.0-linux-x86_64.tar.gz", "unrelated.txt"):
        (dist / name).write_text(name)
    staged = release.stage(dist, tmp_path / "release")
    assert sorted(p.name for p in staged) == sorted(release.STABLE_NAMES.values())
    assert (tmp_path / "release" / "ghubai-tray_amd64.deb").read_text() == \
        "ghubai-tray_1.2.0_amd64.deb"
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in release.STABLE_NAMES.values():
        assert f"releases/latest/download/{name}" in readme, name
    (dist / "ghubai-tray-1.1.0-setup.exe").write_text("an older build")
    with pytest.raises(release.ReleaseError, match=r"expected one \*-setup.exe in .*found 2"):
        release.stage(dist, tmp_path / "again")

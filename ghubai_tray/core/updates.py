"""Is there a newer GhubAi Tray? Pure answers from a releases feed's JSON, and when to ask.

The feed is the GitHub Releases API of the project's repository (a list of releases,
newest first: ``tag_name``, ``html_url``, ``draft``, ``prerelease``, ``assets`` with
``name``, ``size`` and ``browser_download_url``); its address is a setting, so a fork or
a test bed serves its own. What it says is read defensively (whatever answers at that
address is a stranger too): only well-formed entries count, and nothing in it is run.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

FIRST_CHECK_AFTER = timedelta(minutes=10)  # not while the owner watches it start
CHECK_EVERY = timedelta(days=1)
JITTER = timedelta(hours=2)  # so that donors do not all ask at the same minute
RETRY_AFTER = timedelta(hours=6)  # a feed that could not answer
MAX_RELEASES = 100
_VERSION = re.compile(r"^v?(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:-([0-9A-Za-z.-]{1,40}))?$")


@dataclass(frozen=True, order=True)
class Version:
    """A release's version; pre-releases (``1.2.0-rc.1``) sort before their release."""

    major: int
    minor: int
    patch: int
    final: bool  # True sorts after False: 1.2.0 > 1.2.0-rc.1
    pre: tuple[tuple[int, int | str], ...] = ()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core if self.final else core + "-" + ".".join(str(p[1]) for p in self.pre)


def parse_version(text: str) -> Version | None:
    found = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    major, minor, patch, pre = found.groups()
    parts: tuple[tuple[int, int | str], ...] = ()
    if pre:
        # SemVer: numeric identifiers sort numerically and before alphanumeric ones
        parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return Version(int(major), int(minor), int(patch), not pre, parts)


@dataclass(frozen=True)
class Asset:
    name: str
    size: int
    url: str


@dataclass(frozen=True)
class Release:
    version: Version
    page: str  # the release's page, for its notes
    assets: tuple[Asset, ...]

    def asset(self, name: str) -> Asset | None:
        return next((a for a in self.assets if a.name == name), None)


def _https(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) \
        and len(value) <= 2048 else None


def _assets(entries: Any) -> tuple[Asset, ...]:
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        name, size, url = entry.get("name"), entry.get("size"), \
            _https(entry.get("browser_download_url"))
        if isinstance(name, str) and isinstance(size, int) and not isinstance(size, bool) \
                and size >= 0 and url:
            found.append(Asset(name, size, url))
    return tuple(found)


def releases(feed: Any) -> list[Release]:
    """The well-formed, published releases in a feed (drafts and odd entries left out)."""
    found = []
    for entry in feed[:MAX_RELEASES] if isinstance(feed, list) else []:
        if not isinstance(entry, dict) or entry.get("draft") is True:
            continue
        version = parse_version(entry.get("tag_name", ""))
        page = _https(entry.get("html_url"))
        if version is None or page is None:
            continue
        if entry.get("prerelease") is True and version.final:
            # GitHub's flag wins: a pre-release tagged like a release is still one
            version = Version(version.major, version.minor, version.patch, False,
                              ((1, "pre"),))
        found.append(Release(version, page, _assets(entry.get("assets"))))
    return found


def newest(feed: Any, current: str, prereleases: bool = False) -> Release | None:
    """The newest release later than ``current``; pre-releases only when asked for."""
    mine = parse_version(current)
    candidates = [r for r in releases(feed) if prereleases or r.version.final]
    if mine is None or not candidates:
        return None
    best = max(candidates, key=lambda r: r.version)
    return best if best.version > mine else None


def next_check(now: datetime, first: datetime, last: datetime | None, failed: bool,
               rng: random.Random) -> datetime:
    """When to ask the feed next: not before ``first`` (the app's start plus
    :data:`FIRST_CHECK_AFTER`), then about once a day (a failed ask sooner), each time
    moved by a random part of :data:`JITTER`."""
    jitter = timedelta(seconds=rng.uniform(0, JITTER.total_seconds()))
    if last is None:
        return max(now, first) + jitter / 12
    return max(now, last + (RETRY_AFTER if failed else CHECK_EVERY) + jitter)

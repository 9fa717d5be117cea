"""Which release is newer, what a feed's entries count for, and when to ask: pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.updates import (
    CHECK_EVERY,
    FIRST_CHECK_AFTER,
    JITTER,
    RETRY_AFTER,
    newest,
    next_check,
    parse_version,
    releases,
)


def entry(tag: str, **extra: Any) -> dict[str, Any]:
    return {"tag_name": tag, "html_url": f"https://example.com/releases/tag/{tag}",
            "draft": False, "prerelease": False, "assets": [], **extra}


def test_semver_order_with_pre_releases_before_their_release() -> None:
    order = ["0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
             "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0"]
    parsed = [parse_version(v) for v in order]
    assert None not in parsed
    assert parsed == sorted(parsed)  # type: ignore[type-var]
    assert [str(v) for v in parsed] == order
    assert parse_version("v2.3.4") == parse_version("2.3.4")


@given(st.text(max_size=30))
def test_anything_else_is_no_version(text: str) -> None:
    version = parse_version(text)
    assert version is None or str(version).lstrip("v") in text


def test_newer_same_older_and_pre_releases() -> None:
    feed = [entry("v0.3.0-rc.1", prerelease=True), entry("v0.2.0"), entry("v0.1.0")]
    found = newest(feed, "0.1.0")
    assert found is not None and str(found.version) == "0.2.0"
    assert found.page == "https://example.com/releases/tag/v0.2.0"
    assert newest(feed, "0.2.0") is None, "the same version is no update"
    assert newest(feed, "0.5.0") is None, "an older one neither"
    pre = newest(feed, "0.2.0", prereleases=True)
    assert pre is not None and str(pre.version) == "0.3.0-rc.1"


def test_drafts_odd_entries_and_odd_feeds_count_for_nothing() -> None:
    feed: list[Any] = [entry("v9.0.0", draft=True), entry("nightly"), "junk", None,
                       entry("v8.0.0", html_url="javascript:alert(1)"),
                       entry("v7.0.0", prerelease=True),  # flagged pre-release by GitHub
                       entry("v0.2.0", assets=[{"name": "a", "size": 3,
                                                "browser_download_url": "https://x/a"},
                                               {"name": "b", "size": "3"}])]
    found = newest(feed, "0.1.0")
    assert found is not None and str(found.version) == "0.2.0"
    assert [a.name for a in found.assets] == ["a"]
    assert releases({"message": "Not Found"}) == []
    assert newest([entry("v1.0.0")], "not a version") is None


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                    timezones=st.just(UTC)),
       st.integers(min_value=0, max_value=7 * 86400), st.booleans(), st.integers())
def test_asked_not_at_start_then_about_daily(started: datetime, seconds: int, failed: bool,
                                              seed: int) -> None:
    now = started + timedelta(seconds=seconds)
    rng = random.Random(seed)
    first = next_check(now, started + FIRST_CHECK_AFTER, None, False, rng)
    assert first >= started + FIRST_CHECK_AFTER and first >= now
    assert first <= max(now, started + FIRST_CHECK_AFTER) + JITTER / 12
    later = next_check(now, started + FIRST_CHECK_AFTER, now, failed, rng)
    wait = later - now
    assert (RETRY_AFTER if failed else CHECK_EVERY) <= wait <= \
        (RETRY_AFTER if failed else CHECK_EVERY) + JITTER

"""Asking the releases feed (the GitHub Releases API) what the newest release is.

It sends nothing but the request line and two headers: a User-Agent with this version
(GitHub's API refuses requests without one) and the Accept type GitHub documents. The
answer is read up to :data:`MAX_FEED_BYTES`; anything unexpected is a :class:`FeedError`
in words, which the caller logs and retries later, never an alarm for the owner.
"""

from __future__ import annotations

import json
import ssl
from datetime import datetime
from typing import Any

import httpx

from ghubai_tray import __version__
from ghubai_tray.adapters.http_body import body_within

USER_AGENT = f"GhubAi-Tray/{__version__}"
MAX_FEED_BYTES = 4 * 1024 * 1024  # 100 releases with their notes are well under 1 MB
FEED_TIMEOUT = 20.0


class FeedError(Exception):
    """The feed gave no usable answer; the text says why, for the log and the CLI."""


async def fetch_feed(url: str, ssl_context: ssl.SSLContext,
                     timeout: float = FEED_TIMEOUT) -> Any:
    """The feed's JSON (a list of releases, newest first)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/vnd.github+json"}
    try:
        async with httpx.AsyncClient(verify=ssl_context, timeout=timeout,
                                     follow_redirects=True, max_redirects=3) as http:
            async with http.stream("GET", url, headers=headers) as response:
                if response.status_code in (403, 429) and _rate_limited(response):
                    raise FeedError("the releases feed limits how often it is asked"
                                    + _until(response) + "; it is asked again later")
                if response.status_code != 200:
                    raise FeedError(f"the releases feed answered HTTP {response.status_code}")
                body = await body_within(response, MAX_FEED_BYTES, lambda: FeedError(
                    "the releases feed's answer is far too large"))
    except httpx.TimeoutException:
        raise FeedError(f"the releases feed did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"the releases feed cannot be reached ({type(exc).__name__})") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FeedError("the releases feed's answer is not JSON") from None


def _rate_limited(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.headers.get("x-ratelimit-remaining") == "0"


def _until(response: httpx.Response) -> str:
    reset = response.headers.get("x-ratelimit-reset", "")
    if not reset.isdigit():
        return ""
    when = datetime.fromtimestamp(int(reset)).astimezone()
    return f" (until {when:%H:%M})"

"""A releases feed on loopback, in the GitHub Releases API's shape, for the update tests.

``GET /repos/ghubai/ghubai-tray/releases`` answers the list of releases (newest first)
as GitHub does: ``tag_name``, ``name``, ``html_url``, ``draft``, ``prerelease``,
``published_at`` and ``assets`` with ``name``, ``size`` and ``browser_download_url``
(served here too). It can also be slow, refuse as GitHub's rate limit does (403 with
``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``), or answer what is not JSON;
it records each request's headers, so a test sees all that the app sent.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.testbed._util import LoopbackServer, Observable

PATH = "/repos/ghubai/ghubai-tray/releases"


class FeedFault(enum.Enum):
    NONE = "none"
    SLOW = "slow"  # answers after 60 s
    RATE_LIMITED = "rate limited"
    NOT_JSON = "not json"


@dataclass
class FeedRelease:
    tag: str
    prerelease: bool = False
    draft: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    # what a download gives when it differs from what the feed lists (its size is
    # ``files``'): a file changed on the way, or cut short
    served: dict[str, bytes] = field(default_factory=dict)


class ReleasesFeed(Observable, LoopbackServer):
    def __init__(self, releases: list[FeedRelease] | None = None) -> None:
        Observable.__init__(self)
        LoopbackServer.__init__(self)
        self.releases = releases or []
        self.fault = FeedFault.NONE
        self.seen: list[dict[str, str]] = []  # the headers of each feed request
        self.downloads: list[str] = []  # the path of each download asked for

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH, self._feed)
        app.router.add_get("/download/{tag}/{name}", self._download)
        return app

    def _entry(self, release: FeedRelease) -> dict[str, object]:
        base = f"http://{self.host}:{self.port}"
        return {"tag_name": release.tag, "name": f"GhubAi Tray {release.tag.lstrip('v')}",
                "html_url": f"{base}/releases/tag/{release.tag}", "draft": release.draft,
                "prerelease": release.prerelease, "published_at": "2026-12-01T10:00:00Z",
                "body": "## Changed\n\n- things",
                "assets": [{"name": name, "size": len(data), "content_type":
                            "application/octet-stream",
                            "browser_download_url": f"{base}/download/{release.tag}/{name}"}
                           for name, data in release.files.items()]}

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        self.notify()
        if self.fault is FeedFault.SLOW:
            await asyncio.sleep(60)
        if self.fault is FeedFault.RATE_LIMITED:
            return web.json_response(
                {"message": "API rate limit exceeded for 127.0.0.1."}, status=403,
                headers={"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0",
                         "x-ratelimit-reset": str(int(time.time()) + 1800)})
        if self.fault is FeedFault.NOT_JSON:
            return web.Response(text="<html>a captive portal</html>",
                                content_type="text/html")
        return web.Response(text=json.dumps([self._entry(r) for r in self.releases]),
                            content_type="application/json")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        self.downloads.append(request.path)
        for release in self.releases:
            if release.tag == request.match_info["tag"]:
                name = request.match_info["name"]
                data = release.served.get(name, release.files.get(name))
                if data is not None:
                    return web.Response(body=data)
        raise web.HTTPNotFound()


@asynccontextmanager
async def serving(releases: list[FeedRelease] | None = None) -> AsyncIterator[ReleasesFeed]:
    """A started feed, stopped at the end (the tests' fixture)."""
    server = ReleasesFeed(releases)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()

"""Discovery: ask the model server for its models every few seconds, and say what it answered.

The snapshot's model list (and so the registration, which the hub supervisor
derives from it) follows the server's own list (Ollama's ``/api/tags``, an
OpenAI server's ``/v1/models``, LM Studio's ``/api/v0/models``); when the server
is away the last list stays for the menu, but nothing is offered to the hub.
Which kind of server answers is asked once per address (core/server_kinds.py),
and the link then speaks to it through that kind's adapter.
"""

from __future__ import annotations

import asyncio
import logging

from ghubai_tray.core import texts
from ghubai_tray.core.errors import OllamaError, OllamaUnreachable, TagsParseError
from ghubai_tray.core.server_kinds import ServerIdentity, ServerKind
from ghubai_tray.core.state import OllamaStatus
from ghubai_tray.core.tags import LocalModel
from ghubai_tray.worker.ports import OllamaLink
from ghubai_tray.worker.runtime import Problems, SideJobs, wait_event
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

POLL_INTERVAL = 5.0  # a cheap model-list poll; RegisterNode is sent only on change


class Discovery:
    def __init__(self, store: StateStore, link: OllamaLink, jobs: SideJobs, problems: Problems,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self._store = store
        self._link = link
        self._jobs = jobs
        self._problems = problems
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._identified: tuple[str, ServerIdentity] | None = None  # at which address

    def now(self) -> None:
        """Ask again at once (the model server's address changed)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self._discover()
            except Exception:  # a bug here must not stop discovery for good
                log.exception("unexpected error while asking the model server for its models")
            self._wake.clear()
            await wait_event(self._wake, self._poll_interval)

    async def _discover(self) -> None:
        url = self._store.snapshot.settings.ollama_url
        if self._identified is None or self._identified[0] != url:
            # once per address (again after a failure: another server may have taken
            # the port): several servers imitate Ollama's routes (core/server_kinds.py)
            found = await self._link.client.identify()
            self._identified = (url, found) if found is not None else None
        server = self._identified[1] if self._identified else None
        kind = server.kind if server else ServerKind.OLLAMA  # unknown: read as Ollama
        if (retired := self._link.serve_as(kind)) is not None:
            self._jobs.spawn(retired.aclose())
        client = self._link.client
        try:
            models = await client.tags()
        except OllamaUnreachable as exc:
            self._fail(OllamaStatus.UNREACHABLE, str(exc))
        except TagsParseError as exc:
            self._fail(OllamaStatus.BAD_ANSWER,
                       f"{exc} (is something other than {client.name} at {url}?)")
        except OllamaError as exc:
            self._fail(OllamaStatus.BAD_ANSWER, str(exc))
        else:
            self._report(OllamaStatus.REACHABLE,
                         f"{texts.counted(len(models), 'model')} at {url}", models, server, kind)

    def _fail(self, status: OllamaStatus, reason: str) -> None:
        self._identified = None  # asked again next time: the owner may have switched servers
        self._report(status, reason, None)

    def _report(self, status: OllamaStatus, reason: str,
                models: tuple[LocalModel, ...] | None, server: ServerIdentity | None = None,
                kind: ServerKind | None = None) -> None:
        level = logging.INFO if status is OllamaStatus.REACHABLE else logging.WARNING
        self._problems.log("ollama", level, f"{self._link.client.name}: {reason}")
        self._store.ollama(status, reason, models, server, kind)

"""Discovery: ask Ollama for its models every few seconds, and say what it answered.

The snapshot's model list (and so the registration, which the hub supervisor
derives from it) follows Ollama's ``/api/tags``; when Ollama is away the last
list stays for the menu, but nothing is offered to the hub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ghubai_tray.core import texts
from ghubai_tray.core.errors import OllamaError, OllamaUnreachable, TagsParseError
from ghubai_tray.core.server_kinds import ServerIdentity, ServerKind
from ghubai_tray.core.state import OllamaStatus
from ghubai_tray.core.tags import LocalModel
from ghubai_tray.worker.ports import Ollama
from ghubai_tray.worker.runtime import Problems, wait_event
from ghubai_tray.worker.store import StateStore

log = logging.getLogger("ghubai_tray.worker")

POLL_INTERVAL = 5.0  # a cheap /api/tags poll; RegisterNode is sent only on change


class Discovery:
    def __init__(self, store: StateStore, ollama: Callable[[], Ollama], problems: Problems,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self._store = store
        self._ollama = ollama
        self._problems = problems
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._identified: tuple[str, ServerIdentity] | None = None  # at which address

    def now(self) -> None:
        """Ask again at once (Ollama's address changed)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self._discover()
            except Exception:  # a bug here must not stop discovery for good
                log.exception("unexpected error while asking Ollama for its models")
            self._wake.clear()
            await wait_event(self._wake, self._poll_interval)

    async def _discover(self) -> None:
        url = self._store.snapshot.settings.ollama_url
        ollama = self._ollama()
        if self._identified is None or self._identified[0] != url:
            # once per address (again after a failure: another server may have taken
            # the port): several servers imitate Ollama's routes (core/server_kinds.py)
            found = await ollama.identify()
            self._identified = (url, found) if found is not None else None
        server = self._identified[1] if self._identified else None
        shown = str(server) if server else None
        if server is not None and server.kind is not ServerKind.OLLAMA:
            self._identified = None  # asked again next time: the owner may switch servers
            self._report(OllamaStatus.BAD_ANSWER,
                         texts.NOT_OLLAMA.format(server=server, url=url), None, shown)
            return
        try:
            models = await ollama.tags()
        except OllamaUnreachable as exc:
            self._identified = None
            self._report(OllamaStatus.UNREACHABLE, str(exc), None)
        except TagsParseError as exc:
            self._identified = None
            self._report(OllamaStatus.BAD_ANSWER,
                         f"{exc} (is something other than Ollama at {url}?)", None)
        except OllamaError as exc:
            self._identified = None
            self._report(OllamaStatus.BAD_ANSWER, str(exc), None)
        else:
            self._report(OllamaStatus.REACHABLE,
                         f"{texts.counted(len(models), 'model')} at {url}", models, shown)

    def _report(self, status: OllamaStatus, reason: str,
                models: tuple[LocalModel, ...] | None, server: str | None = None) -> None:
        level = logging.INFO if status is OllamaStatus.REACHABLE else logging.WARNING
        self._problems.log("ollama", level, f"Ollama: {reason}")
        self._store.ollama(status, reason, models, server)

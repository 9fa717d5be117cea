"""The composition root: the one place the parts are put together as the owner runs them.

The tray and ``--headless`` both get their worker from :func:`owner_worker`, so
the two modes cannot drift apart again (headless once counted nothing in
"Since install"); the tray gets it handed in, as a
:class:`~ghubai_tray.core.state.WorkerHandle`, and never sees the network code
behind it. The architecture test (tests/test_architecture.py) keeps it so:
nothing else in the package constructs a Worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ghubai_tray.adapters import activity_file
from ghubai_tray.adapters.config import save_settings
from ghubai_tray.adapters.control import ControlServer
from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.core import control
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import WorkerHandle
from ghubai_tray.worker import Worker, run_in_new_loop


def owner_worker(settings: Settings, token_provider: Callable[[str], TokenSource], *,
                 wait_for_tray: bool = False) -> Worker:
    """The worker as the owner runs it: settings changed from the menu saved to
    config.toml, requests counted in the owner's activity file ("Since install").
    Under a tray it shares nothing until the tray says its icon is visible."""
    return Worker(settings, token_provider, persist=save_settings,
                  activity_path=activity_file.default_path(), wait_for_tray=wait_for_tray)


def tray_worker(settings: Settings, token_provider: Callable[[str], TokenSource]
                ) -> tuple[Worker, Callable[[], None]]:
    """The owner's worker and the function that runs it (on the tray's worker thread)."""
    worker = owner_worker(settings, token_provider, wait_for_tray=True)
    return worker, lambda: run_in_new_loop(worker.run())


def control_server(worker: WorkerHandle, quit_app: Callable[[], None], mode: str
                   ) -> ControlServer:
    """The channel ``ghubai-tray status|pause|resume|quit`` reach this worker through
    (tray and headless alike): each request decided on the latest snapshot, its command
    submitted like a menu click's; Quit does what the menu's or a signal's Quit does."""
    def handle(request: Any) -> dict[str, Any]:
        from ghubai_tray.desktop.icon import status_line  # Pillow: only once asked

        snap = worker.snapshot
        decision = control.decide(request, snap, datetime.now().astimezone(), status_line(snap))
        if decision.command is not None:
            worker.submit(decision.command)
        if decision.quit:
            quit_app()
        return {**decision.reply, "mode": mode, "pid": os.getpid()}

    return ControlServer(handle)

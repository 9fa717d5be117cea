"""The composition root: the one place the parts are put together as the owner runs them.

The tray and ``--headless`` both get their worker from :func:`owner_worker`, so
the two modes cannot drift apart again (headless once counted nothing in
"Since install"); the tray gets it handed in, as a
:class:`~ghubai_tray.core.state.WorkerHandle`, and never sees the network code
behind it. The architecture test (tests/test_architecture.py) keeps it so:
nothing else in the package constructs a Worker.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghubai_tray import __version__
from ghubai_tray.adapters import ledger_db
from ghubai_tray.adapters.config import config_path, save_settings
from ghubai_tray.adapters.control import ControlServer
from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.adapters.desktop_signals import DesktopSignals
from ghubai_tray.adapters.gpu_sensors import GpuSensors
from ghubai_tray.adapters.keyring_reader import keyring_locked_apart
from ghubai_tray.adapters.nvml import Nvml
from ghubai_tray.adapters.tls import client_context
from ghubai_tray.core import control, texts
from ghubai_tray.core.settings import APP_NAME, DEFAULT_HUB_URL, Settings
from ghubai_tray.core.state import WorkerHandle
from ghubai_tray.worker import Worker, run_in_new_loop

if TYPE_CHECKING:
    from ghubai_tray.adapters.update_install import SetupInstaller
    from ghubai_tray.worker.ports import Telemetry


def owner_worker(settings: Settings, token_provider: Callable[[str], TokenSource], *,
                 wait_for_tray: bool = False) -> Worker:
    """The worker as the owner runs it: settings changed from the menu saved to
    config.toml, each request kept in the owner's ledger with its share of the GPU's
    energy where the GPU says its draw. Under a tray it shares nothing until the tray
    says its icon is visible."""
    nvml = Nvml()  # one NVML for the game-mode rule and the GPUs' readings
    return Worker(settings, token_provider, persist=save_settings,
                  telemetry=operators_telemetry(),
                  ledger_path=ledger_db.default_path(), gpus=GpuSensors(nvml).read,
                  wait_for_tray=wait_for_tray,
                  desktop=DesktopSignals(nvml=nvml), keyring_locked=keyring_locked_apart,
                  update_feed=release_feed, update_installer=self_installer())


OTEL_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")


def operators_telemetry(env: Mapping[str, str] = os.environ) -> Telemetry | None:
    """OpenTelemetry when the operator set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a signal's
    own endpoint) and not ``OTEL_SDK_DISABLED``; nothing of it is imported otherwise."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not any(env.get(name, "").strip() for name in OTEL_ENDPOINTS):
        return None
    try:
        from ghubai_tray.adapters.telemetry import Telemetry as OpenTelemetry
    except ImportError as exc:
        logging.getLogger("ghubai_tray").warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OpenTelemetry packages are not "
            "installed (pip install 'ghubai-tray[otel]'): no telemetry (%s)", exc)
        return None
    return OpenTelemetry(__version__)


def self_installer() -> SetupInstaller | None:
    """Where the app installs its own updates: the Windows build (what setup.exe
    installed) carrying the release key. Elsewhere the menu opens the release page."""
    if sys.platform != "win32" or not getattr(sys, "frozen", False):
        return None
    import platformdirs

    from ghubai_tray.adapters.release_check import built_in_key
    from ghubai_tray.adapters.update_install import SetupInstaller

    key = built_in_key()
    if key is None:
        return None
    folder = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "updates"
    return SetupInstaller(folder, key, lambda: client_context(False))


async def release_feed(settings: Settings) -> Any:
    """The releases feed at the address the settings name, over the usual TLS checks."""
    from ghubai_tray.adapters.update_feed import fetch_feed

    return await fetch_feed(settings.update_url, client_context(False))


def tray_worker(settings: Settings, token_provider: Callable[[str], TokenSource]
                ) -> tuple[Worker, Callable[[], None]]:
    """The owner's worker and the function that runs it (on the tray's worker thread)."""
    worker = owner_worker(settings, keyring_after_setup(settings, token_provider),
                          wait_for_tray=True)
    return worker, lambda: run_in_new_loop(worker.run())


NOT_SET_UP_YET = "nowhere yet: nothing is set up (the keyring is read once Settings are saved)"


def keyring_after_setup(settings: Settings, token_provider: Callable[[str], TokenSource],
                        config: Path | None = None) -> Callable[[str], TokenSource]:
    """On a first run the tray does not open the keyring before the Settings window.

    Opening it can make the desktop ask for the keyring's password, and on a first
    run that prompt would come first, unexplained, before any window of ours. So
    while nothing is set up (no settings saved, the hub at the seed's default address
    by no one's choice, no PROVIDER_TOKEN) the worker reads no token: it is "not set
    up", and the Settings window opens and says why a prompt may come before it
    checks the keyring itself. Once Settings are saved (config.toml exists) the
    keyring is read as always, which also picks up a token stored earlier with
    ``ghubai-tray token set``."""
    chosen = settings.source("hub_url") != "default"
    path = config or config_path()

    def provider(hub_url: str) -> TokenSource:
        if (not chosen and hub_url == DEFAULT_HUB_URL and not path.exists()
                and not os.environ.get("PROVIDER_TOKEN", "").strip()):
            return TokenSource(None, NOT_SET_UP_YET)
        return token_provider(hub_url)

    return provider


def control_server(worker: WorkerHandle, quit_app: Callable[[], None], mode: str,
                   show_app: Callable[[], None] | None = None) -> ControlServer:
    """The channel ``ghubai-tray status|pause|resume|quit`` reach this worker through
    (tray and headless alike): each request decided on the latest snapshot, its command
    submitted like a menu click's; Quit does what the menu's or a signal's Quit does."""
    def handle(request: Any) -> dict[str, Any]:
        from ghubai_tray.desktop.icon import status_line  # Pillow: only once asked

        snap = worker.snapshot
        line = status_line(snap)
        if mode == "headless":  # no menu to point to: the fix on the command line instead
            line = texts.HEADLESS_STATUS.get(line, line)
        decision = control.decide(request, snap, datetime.now().astimezone(), line)
        if decision.command is not None:
            worker.submit(decision.command)
        if decision.quit:
            quit_app()
        if decision.show:
            if show_app is None:  # headless: nothing to show
                return {"ok": False, "error": "it runs without a tray (--headless)",
                        "mode": mode, "pid": os.getpid()}
            show_app()
        return {**decision.reply, "mode": mode, "pid": os.getpid()}

    return ControlServer(handle)

"""Installing an update on Windows: the checked setup.exe, started to replace this app.

The installer is started with ``/S /UPDATE``: silent, and told that it replaces a
running GhubAi Tray, so it waits for this process to end (the app quits once its
requests have finished), installs into the same folder (the one the Uninstall entry
names), and starts the new version. Before it starts, a note of what is under way is
written beside the download (``pending.json``); the next start of the app, whichever
version it is, reads it once and says whether the update took (:meth:`outcome`).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ghubai_tray import __version__
from ghubai_tray.adapters.update_download import discard, download_verified
from ghubai_tray.core.signatures import PublicKey
from ghubai_tray.core.updates import Release

PENDING = "pending.json"
# Windows: a process of its own, in no console, so that it outlives the app it replaces;
# and out of the app's job, where the job allows it (a job that does not refuses the
# flag with "access denied", and the installer then starts without it).
DETACHED = 0x00000008 | 0x00000200  # DETACHED_PROCESS, CREATE_NEW_PROCESS_GROUP
BREAKAWAY = 0x01000000  # CREATE_BREAKAWAY_FROM_JOB

Command = Callable[[Path], "str | Sequence[str]"]


def windows_command(setup: Path) -> str:
    """NSIS reads its own command line: ``/S`` silent, ``/UPDATE`` ours (the .nsi's)."""
    return f'"{setup}" /S /UPDATE'


class SetupInstaller:
    """The worker's :class:`~ghubai_tray.worker.updates.Installer` on Windows.

    ``command`` builds the installer's command line; the tests on Linux give one that
    starts a real program in its place (Windows' own run is tests/test_windows_dist.py).
    """

    def __init__(self, folder: Path, key: PublicKey | None,
                 ssl_context: Callable[[], ssl.SSLContext],
                 command: Command = windows_command, current: str = __version__) -> None:
        self._folder = folder
        self._key = key
        self._ssl = ssl_context
        self._command = command
        self._current = current
        # kept, not waited for: the installer outlives this process on purpose
        self.launched: list[subprocess.Popen[bytes]] = []

    async def fetch(self, release: Release) -> Path:
        return await download_verified(release, self._key, self._folder, self._current,
                                       self._ssl())

    def launch(self, path: Path, release: Release) -> None:
        pending = self._folder / PENDING
        pending.write_text(json.dumps({"from": self._current, "to": str(release.version),
                                       "installer": path.name}), encoding="utf-8")
        windows = sys.platform == "win32"
        tries = [DETACHED | BREAKAWAY, DETACHED] if windows else [0]
        for number, flags in enumerate(tries, 1):
            try:
                self.launched.append(subprocess.Popen(
                    self._command(path), creationflags=flags, close_fds=True,
                    cwd=self._folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=not windows))
                return
            except PermissionError:
                if number < len(tries):
                    continue  # a job that allows no breakaway: start it inside
                self._forget(pending)
                raise
            except OSError:
                self._forget(pending)
                raise

    @staticmethod
    def _forget(pending: Path) -> None:
        with contextlib.suppress(OSError):
            pending.unlink()

    def discard(self, path: Path) -> None:
        discard(path)

    def outcome(self) -> tuple[bool, str] | None:
        pending = self._folder / PENDING
        try:
            note = json.loads(pending.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            note = {}
        finally:
            self._tidy()
        wanted = note.get("to") if isinstance(note, dict) else None
        if not isinstance(wanted, str):
            return False, "an update was started, but what became of it is unknown"
        if wanted == self._current:
            return True, f"Updated to {wanted}, as asked"
        return False, (f"the update to {wanted} did not install; this is still "
                       f"{self._current}. Try again from the menu, or download it from "
                       "its release page")

    def _tidy(self) -> None:
        """The note and the installers go once read (one still running stays, unharmed)."""
        for path in self._folder.glob("*"):
            with contextlib.suppress(OSError):
                path.unlink()

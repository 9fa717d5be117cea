"""One GhubAi Tray worker per user session, tray or ``--headless``: a second one says
which one runs and does not start (two would share the GPU twice over).

Linux: an exclusive ``flock`` on a file in ``$XDG_RUNTIME_DIR`` (per user, per
session; without it, an owner-only folder in the user's cache, never the
world-writable /tmp), freed by the kernel the moment the holder dies, even by
``kill -9``, so a crash never leaves a stale lock. The file also says who holds
it ("tray 1234"). Windows: a named mutex in the session's ``Local\\``
namespace; ``ERROR_ALREADY_EXISTS`` (183) means another instance holds it, and
who it is is written beside the settings.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import platformdirs

from ghubai_tray.adapters.owner_only import private_dir, write_private_text
from ghubai_tray.core.settings import APP_NAME

LOCK_NAME = "ghubai-tray.lock"
HOLDER_NAME = "running.txt"  # Windows: who holds the mutex
MUTEX_NAME = "Local\\GhubAiTray"
ERROR_ALREADY_EXISTS = 183


RUNTIME_FOLDER = "ghubai-tray"


def lock_path() -> Path:
    """The lock, in a folder of our own: ``$XDG_RUNTIME_DIR`` is the session's, and its
    modes are not ours to change (the folder we make in it is 0700, the lock's and the
    control socket's)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / RUNTIME_FOLDER / LOCK_NAME
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / LOCK_NAME


@dataclass(frozen=True)
class Holder:
    """Who holds the instance: ``mode`` is "tray" or "headless"."""

    mode: str
    pid: int

    @staticmethod
    def parse(text: str) -> Holder | None:
        parts = text.split()
        if len(parts) == 2 and parts[0] in ("tray", "headless") and parts[1].isdigit():
            return Holder(parts[0], int(parts[1]))
        return None

    def __str__(self) -> str:
        return f"{self.mode} {self.pid}"


class SingleInstance:
    """``with SingleInstance(mode) as first:`` — ``first`` is False when another one runs;
    ``holder()`` then says which."""

    def __init__(self, path: Path | None = None, mode: str = "tray") -> None:
        self._path = path or lock_path()
        self._mode = mode
        self._handle: object = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _me(self) -> str:
        return str(Holder(self._mode, os.getpid()))

    def acquire(self) -> bool:
        if sys.platform == "win32":
            return self._acquire_mutex()
        import fcntl

        private_dir(self._path.parent)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # also a lock file an older version left readable
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, self._me().encode())
        self._handle = fd
        return True

    def holder(self) -> Holder | None:
        """Who holds it, as it wrote down (None when it cannot be read)."""
        path = self._holder_file() if sys.platform == "win32" else self._path
        try:
            return Holder.parse(path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def _holder_file(self) -> Path:
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / HOLDER_NAME

    def _acquire_mutex(self) -> bool:
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        handle = kernel32.CreateMutexW(None, False, MUTEX_NAME)
        if kernel32.GetLastError() == ERROR_ALREADY_EXISTS:
            kernel32.CloseHandle(handle)
            return False
        self._handle = handle
        with contextlib.suppress(OSError):
            write_private_text(self._holder_file(), self._me())
        return True

    def release(self) -> None:
        if self._handle is None:
            return
        if sys.platform == "win32":
            import ctypes

            ctypes.windll.kernel32.CloseHandle(self._handle)  # type: ignore[attr-defined,unused-ignore]
        else:
            assert isinstance(self._handle, int)
            os.close(self._handle)
        self._handle = None

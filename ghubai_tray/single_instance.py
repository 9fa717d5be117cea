"""One GhubAi Tray per user session: a second start says so and exits.

Linux: an exclusive ``flock`` on a file in ``$XDG_RUNTIME_DIR`` (per user,
per session), freed by the kernel the moment the holder dies, even by
``kill -9``, so a crash never leaves a stale lock. Windows: a named mutex in
the session's ``Local\\`` namespace; ``ERROR_ALREADY_EXISTS`` (183) means
another instance holds it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from types import TracebackType

LOCK_NAME = "ghubai-tray.lock"
MUTEX_NAME = "Local\\GhubAiTray"
ERROR_ALREADY_EXISTS = 183


def lock_path() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / LOCK_NAME


class SingleInstance:
    """``with SingleInstance() as first:`` — ``first`` is False when another one runs."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path or lock_path()
        self._handle: object = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> bool:
        if sys.platform == "win32":
            return self._acquire_mutex()
        import fcntl

        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # also a lock file an older version left readable
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._handle = fd
        return True

    def _acquire_mutex(self) -> bool:  # pragma: no cover - Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.CreateMutexW(None, False, MUTEX_NAME)
        if kernel32.GetLastError() == ERROR_ALREADY_EXISTS:
            kernel32.CloseHandle(handle)
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is None:
            return
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import ctypes

            ctypes.windll.kernel32.CloseHandle(self._handle)  # type: ignore[attr-defined]
        else:
            assert isinstance(self._handle, int)
            os.close(self._handle)
        self._handle = None

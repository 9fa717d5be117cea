"""Logging: short lines to a rotating file (and stderr when headless), secrets redacted.

The code never logs the token on purpose; the redacting formatter is the last
line of defence for what slips through anyway (a library's message with a
URL, an exception's text): it replaces every secret the worker knows about,
and anything shaped like a bearer header or an ``access_token`` query value.

Much of what is logged comes from the hub, a stranger: its texts must not
forge lines or push the history out. So a message is one line (line breaks
and control characters shown escaped, tracebacks indented under it), at most
:data:`MAX_MESSAGE` characters, and a message repeated in a burst is written
:data:`BURST` times, then summed up once the burst is over. The files are the
owner's alone (see :mod:`ghubai_tray.adapters.owner_only`); a folder that cannot be
written leaves logging to stderr, said once.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

from ghubai_tray.adapters.owner_only import private_dir, private_file
from ghubai_tray.core.errors import one_line
from ghubai_tray.core.settings import APP_NAME

LOG_FILE = "ghubai-tray.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 3
ROTATE_RETRY = 60.0  # seconds before another try when the log could not be renamed
FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(access_token=)[^&\s\"',;]+"),
    re.compile(r"(?i)(\"(?:provider_|access_)?token\"\s*:\s*\")[^\"]+"),
    re.compile(r"(?i)\b((?:provider_)?token=)[^&\s\"',;]+"),
)
_secrets: set[str] = set()
MAX_MESSAGE = 2000  # characters of one message (a traceback below it is not counted)
MAX_RECORD = 16 * 1024  # characters of one record, traceback included
BURST = 5  # the same message this many times in a window is written; the rest counted
BURST_WINDOW = 60.0


def log_dir() -> Path:
    """Where the log files go; ``GHUBAI_LOG_DIR`` moves them (tests, containers)."""
    override = os.environ.get("GHUBAI_LOG_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def add_secret(secret: str | None) -> None:
    """Never let ``secret`` reach a log line from now on."""
    if secret and len(secret) >= 4:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactingFormatter(logging.Formatter):
    """One line per message, capped, secrets redacted; a traceback indented below it."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.msg, record.args
        record.msg, record.args = one_line(record.getMessage(), MAX_MESSAGE), None
        try:
            text = super().format(record)
        finally:
            record.msg, record.args = saved
        if len(text) > MAX_RECORD:
            text = text[:MAX_RECORD] + f"\n    [{len(text) - MAX_RECORD:,} characters left out]"
        return redact(text)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        # Indented, so that no line of an exception's text can pass for a log line.
        return "\n".join("    " + line for line in super().formatException(ei).splitlines())


class BurstFilter(logging.Filter):
    """Write a message repeated in a burst :data:`BURST` times, then say how many were left out.

    Messages are the same when their template is (``"[%s] refused: %s"``),
    whatever the arguments: a hub sending 1,000 bad requests gives five lines
    and a count, not 1,000 lines.
    """

    def __init__(self, burst: int = BURST, window: float = BURST_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self._clock = burst, window, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        start, count = self._seen.get(key, (now, 0))
        if now - start > self.window:
            left_out = count - self.burst
            self._seen[key] = (now, 1)
            if left_out > 0:
                record.msg = f"{record.getMessage()} (and {left_out:,} more like it before)"
                record.args = None
            return True
        self._seen[key] = (start, count + 1)
        if len(self._seen) > 1000:  # bound the memory of templates
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] <= self.window}
        return count < self.burst


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file, the new one after a rotation too, is the owner's.

    On Windows a file that another program holds open (a log viewer, an antivirus
    scan) cannot be renamed. The standard handler then loses the record and prints
    a traceback for it, and for every record after it; this one keeps writing to
    the current file and tries to rotate again :data:`ROTATE_RETRY` seconds later.
    """

    def __init__(self, *args: Any, clock: Callable[[], float] = time.monotonic,
                 **kwargs: Any) -> None:
        self._clock = clock
        self._retry_at = 0.0
        super().__init__(*args, **kwargs)

    def _open(self) -> Any:
        stream = super()._open()
        private_file(Path(self.baseFilename))
        return stream

    def shouldRollover(self, record: logging.LogRecord) -> int:
        if self._clock() < self._retry_at:
            return False
        return super().shouldRollover(record)

    def doRollover(self) -> None:
        try:
            super().doRollover()
        except OSError:
            self._retry_at = self._clock() + ROTATE_RETRY
            if self.stream is None:  # closed for the rename that failed: go on appending
                self.stream = self._open()


def setup(*, to_stderr: bool, verbose: bool = False, directory: Path | None = None
          ) -> Path | None:
    """Configure the root logger; return the log file's path (None when it cannot be written)."""
    directory = directory or log_dir()
    path: Path | None = directory / LOG_FILE
    formatter = RedactingFormatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = []
    problem = None
    try:
        private_dir(directory)
        handlers.append(PrivateRotatingFileHandler(
            directory / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"))
    except OSError as exc:
        path, problem = None, f"{directory} ({exc.strerror or type(exc).__name__})"
    if (to_stderr or path is None) and sys.stderr is not None:  # None: windowed Windows build
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(BurstFilter())
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if problem is not None:
        logging.getLogger("ghubai_tray").warning(
            "cannot write the log file in %s: logging to the terminal only", problem)
    # httpx logs every request at INFO; the worker logs what matters itself.
    for noisy in ("httpx", "httpcore", "aiohttp", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path

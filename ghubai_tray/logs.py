"""Logging: short lines to a rotating file (and stderr when headless), secrets redacted.

The code never logs the token on purpose; the redacting formatter is the last
line of defence for what slips through anyway (a library's message with a
URL, an exception's text): it replaces every secret the worker knows about,
and anything shaped like a bearer header or an ``access_token`` query value.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

import platformdirs

from ghubai_tray.config import APP_NAME

LOG_FILE = "ghubai-tray.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(access_token=)[^&\s\"',;]+"),
    re.compile(r"(?i)(\"(?:provider_|access_)?token\"\s*:\s*\")[^\"]+"),
    re.compile(r"(?i)\b((?:provider_)?token=)[^&\s\"',;]+"),
)
_secrets: set[str] = set()


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
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(*, to_stderr: bool, verbose: bool = False, directory: Path | None = None) -> Path:
    """Configure the root logger; return the log file's path."""
    directory = directory or log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_FILE
    formatter = RedactingFormatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")]
    if to_stderr and sys.stderr is not None:  # None in a windowed Windows build
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # httpx logs every request at INFO; the worker logs what matters itself.
    for noisy in ("httpx", "httpcore", "aiohttp", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path

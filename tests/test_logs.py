"""The redacting formatter: the last line of defence between a secret and a log file."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import pytest

from ghubai_tray import logs

CASES = {
    "bearer-header": ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
    "query": ("GET /gridhub?id=1&access_token=xyz123&x=2",
              "GET /gridhub?id=1&access_token=[redacted]&x=2"),
    "json-token": ('{"token": "zz-top-secret"}', '{"token": "[redacted]"}'),
    "known-secret-anywhere": ("prefix known-secret-42 suffix", "prefix [redacted] suffix"),
    "env-style": ("PROVIDER_TOKEN=abc123 ghubai-tray", "PROVIDER_TOKEN=[redacted] ghubai-tray"),
    "harmless": ("[r1] served in 0.4 s", "[r1] served in 0.4 s"),
    "words-about-tokens": ("token: there is no OS keyring to read the token: set it",
                           "token: there is no OS keyring to read the token: set it"),
}


@pytest.mark.parametrize("text,expected", CASES.values(), ids=CASES.keys())
def test_redact(text: str, expected: str) -> None:
    logs.add_secret("known-secret-42")
    assert logs.redact(text) == expected


def test_setup_writes_a_rotating_file_through_the_redactor(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        path = logs.setup(to_stderr=False, directory=tmp_path / "logs")
        logs.add_secret("another-secret-77")
        logging.getLogger("ghubai_tray.test").warning("token is another-secret-77")
        for handler in root.handlers:
            handler.flush()
        text = path.read_text()
        assert "token is [redacted]" in text and "another-secret-77" not in text
        rotating = [h for h in root.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
        assert rotating and rotating[0].maxBytes == logs.MAX_BYTES
        assert rotating[0].backupCount == logs.BACKUPS
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])

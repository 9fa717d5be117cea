"""The redacting formatter: the last line of defence between a secret and a log file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.adapters import logs
from ghubai_tray.core.errors import one_line

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
        assert path is not None
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


@given(st.text(max_size=400), st.integers(1, 200))
def test_a_strangers_text_becomes_one_capped_line(text: str, limit: int) -> None:
    shown = one_line(text, limit)
    # No control character and no line or paragraph separator is left to act on a terminal
    # or to start a line of its own.
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in shown)
    assert len(shown) <= limit + 40


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("ghubai_tray.worker", logging.WARNING, __file__, 1, msg, args, None)


def test_a_burst_of_one_message_is_written_five_times_then_summed_up() -> None:
    # An injected clock: Windows' monotonic clock ticks every 15.6 ms, so "later" must not
    # depend on the machine's clock (the Windows lane found that).
    now = [1000.0]
    burst = logs.BurstFilter(burst=5, window=3600, clock=lambda: now[0])
    passed = [burst.filter(record("[%s] refused: %s", i, "bad")) for i in range(1000)]
    assert passed.count(True) == 5 and passed[:5] == [True] * 5
    assert burst.filter(record("another message"))
    now[0] += 3601  # the burst is over: the next one says how many were left out
    late = record("[%s] refused: %s", "x", "bad")
    assert burst.filter(late) and late.getMessage() == "[x] refused: bad (and 995 more like " \
                                                      "it before)"


def test_a_forged_line_and_a_huge_message_stay_one_line() -> None:
    formatter = logs.RedactingFormatter(logs.FORMAT)
    text = formatter.format(record("hub: %s", "bye\n2026-12-01 20:00:00 INFO    forged"
                                   + "x" * (4 << 20)))
    assert "\n" not in text and "\\n2026-12-01" in text
    assert len(text) < logs.MAX_MESSAGE + 200


def test_a_log_another_program_holds_open_keeps_every_line_until_it_can_rotate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # On Windows a file open elsewhere (a log viewer, an antivirus scan, another instance's
    # handle) cannot be renamed, so rotation fails; logging then dropped the line and
    # printed a traceback for every record after it. Linux renames it anyway.
    now = [0.0]
    handler = logs.PrivateRotatingFileHandler(tmp_path / "app.log", maxBytes=2000,
                                              backupCount=2, encoding="utf-8",
                                              clock=lambda: now[0])
    logger = logging.getLogger("ghubai_tray.rotation-test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with open(tmp_path / "app.log", encoding="utf-8") as held:
            for n in range(100):
                logger.warning("line %03d %s", n, "x" * 60)
            handler.flush()
            assert held.readable()
        now[0] += logs.ROTATE_RETRY + 1
        logger.warning("after the viewer closed")
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert "Logging error" not in capsys.readouterr().err
    written = "".join(p.read_text(encoding="utf-8") for p in sorted(tmp_path.glob("app.log*")))
    kept = 100 if sys.platform == "win32" else 30  # Linux rotated all along: 3 files' worth
    assert all(f"line {n:03d} " in written for n in range(100 - kept, 100)), "no line lost"
    assert "after the viewer closed" in written
    assert len(list(tmp_path.glob("app.log*"))) > 1, "it rotated once it could"

"""The README is the front door: its configuration table and command list stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghubai_tray.cli import build_parser
from ghubai_tray.core.settings import SETTINGS, Setting

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.key for s in SETTINGS])
def test_every_setting_is_in_the_configuration_table(setting: Setting) -> None:
    row = f"| `{setting.key}` | `{setting.env}` | `{setting.flag}`"
    assert row in README


def test_every_command_is_documented() -> None:
    help_text = build_parser().format_help()
    for command in ("--headless", "token set", "token clear", "token status", "doctor",
                    "--version"):
        assert f"`ghubai-tray {command}" in README
    assert "--grace" in help_text and "--grace" in README

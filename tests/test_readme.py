"""The README is the front door: its configuration table and command list stay true."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ghubai_tray.cli import build_parser
from ghubai_tray.core.settings import SETTINGS, Setting

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.key for s in SETTINGS])
def test_every_setting_is_in_the_configuration_table(setting: Setting) -> None:
    row = f"| `{setting.key}` | `{setting.env}` | `{setting.flag}`"
    assert row in README


def commands_of(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command the parser has, read from it (``token set``, ``status``, ...)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands_of(sub, f"{prefix}{name} ") or [f"{prefix}{name}"]
    return found


def test_every_command_is_documented() -> None:
    help_text = build_parser().format_help()
    commands = commands_of(build_parser())
    assert {"token set", "doctor", "status", "pause", "resume", "quit"} <= set(commands)
    for command in ("--headless", *commands, "--version"):
        assert f"`ghubai-tray {command}" in README
    assert "--grace" in help_text and "--grace" in README

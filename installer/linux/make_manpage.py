"""Write ghubai-tray(1) from the argument parser itself, so the man page cannot drift."""

from __future__ import annotations

import argparse
import sys

from ghubai_tray import __version__
from ghubai_tray.cli import build_parser
from ghubai_tray.core.settings import SETTINGS


def esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def manpage() -> str:
    parser = build_parser()
    out = [f'.TH GHUBAI-TRAY 1 "" "GhubAi Tray {__version__}" "User Commands"',
           ".SH NAME", "ghubai\\-tray \\- share your GPU with a GhubAi hub",
           ".SH SYNOPSIS", ".B ghubai\\-tray", "[\\fIsettings\\fR] [\\fB\\-\\-headless\\fR]",
           ".br", ".B ghubai\\-tray token", "\\fBset\\fR|\\fBclear\\fR|\\fBstatus\\fR",
           ".br", ".B ghubai\\-tray doctor",
           ".SH DESCRIPTION", esc(parser.description or ""),
           "Without a command it shows the tray icon; with \\fB\\-\\-headless\\fR it runs "
           "the same worker without one, until SIGINT or SIGTERM.",
           ".SH OPTIONS"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or not action.option_strings:
            continue
        if isinstance(action, argparse._SubParsersAction):
            continue
        flags = esc(", ".join(action.option_strings))
        out += [".TP", f"\\fB{flags}\\fR", esc(action.help or "")]
    out += [".SH COMMANDS"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                out += [".TP", f"\\fB{esc(choice.dest)}\\fR", esc(choice.help or "")]
    out += [".SH ENVIRONMENT"]
    out += [line for s in SETTINGS for line in (".TP", f"\\fB{esc(s.env)}\\fR", esc(s.help))]
    out += [".TP", "\\fBPROVIDER_TOKEN\\fR", "the provider token; overrides the OS keyring",
            ".SH FILES", "~/.config/GhubAi/config.toml \\- settings;",
            "~/.local/state/GhubAi/log/ghubai\\-tray.log \\- the log",
            ".SH EXIT STATUS", "0 fine, 1 a failure at run time, 2 an invalid setting.",
            ".SH SEE ALSO", "ollama(1)"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(manpage())

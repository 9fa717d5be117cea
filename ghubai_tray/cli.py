"""The ``ghubai-tray`` command line.

Only ``--version`` exists so far: the worker (``--headless``, ``token``,
``doctor``) and the tray are the next milestones, and until they land the
command says so plainly instead of pretending to run.
"""

from __future__ import annotations

import argparse
import sys

from ghubai_tray import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghubai-tray",
        description="Lend your GPU to a GhubAi hub: relays inference requests to your Ollama.",
    )
    parser.add_argument("--version", action="version", version=f"GhubAi Tray {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print(
        f"GhubAi Tray {__version__}: the worker and the tray are not built yet "
        "(see 'Status' in README.md).",
        file=sys.stderr,
    )
    return 1

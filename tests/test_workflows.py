"""The GitHub workflows: actionlint (with shellcheck on their scripts) finds nothing, and
the release workflow runs only what this project's own CI runs too."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(os.environ.get("GHUBAI_CACHE", Path.home() / ".cache" / "ghubai-tray")) \
    / "actionlint-v1.7.12" / "actionlint"


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE))


@pytest.mark.skipif(not ACTIONLINT.exists() and not os.environ.get("CI"),
                    reason="actionlint is installed by make setup (Go module proxy)")
def test_actionlint_finds_nothing_in_any_workflow() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["release.yml", "windows.yml"]
    done = subprocess.run([str(ACTIONLINT), "-no-color"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_release_workflow_names_only_make_targets_this_ci_runs() -> None:
    release = (WORKFLOWS / "release.yml").read_text(encoding="utf-8")
    named = set(re.findall(r"(?:name: |run: |`)make ([a-z][a-z0-9-]*)", release))
    assert {"release-check", "release-notes", "release-sums", "dist-check",
            "dist-windows"} <= named
    assert named <= makefile_targets(), named - makefile_targets()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for target in ("dist-check", "dist-windows-check", "release-dry-run"):
        assert f"make {target}" in ci, target
    # what the workflow runs directly is the script those targets run
    for command in ("installer/release.py check", "installer/release.py notes",
                    "installer/release.py sums"):
        assert command in release and command in (ROOT / "Makefile").read_text()

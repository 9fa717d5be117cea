"""The installer files that cannot be run here are still checked: structure, not hope."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    text = (INSTALLER / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def test_the_container_runs_headless_as_a_non_root_user_with_a_health_check() -> None:
    steps = dockerfile()
    kinds = [k for k, _ in steps]
    assert steps[0] == ("ARG", "BASE=python:3.11-slim") and steps[1] == ("FROM", "${BASE}")
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert dict(steps)["USER"] not in ("root", "0")
    assert dict(steps)["ENTRYPOINT"] == '["ghubai-tray", "--headless", "--grace", "8"]'
    assert "doctor" in dict(steps)["HEALTHCHECK"]
    env = " ".join(v for k, v in steps if k == "ENV")
    for variable in ("HUB_URL=", "OLLAMA_LOCAL_URL=", "ALLOW_INVALID_CERTS="):
        assert variable in env
    assert "PROVIDER_TOKEN" not in env, "a token must never be baked into an image"
    for _, source in (s for s in steps if s[0] == "COPY"):
        for path in source.split()[:-1]:
            assert (ROOT / path).exists(), f"COPY {path}: no such file"


def test_the_systemd_user_unit_runs_headless() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(INSTALLER / "linux" / "ghubai-tray.service")
    assert unit["Service"]["ExecStart"] == "/usr/bin/ghubai-tray --headless"
    assert unit["Install"]["WantedBy"] == "default.target"
    assert unit["Service"]["Restart"] == "on-failure"


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils")
def test_the_desktop_entry_is_valid() -> None:
    result = subprocess.run(["desktop-file-validate",
                             str(INSTALLER / "linux" / "ghubai-tray.desktop")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_the_installer_and_the_app_agree_on_the_run_value_and_the_mutex() -> None:
    from ghubai_tray.adapters.autostart import RUN_KEY, VALUE_NAME
    from ghubai_tray.adapters.single_instance import MUTEX_NAME

    nsi = (INSTALLER / "windows" / "ghubai-tray.nsi").read_text()
    assert f'!define RUNKEY "{RUN_KEY}"' in nsi
    assert f'!define APP "{VALUE_NAME}"' in nsi
    assert f'!define MUTEX "{MUTEX_NAME}"' in nsi
    assert "RequestExecutionLevel user" in nsi
    assert 'InstallDir "$LOCALAPPDATA\\Programs\\${APP}"' in nsi


@pytest.mark.skipif(not shutil.which("makensis"), reason="nsis (make test installs it)")
def test_the_nsis_script_compiles(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / "_internal").mkdir(parents=True)
    (stage / "ghubai-tray.exe").write_text("placeholder")
    out = tmp_path / "setup.exe"
    result = subprocess.run(["makensis", "-V2", "-DVERSION=1.2.3", f"-DSTAGE={stage}",
                             f"-DOUTFILE={out}", "ghubai-tray.nsi"],
                            cwd=INSTALLER / "windows", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.stat().st_size > 50_000


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is Debian's")
def test_the_debs_modes_and_owners_are_set_whatever_the_builders_umask(tmp_path: Path) -> None:
    """Built under umask 077, the package once installed files only root could read."""
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "ghubai-tray").write_text("#!/bin/sh\n")
    (bundle / "ghubai-tray").chmod(0o700)
    (bundle / "_internal" / "lib.so").write_text("x")
    (bundle / "_internal" / "lib.so").chmod(0o600)
    subprocess.run(["bash", "-c", 'umask 077 && bash "$0" "$1" "$2" "$3"',
                    str(INSTALLER / "linux" / "build-deb.sh"), str(bundle),
                    str(tmp_path / "out"), sys.executable], check=True, capture_output=True)
    (deb,) = (tmp_path / "out").glob("*.deb")
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    modes = {line.split()[-1] if "->" not in line else line.split()[-3]:
             (line.split()[0], line.split()[1]) for line in listing}
    assert modes["./"] == ("drwxr-xr-x", "root/root")
    assert modes["./opt/ghubai-tray/ghubai-tray"] == ("-rwxr-xr-x", "root/root")
    assert modes["./opt/ghubai-tray/_internal/lib.so"] == ("-rw-r--r--", "root/root")
    for path, (mode, owner) in modes.items():
        assert owner == "root/root", path
        assert mode[0] == "l" or (mode[7] == "r" and mode[8] == "-"), f"{path}: {mode}"

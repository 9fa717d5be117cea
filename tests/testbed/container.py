"""The container image built here, with no image registry: ``python -m tests.testbed.container``.

No registry answers on the project's machines, so ``FROM python:3.11-slim`` cannot be pulled.
This builds ``installer/Dockerfile`` on a base made from Debian's own packages instead:
``debootstrap --variant=minbase`` with python3, python3-venv and ca-certificates (the root
file system's tarball cached outside the checkout, as the real Ollama is), imported into the
Docker engine. Inside a container the package registries' TLS is re-signed by this machine's
own authority, so pip in the build would refuse them: the build installs from a wheelhouse
downloaded on the host (wheels for CPython 3.11 on manylinux x86-64, the build backend with
them), served on loopback to the build, which runs on the host's network. The Dockerfile is
the one users build from PyPI: only its build arguments differ.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.testbed._util import cache_dir

ROOT = Path(__file__).resolve().parents[2]
BASE_TAG = "ghubai-tray-base:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What debootstrap's minimal base lacks that a Docker image has: a PATH, a UTF-8 locale.
IMPORT_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "ENV LANG=C.UTF-8")
PLATFORMS = ("manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "any")


def docker(*args: str, cwd: Path | None = None, quiet: bool = False) -> None:
    """The Docker CLI, its legacy builder (BuildKit would fetch its frontend from a registry)."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", *args], check=True, env=env, cwd=cwd,
                   stdout=subprocess.DEVNULL if quiet else None)


def has_image(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                          check=False).returncode == 0


def base_image() -> str:
    """The Debian base in the engine, from the cached root file system (made once)."""
    if has_image(BASE_TAG):
        return BASE_TAG
    tarball = cache_dir() / "docker-base" / f"debian-{SUITE}-minbase.tar"
    if not tarball.is_file():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        print(f"Making a Debian {SUITE} base with debootstrap (about a minute, cached "
              "afterwards)", flush=True)
        with tempfile.TemporaryDirectory(prefix="ghubai-rootfs-") as rootfs:
            subprocess.run(["debootstrap", "--variant=minbase",
                            "--include=python3,python3-venv,ca-certificates", SUITE, rootfs,
                            MIRROR], check=True, stdout=subprocess.DEVNULL)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", rootfs, "-cf", str(partial), "."], check=True)
            partial.replace(tarball)
    changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
    docker("import", *changes, str(tarball), BASE_TAG, quiet=True)
    return BASE_TAG


def wheelhouse(folder: Path) -> Path:
    """Every wheel the image's ``pip install '.[otel]'`` needs, and the build backend's."""
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)], check=True)
    built = sorted(folder.glob("ghubai_tray-*.whl"), key=lambda p: p.stat().st_mtime)[-1]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([*pip, "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
                    "--implementation", "cp", *platforms, "-d", str(folder),
                    f"{built}[otel]", "hatchling>=1.25"], check=True)
    built.unlink()  # the image builds the package from its source, as a user's build does
    return folder


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """The folder on a loopback HTTP port, a page pip's ``--find-links`` reads."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def build(tag: str, wheels: Path) -> None:
    base = base_image()
    with served(wheelhouse(wheels)) as links:
        docker("build", "--network", "host", "-f", "installer/Dockerfile", "-t", tag,
               "--build-arg", f"BASE={base}", "--build-arg", "PIP_NO_INDEX=1",
               "--build-arg", f"PIP_FIND_LINKS={links}", ".", cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tag", default="ghubai-tray:check")
    parser.add_argument("--wheels", type=Path, default=ROOT / "build" / "docker-wheels")
    args = parser.parse_args(argv)
    if not shutil.which("docker") or not shutil.which("debootstrap"):
        print("docker and debootstrap are needed (make docker-check installs them)",
              file=sys.stderr)
        return 1
    shutil.rmtree(args.wheels, ignore_errors=True)
    build(args.tag, args.wheels)
    return 0


if __name__ == "__main__":
    sys.exit(main())

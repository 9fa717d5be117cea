"""A release key for the update tests, made and used by the real ``minisign`` program.

The release workflow signs ``SHA256SUMS`` with minisign (installer/release.py); so do
these tests, with a key pair made for the test run, which the app under test is told
to trust in place of the project's. What the app checks is thus what minisign writes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from ghubai_tray.core.signatures import release_comment
from tests.testbed.releases import FeedRelease

SETUP = "ghubai-tray-setup.exe"


def minisign_available() -> bool:
    return shutil.which("minisign") is not None


# Why a test that signs releases did not run: the minisign program is Debian's here
# (make system-deps); on Windows the Linux lane runs those tests, and the Ed25519 check
# itself runs everywhere on files minisign made (tests/adapters/test_release_check.py).
MINISIGN_MISSING = ("signed by the Linux lane's minisign program (tests/adapters/"
                    "test_release_check.py checks signatures here)" if sys.platform == "win32"
                    else "the minisign program is needed (make system-deps installs it)")


class ReleaseKey:
    """A key pair in ``folder`` (test.pub, test.sec): made there, unless ``existing``."""

    def __init__(self, folder: Path, existing: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.public, self.secret = folder / "test.pub", folder / "test.sec"
        if not existing:
            subprocess.run(["minisign", "-G", "-W", "-p", str(self.public), "-s",
                            str(self.secret)], stdin=subprocess.DEVNULL, capture_output=True,
                           check=True)
        self._folder = folder

    @property
    def public_text(self) -> str:
        return self.public.read_text(encoding="utf-8")

    def sign(self, data: bytes, comment: str) -> bytes:
        """minisign's signature file (prehashed, its default) of ``data``."""
        message, signature = self._folder / "message", self._folder / "message.minisig"
        message.write_bytes(data)
        subprocess.run(["minisign", "-S", "-s", str(self.secret), "-m", str(message),
                        "-x", str(signature), "-t", comment],
                       stdin=subprocess.DEVNULL, capture_output=True, check=True)
        return signature.read_bytes()


def sums(files: dict[str, bytes]) -> bytes:
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in sorted(files.items())).encode()


def signed_release(tag: str, key: ReleaseKey, setup: bytes,
                   comment: str | None = None) -> FeedRelease:
    """A release as the workflow publishes it: the installer, its sums, their signature."""
    files = {SETUP: setup, "ghubai-tray_amd64.deb": b"a deb"}
    listed = sums(files)
    return FeedRelease(tag, files={
        **files, "SHA256SUMS": listed,
        "SHA256SUMS.minisig": key.sign(listed, comment or release_comment(tag.lstrip("v")))})

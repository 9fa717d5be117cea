"""What the app writes is the owner's alone, and so is the token.

Logs name the hub, the models and the requests; diagnostics more. So every
folder the app creates is 0700 and every file 0600 (on Windows, where these
bits mean little, the per-user profile folders already keep others out).
Children the app starts (``xdg-open``, the clipboard tool, the settings
window) get the environment without ``PROVIDER_TOKEN``: none of them needs
it, and a child's environment can be read by more than the child.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

SECRET_VARIABLES = ("PROVIDER_TOKEN",)
# Set for a child when PROVIDER_TOKEN is set here: the Settings window then says where the
# token in use comes from, without ever holding it.
TOKEN_FROM_VARIABLE = "GHUBAI_TOKEN_FROM_VARIABLE"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed; the folder itself is owner-only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # not ours to change (a shared folder given by a flag)
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return path


def write_private_text(path: Path, text: str) -> Path:
    """Write ``text`` to a file that is the owner's from the moment it exists."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return private_file(path)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole or not at all, owner-only from the first byte.

    The one way the app rewrites a file it keeps (the config, the activity
    ledger): a temporary file beside it (``mkstemp`` makes it 0600), flushed to
    disk, then renamed over the old one; on any failure the old file stays as
    it was and the temporary file is removed. A full disk loses nothing.
    """
    private_dir(path.parent)
    fd, temp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def child_environment() -> dict[str, str]:
    """This process's environment, less the secrets, for the programs it starts."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    if os.environ.get("PROVIDER_TOKEN"):
        env[TOKEN_FROM_VARIABLE] = "1"
    return env

"""What a release needs besides its builds: the version check, the notes, the checksums.

    python installer/release.py check TAG           the tag names this version, and
                                                    CHANGELOG.md has its dated section
    python installer/release.py notes VERSION       that section, for the release page
    python installer/release.py stage SRC DEST      the builds in SRC copied into DEST
                                                    under the names the README links
    python installer/release.py sums DIR [--key F]  DIR/SHA256SUMS for every file in
                                                    DIR, signed with minisign's key F
                                                    (DIR/SHA256SUMS.minisig)

One version, from one place: ``ghubai_tray/__init__.py`` (the package, the ``.deb``, the
setup.exe's file and Uninstall entry, ``--version`` and About all read it); a tag is
released only when it says the same. The signature is minisign's own (the release
workflow runs the ``minisign`` program; anyone checks a download with ``minisign -V``
and the public key in ``ghubai_tray/release-key.pub``). Exit 0 when done, 1 with the reason.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"
PUBLIC_KEY = ROOT / "ghubai_tray" / "release-key.pub"
SUMS = "SHA256SUMS"
# Release files keep one name from version to version, so that the README's links
# (releases/latest/download/NAME) always give the newest; the version is the release's.
STABLE_NAMES = {"*-setup.exe": "ghubai-tray-setup.exe",
                "*_amd64.deb": "ghubai-tray_amd64.deb",
                "*-linux-x86_64.tar.gz": "ghubai-tray-linux-x86_64.tar.gz"}
# The signature's trusted comment: the app reads the version back from it
# (ghubai_tray/core/signatures.py, release_comment), so keep the two the same.
COMMENT = "GhubAi Tray {} release files"
_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<when>.+))?\s*$")
_LINK = re.compile(r"^\[[^\]]+\]: ")  # the version links at the end of the file


class ReleaseError(Exception):
    """What stops a release, in words."""


def package_version() -> str:
    text = (ROOT / "ghubai_tray" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise ReleaseError("ghubai_tray/__init__.py has no __version__")
    return found.group(1)


def sections(changelog: str) -> dict[str, tuple[str | None, str]]:
    """Each version's (date or None, text under its heading), in Keep a Changelog's form."""
    found: dict[str, tuple[str | None, str]] = {}
    version: str | None = None
    when: str | None = None
    lines: list[str] = []
    for line in [*changelog.splitlines(), "## [end]"]:
        heading = _HEADING.match(line)
        if heading is not None:
            if version is not None:
                found[version] = (when, "\n".join(lines).strip())
            version, when, lines = heading["version"], heading["when"], []
        elif version is not None and not _LINK.match(line):
            lines.append(line)
    return found


def notes(version: str, changelog: str) -> str:
    entry = sections(changelog).get(version)
    if entry is None:
        raise ReleaseError(f"CHANGELOG.md has no section for {version}")
    if not entry[1]:
        raise ReleaseError(f"CHANGELOG.md's section for {version} is empty")
    return entry[1]


def check(tag: str, version: str, changelog: str) -> None:
    """A tag ``vX.Y.Z`` is released only as version X.Y.Z, with a dated changelog section."""
    if tag != f"v{version}":
        raise ReleaseError(f"the tag {tag} does not name this version ({version}: "
                           "ghubai_tray/__init__.py); tag v" + version + " or change it")
    when = sections(changelog).get(version, (None, ""))[0]
    notes(version, changelog)
    try:
        date.fromisoformat(when or "")
    except ValueError:
        raise ReleaseError(f"CHANGELOG.md's section for {version} has no release date "
                           f"(## [{version}] - YYYY-MM-DD)") from None


def sha256sums(folder: Path) -> str:
    """``sha256sum``'s format: one line per file, sorted, the sums file itself left out."""
    lines = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.name.startswith(SUMS):
            continue
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        lines.append(f"{digest.hexdigest()}  {path.name}\n")
    if not lines:
        raise ReleaseError(f"{folder} holds no files to release")
    return "".join(lines)


def stage(source: Path, dest: Path) -> list[Path]:
    """Each build found once in ``source``, copied to ``dest`` under its stable name."""
    dest.mkdir(parents=True, exist_ok=True)
    staged = []
    for pattern, name in STABLE_NAMES.items():
        found = sorted(source.glob(pattern))
        if len(found) != 1:
            raise ReleaseError(f"expected one {pattern} in {source}, found {len(found)}")
        staged.append(dest / name)
        shutil.copyfile(found[0], staged[-1])
    return staged


def write_sums(folder: Path, key: Path | None, comment: str) -> list[Path]:
    out = folder / SUMS
    out.write_text(sha256sums(folder), encoding="utf-8")
    written = [out]
    if key is not None:
        signature = folder / f"{SUMS}.minisig"
        done = subprocess.run(["minisign", "-S", "-s", str(key), "-m", str(out),
                               "-x", str(signature), "-t", comment],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise ReleaseError(f"minisign could not sign: {done.stderr.strip()}")
        written.append(signature)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check").add_argument("tag")
    commands.add_parser("notes").add_argument("version")
    staging = commands.add_parser("stage")
    staging.add_argument("source", type=Path)
    staging.add_argument("dest", type=Path)
    sums = commands.add_parser("sums")
    sums.add_argument("folder", type=Path)
    sums.add_argument("--key", type=Path, help="minisign secret key (unencrypted: -W)")
    args = parser.parse_args(argv)
    try:
        changelog = CHANGELOG.read_text(encoding="utf-8")
        if args.command == "check":
            check(args.tag, package_version(), changelog)
            if not PUBLIC_KEY.is_file():
                raise ReleaseError(f"{PUBLIC_KEY.relative_to(ROOT)} is missing: the app "
                                   "could not check its own updates (make release-key)")
            print(f"{args.tag}: version {package_version()}, changelog section dated")
        elif args.command == "notes":
            print(notes(args.version, changelog))
        elif args.command == "stage":
            print("\n".join(str(p) for p in stage(args.source, args.dest)))
        else:
            written = write_sums(args.folder, args.key,
                                 COMMENT.format(package_version()))
            print("\n".join(str(p) for p in written))
    except (ReleaseError, OSError) as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

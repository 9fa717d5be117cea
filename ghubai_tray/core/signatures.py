"""Reading a release's proof of origin: minisign keys and signatures, and ``SHA256SUMS``.

A release carries ``SHA256SUMS`` (``sha256sum``'s format: one line per file) and
``SHA256SUMS.minisig``, minisign's signature of it made with the project's Ed25519
release key; the app carries the public key. These functions only *read* those texts,
strictly (whatever the releases feed serves is a stranger's until its signature is
checked); the Ed25519 arithmetic itself is a library's (adapters/release_check.py).

minisign's formats (its documentation and source, in docs/UPDATES.md in our words):

- a public key: an optional ``untrusted comment:`` line, then base64 of ``Ed`` (the
  algorithm), an 8-byte key id and the 32-byte Ed25519 public key;
- a signature: ``untrusted comment: ...``, base64 of the algorithm (``Ed``: the
  signature is of the file itself; ``ED``: of its BLAKE2b-512 hash, minisign's default
  since 0.10), the key id and the 64-byte signature; then ``trusted comment: ...`` and
  base64 of a second 64-byte signature, of the first signature followed by the trusted
  comment's text, so that the comment cannot be changed either.

The trusted comment names the release (``GhubAi Tray 0.3.0 release files``, written by
installer/release.py): a signed ``SHA256SUMS`` of an old release served as a new one
is caught by it, since the feed's own version number is not signed.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

KEY_ALGORITHM = b"Ed"
PREHASHED = b"ED"
MAX_SIGNATURE_TEXT = 4096  # minisign's signature file is about 300 bytes
MAX_SUMS_TEXT = 64 * 1024  # a few lines, one per release file
_COMMENT = "untrusted comment:"
_TRUSTED = "trusted comment: "
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *]([^/\\\x00-\x1f]{1,200})$")
_RELEASE_COMMENT = re.compile(r"^GhubAi Tray (\S{1,60}) release files$")


class SignatureFormatError(ValueError):
    """A key, signature or sums file that is not in its format; the text says how."""


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes  # 8 bytes
    key: bytes  # 32 bytes

    @property
    def key_id_text(self) -> str:
        """The id as minisign prints it (hex of the little-endian number)."""
        return self.key_id[::-1].hex().upper()


@dataclass(frozen=True)
class Signature:
    prehashed: bool
    key_id: bytes
    signature: bytes  # 64 bytes, of the file or of its BLAKE2b-512 hash
    trusted_comment: str
    global_signature: bytes  # 64 bytes, of signature + trusted_comment

    @property
    def global_message(self) -> bytes:
        return self.signature + self.trusted_comment.encode("utf-8")


def _b64(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError(f"{what} is not base64") from None
    if len(raw) != size:
        raise SignatureFormatError(f"{what} is {len(raw)} bytes, not {size}")
    return raw


def parse_public_key(text: str) -> PublicKey:
    """A minisign public key, as its ``.pub`` file or as the bare base64 line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith(_COMMENT):
        lines = lines[1:]
    if len(lines) != 1:
        raise SignatureFormatError("a minisign public key is one base64 line")
    raw = _b64(lines[0], 42, "the public key")
    if raw[:2] != KEY_ALGORITHM:
        raise SignatureFormatError("the public key is not an Ed25519 minisign key")
    return PublicKey(raw[2:10], raw[10:])


def parse_signature(text: str) -> Signature:
    """A ``.minisig`` file's four lines."""
    if len(text) > MAX_SIGNATURE_TEXT:
        raise SignatureFormatError("the signature file is far too long")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != 4 or not lines[0].startswith(_COMMENT) \
            or not lines[2].startswith(_TRUSTED):
        raise SignatureFormatError("the signature file is not minisign's four lines")
    raw = _b64(lines[1], 74, "the signature")
    if raw[:2] not in (KEY_ALGORITHM, PREHASHED):
        raise SignatureFormatError("the signature is not an Ed25519 minisign signature")
    comment = lines[2][len(_TRUSTED):]
    return Signature(raw[:2] == PREHASHED, raw[2:10], raw[10:],
                     comment, _b64(lines[3], 64, "the global signature"))


def parse_sums(text: str) -> dict[str, str]:
    """``sha256sum``'s lines: each file's name and its lowercase hex SHA-256.

    A name that appears twice, or a line not in the format, refuses the whole file: it
    is signed as one, and a half-read list could pair a file with the wrong sum.
    """
    if len(text) > MAX_SUMS_TEXT:
        raise SignatureFormatError("SHA256SUMS is far too long")
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        found = _SUM_LINE.match(line)
        if found is None:
            raise SignatureFormatError(f"SHA256SUMS line {number} is not 'SUM  NAME'")
        digest, name = found.groups()
        if name in sums:
            raise SignatureFormatError(f"SHA256SUMS names {name} twice")
        sums[name] = digest.lower()
    if not sums:
        raise SignatureFormatError("SHA256SUMS lists no files")
    return sums


def release_comment(version: str) -> str:
    """The trusted comment a release's signature carries (installer/release.py's)."""
    return f"GhubAi Tray {version} release files"


def signed_version(signature: Signature) -> str | None:
    """The version a signature's trusted comment names, if it is a release's comment."""
    found = _RELEASE_COMMENT.match(signature.trusted_comment)
    return found.group(1) if found else None

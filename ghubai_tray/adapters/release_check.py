"""Checking a minisign signature with the release key the app carries.

The Ed25519 arithmetic is PyNaCl's (libsodium, the library minisign itself is built
on), imported only when an update is installed, so the running tray never loads it.
The key the app trusts is ``ghubai_tray/release-key.pub``, copied there from
``installer/release-key.pub`` when the app is built (``make release-key`` makes the
pair; a build without one cannot install updates, and says so).
"""

from __future__ import annotations

import hashlib
from importlib import resources

from ghubai_tray.core.signatures import (
    PublicKey,
    Signature,
    SignatureFormatError,
    parse_public_key,
)

KEY_RESOURCE = "release-key.pub"


class BadSignature(Exception):
    """The signature does not prove the file is the project's; the text says why."""


def built_in_key() -> PublicKey | None:
    """The release key this build trusts, or None for a build made without one."""
    try:
        text = resources.files("ghubai_tray").joinpath(KEY_RESOURCE).read_text("utf-8")
    except (FileNotFoundError, OSError):
        return None
    try:
        return parse_public_key(text)
    except SignatureFormatError:
        return None


def verify(key: PublicKey, signature: Signature, data: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``key``'s, of ``data`` and of
    its trusted comment."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    if signature.key_id != key.key_id:
        raise BadSignature("it is signed with another key")  # the ids tell no owner more
    message = hashlib.blake2b(data).digest() if signature.prehashed else data
    checker = VerifyKey(key.key)
    try:
        checker.verify(message, signature.signature)
    except BadSignatureError:
        raise BadSignature("its signature does not match its content") from None
    try:
        checker.verify(signature.global_message, signature.global_signature)
    except BadSignatureError:
        raise BadSignature("its signed comment was altered") from None

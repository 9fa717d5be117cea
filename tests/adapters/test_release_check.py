"""The Ed25519 check of a release signature, on files the real ``minisign`` made once
(tests/data: a test key's public half, a SHA256SUMS and its signature), so that it runs
wherever the app does, Windows under Wine included (no minisign program needed there)."""

from __future__ import annotations

import pytest

from ghubai_tray.adapters.release_check import BadSignature, built_in_key, verify
from ghubai_tray.core.signatures import parse_public_key, parse_signature, signed_version
from tests.paths import ROOT

DATA = ROOT / "tests" / "data"

KEY = parse_public_key((DATA / "release-test-key.pub").read_text())
SUMS = (DATA / "release-SHA256SUMS").read_bytes()
SIGNATURE = parse_signature((DATA / "release-SHA256SUMS.minisig").read_text())


def test_minisigns_signature_is_checked_whole() -> None:
    assert SIGNATURE.prehashed, "minisign's default since 0.10"
    verify(KEY, SIGNATURE, SUMS)
    assert signed_version(SIGNATURE) == "0.2.0"


def test_one_changed_byte_of_the_sums_is_caught() -> None:
    with pytest.raises(BadSignature, match="its signature does not match its content"):
        verify(KEY, SIGNATURE, SUMS.replace(b"  ", b" *"))


def test_a_changed_trusted_comment_is_caught() -> None:
    from dataclasses import replace

    forged = replace(SIGNATURE, trusted_comment="GhubAi Tray 9.0.0 release files")
    with pytest.raises(BadSignature, match="its signed comment was altered"):
        verify(KEY, forged, SUMS)


def test_another_keys_signature_is_named_as_such() -> None:
    from dataclasses import replace

    other = replace(KEY, key_id=bytes(8))
    with pytest.raises(BadSignature, match="it is signed with another key"):
        verify(other, SIGNATURE, SUMS)


def test_the_built_in_key_is_the_projects_or_none() -> None:
    from importlib import resources

    shipped = resources.files("ghubai_tray").joinpath("release-key.pub")
    key = built_in_key()
    if shipped.is_file():
        assert key == parse_public_key(shipped.read_text("utf-8"))
    else:  # before the maintainers made it (make release-key): updates are not installed
        assert key is None

"""The readers of minisign keys, signatures and SHA256SUMS: strict, and never anything
but a :class:`SignatureFormatError` on what is not in their format."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.signatures import (
    SignatureFormatError,
    parse_public_key,
    parse_signature,
    parse_sums,
    release_comment,
    signed_version,
)

KEY_ID = bytes(range(1, 9))
NAMES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e,
                              exclude_characters="/\\"), min_size=1, max_size=40
                ).filter(lambda n: n.strip() == n)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def signature_text(algorithm: bytes = b"ED", comment: str = "GhubAi Tray 0.2.0 release "
                   "files", sig: bytes = b"s" * 64, glob: bytes = b"g" * 64) -> str:
    return (f"untrusted comment: signature from minisign secret key\n"
            f"{b64(algorithm + KEY_ID + sig)}\ntrusted comment: {comment}\n{b64(glob)}\n")


def test_a_public_key_file_and_its_bare_line_read_alike() -> None:
    line = b64(b"Ed" + KEY_ID + b"k" * 32)
    as_file = parse_public_key(f"untrusted comment: minisign public key 0807\n{line}\n")
    assert as_file == parse_public_key(line)
    assert (as_file.key_id, as_file.key) == (KEY_ID, b"k" * 32)
    assert as_file.key_id_text == "0807060504030201"


@pytest.mark.parametrize("text", ["", "untrusted comment: x\n", b64(b"Ed" + b"k" * 39),
                                  b64(b"Xx" + KEY_ID + b"k" * 32), "not base64 !",
                                  b64(b"Ed" + KEY_ID + b"k" * 32) + "\n" + "AAAA"])
def test_what_is_not_a_public_key_is_refused(text: str) -> None:
    with pytest.raises(SignatureFormatError):
        parse_public_key(text)


@pytest.mark.parametrize("algorithm,prehashed", [(b"ED", True), (b"Ed", False)])
def test_a_signature_reads_whole(algorithm: bytes, prehashed: bool) -> None:
    found = parse_signature(signature_text(algorithm))
    assert (found.prehashed, found.key_id, found.signature, found.global_signature) == (
        prehashed, KEY_ID, b"s" * 64, b"g" * 64)
    assert found.global_message == b"s" * 64 + b"GhubAi Tray 0.2.0 release files"
    assert signed_version(found) == "0.2.0"


@pytest.mark.parametrize("comment", ["timestamp:1 file:SHA256SUMS", "GhubAi Tray  release "
                                     "files", "GhubAi Tray 0.2.0 release files and more"])
def test_a_comment_that_names_no_release_names_no_version(comment: str) -> None:
    assert signed_version(parse_signature(signature_text(comment=comment))) is None


def test_the_release_comment_is_read_back() -> None:
    assert signed_version(parse_signature(signature_text(
        comment=release_comment("1.2.3-rc.1")))) == "1.2.3-rc.1"


@pytest.mark.parametrize("text", [
    signature_text(b"Xy"), signature_text(sig=b"s" * 63), signature_text(glob=b"g" * 65),
    signature_text().replace("trusted comment: ", "comment: "),
    signature_text().replace("untrusted comment:", "note:"),
    "\n".join(signature_text().splitlines()[:3]), signature_text() + "extra\n",
    signature_text() + "x" * 5000,
])
def test_what_is_not_a_signature_is_refused(text: str) -> None:
    with pytest.raises(SignatureFormatError):
        parse_signature(text)


@given(st.text(max_size=600))
def test_any_text_is_a_signature_or_refused_in_words(text: str) -> None:
    try:
        parse_signature(text)
    except SignatureFormatError as exc:
        assert str(exc)


@given(st.text(max_size=300))
def test_any_text_is_a_key_or_refused_in_words(text: str) -> None:
    try:
        parse_public_key(text)
    except SignatureFormatError as exc:
        assert str(exc)


@given(st.dictionaries(NAMES, st.binary(max_size=20), min_size=1, max_size=8),
       st.sampled_from(["  ", " *"]))
def test_sums_as_sha256sum_writes_them_read_back(files: dict[str, bytes], sep: str) -> None:
    text = "".join(f"{hashlib.sha256(d).hexdigest().upper()}{sep}{n}\n"
                   for n, d in files.items())
    assert parse_sums(text) == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}


@pytest.mark.parametrize("text", [
    "", "\n\n", f"{'a' * 64}  a\n{'b' * 64}  a\n", f"{'a' * 63}  a\n", f"{'g' * 64}  a\n",
    f"{'a' * 64}  ../etc/passwd\n", f"{'a' * 64}  dir\\file\n", f"{'a' * 64} a\n",
    f"{'a' * 64}  a\nrubbish\n", f"{'a' * 64}  a\n" * 2000,
])
def test_what_is_not_sha256sums_is_refused(text: str) -> None:
    with pytest.raises(SignatureFormatError):
        parse_sums(text)


@given(st.text(max_size=400))
def test_any_text_is_sums_or_refused_in_words(text: str) -> None:
    try:
        assert parse_sums(text)
    except SignatureFormatError as exc:
        assert str(exc)

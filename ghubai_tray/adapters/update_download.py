"""Downloading a release's installer and proving it is the project's, before it runs.

In order, each step refusing with a reason in words (and leaving no file behind):

1. the release is newer than this version (no downgrade, not even a signed one);
2. it has the installer, ``SHA256SUMS`` and ``SHA256SUMS.minisig``;
3. ``SHA256SUMS`` is signed by the release key this build carries, and the signature's
   trusted comment names the same version (so an old release's signed files served
   under a new tag are refused: the feed's version number itself is not signed);
4. the installer's size is what the feed declared and at most :data:`MAX_INSTALLER`,
   and its SHA-256, computed while it downloads, is the one ``SHA256SUMS`` lists.

Only then is the file renamed to its final name; until then it is a ``.part``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from pathlib import Path

import httpx

from ghubai_tray.adapters.http_body import body_within
from ghubai_tray.adapters.release_check import BadSignature, verify
from ghubai_tray.adapters.update_feed import USER_AGENT
from ghubai_tray.core.signatures import (
    MAX_SIGNATURE_TEXT,
    MAX_SUMS_TEXT,
    PublicKey,
    SignatureFormatError,
    parse_signature,
    parse_sums,
    signed_version,
)
from ghubai_tray.core.updates import Asset, Release, parse_version

SETUP_NAME = "ghubai-tray-setup.exe"  # installer/release.py's stable name
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.minisig"
MAX_INSTALLER = 512 * 1024 * 1024  # today's is 13 MB
TIMEOUT = httpx.Timeout(30.0, read=60.0)


class UpdateError(Exception):
    """Why the update was not installed, in words for the owner."""


async def download_verified(release: Release, key: PublicKey | None, folder: Path,
                            current: str, ssl_context: ssl.SSLContext,
                            name: str = SETUP_NAME) -> Path:
    """The release's installer, checked, saved in ``folder``; :class:`UpdateError` if not."""
    mine = parse_version(current)
    if mine is None or release.version <= mine:
        raise UpdateError(f"{release.version} is not newer than this version ({current})")
    if key is None:
        raise UpdateError("this build carries no release key, so it cannot check an "
                          "update; download the new version from its release page")
    wanted = {n: release.asset(n) for n in (name, SUMS, SIGNATURE)}
    missing = [n for n, a in wanted.items() if a is None]
    if missing:
        raise UpdateError(f"release {release.version} has no {', '.join(missing)}")
    setup, sums_asset, sig_asset = (wanted[n] for n in (name, SUMS, SIGNATURE))
    assert setup is not None and sums_asset is not None and sig_asset is not None
    headers = {"User-Agent": USER_AGENT}
    try:
        async with httpx.AsyncClient(verify=ssl_context, timeout=TIMEOUT, headers=headers,
                                     follow_redirects=True, max_redirects=5) as http:
            sums_text = await _small(http, sums_asset, MAX_SUMS_TEXT)
            sig_text = await _small(http, sig_asset, MAX_SIGNATURE_TEXT)
            expected = _checked_sums(release, key, sums_text, sig_text).get(name)
            if expected is None:
                raise UpdateError(f"the signed {SUMS} does not list {name}")
            return await _save(http, setup, expected, folder,
                               f"ghubai-tray-{release.version}-setup.exe")
    except httpx.TimeoutException:
        raise UpdateError("the download stopped answering") from None
    except httpx.HTTPError as exc:
        raise UpdateError(f"the download failed ({type(exc).__name__})") from None


def _checked_sums(release: Release, key: PublicKey, sums_text: bytes,
                  sig_text: bytes) -> dict[str, str]:
    try:
        signature = parse_signature(sig_text.decode("utf-8"))
    except (SignatureFormatError, UnicodeDecodeError) as exc:
        raise UpdateError(f"{SIGNATURE} is unreadable: {exc}") from None
    try:
        verify(key, signature, sums_text)
    except BadSignature as exc:
        raise UpdateError(f"{SUMS} is not the project's: {exc}") from None
    signed = signed_version(signature)
    if signed != str(release.version):
        raise UpdateError(f"the signed {SUMS} is for version {signed or 'unknown'}, "
                          f"not {release.version}")
    try:
        return parse_sums(sums_text.decode("utf-8"))
    except (SignatureFormatError, UnicodeDecodeError) as exc:
        raise UpdateError(f"{SUMS} is unreadable: {exc}") from None


async def _small(http: httpx.AsyncClient, asset: Asset, limit: int) -> bytes:
    async with http.stream("GET", asset.url) as response:
        if response.status_code != 200:
            raise UpdateError(f"{asset.name} could not be downloaded "
                              f"(HTTP {response.status_code})")
        return await body_within(response, limit,
                                 lambda: UpdateError(f"{asset.name} is far too large"))


async def _save(http: httpx.AsyncClient, asset: Asset, expected: str, folder: Path,
                final_name: str) -> Path:
    if asset.size > MAX_INSTALLER:
        raise UpdateError(f"{asset.name} would be {asset.size} bytes, far too large")
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / final_name, folder / (final_name + ".part")
    digest, size = hashlib.sha256(), 0
    try:
        async with http.stream("GET", asset.url) as response:
            if response.status_code != 200:
                raise UpdateError(f"{asset.name} could not be downloaded "
                                  f"(HTTP {response.status_code})")
            with part.open("wb") as out:
                async for piece in response.aiter_bytes():
                    size += len(piece)
                    if size > asset.size:
                        raise UpdateError(f"{asset.name} is larger than the release says")
                    digest.update(piece)
                    out.write(piece)
        if size != asset.size:
            raise UpdateError(f"the download of {asset.name} was cut short "
                              f"({size} of {asset.size} bytes)")
        if digest.hexdigest() != expected:
            raise UpdateError(f"{asset.name} is not the file {SUMS} lists (its SHA-256 "
                              "differs): it was changed or damaged on the way")
        part.replace(final)
        return final
    except OSError as exc:
        raise UpdateError(f"the installer could not be saved in {folder} "
                          f"({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            part.unlink()


def discard(path: Path | None) -> None:
    """Delete a download that will not be installed."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()

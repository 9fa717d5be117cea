"""The token in a real Secret Service: per hub, long tokens in parts, never in a file."""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, fail

from ghubai_tray.adapters.credentials import (
    PART_SIZE,
    SERVICE,
    account_for,
    delete_token,
    load_token,
    resolve_token,
    store_token,
)
from ghubai_tray.core.errors import ConfigError, TokenStoreError
from tests.testbed.secrets import secret_service_available

# Skipped on a developer machine without gnome-keyring; under CI it must run (and fails loudly).
pytestmark = pytest.mark.skipif(
    not secret_service_available() and not os.environ.get("CI"),
    reason="gnome-keyring and dbus are needed (make test installs them)")


def native_keyring() -> KeyringBackend:
    """The backend a desktop of this platform has: Credential Manager or Secret Service."""
    if sys.platform == "win32":
        from keyring.backends import Windows

        return Windows.WinVaultKeyring()  # type: ignore[no-untyped-call]
    return SecretService.Keyring()  # type: ignore[no-untyped-call]


@pytest.fixture
def real_keyring(keyring_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in keyring_env.items():
        monkeypatch.setenv(key, value)
    previous = keyring.get_keyring()
    keyring.set_keyring(native_keyring())
    yield
    keyring.set_keyring(previous)


ORIGINS = {
    "https-default-port": ("https://Hub.Example.com/gridhub", "https://hub.example.com"),
    "https-explicit-default": ("https://hub.example.com:443/x", "https://hub.example.com"),
    "other-port": ("https://hub.example.com:7197/gridhub", "https://hub.example.com:7197"),
    "http": ("http://127.0.0.1:5080/gridhub?x=1", "http://127.0.0.1:5080"),
    "ipv6": ("http://[::1]:5080/gridhub", "http://[::1]:5080"),
}


@pytest.mark.parametrize("url,origin", ORIGINS.values(), ids=ORIGINS.keys())
def test_account_is_the_hub_origin(url: str, origin: str) -> None:
    assert account_for(url) == origin


@pytest.mark.usefixtures("real_keyring")
def test_each_hub_has_its_own_token() -> None:
    store_token("https://a.example/gridhub", "token-a")
    store_token("https://b.example/gridhub", "token-b")
    assert load_token("https://a.example/other-path") == "token-a"
    assert load_token("https://b.example/gridhub") == "token-b"
    assert keyring.get_password(SERVICE, "https://a.example") == "token-a"
    assert delete_token("https://a.example/gridhub") is True
    assert load_token("https://a.example/gridhub") is None
    assert delete_token("https://a.example/gridhub") is False
    assert load_token("https://b.example/gridhub") == "token-b"


@pytest.mark.usefixtures("real_keyring")
def test_a_long_token_is_stored_in_parts_and_removed_whole() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9." + "x" * (3 * PART_SIZE) + ".sig"
    store_token("https://jwt.example", jwt)
    assert load_token("https://jwt.example") == jwt
    assert all(len(keyring.get_password(SERVICE, f"https://jwt.example#{i}") or "") <= PART_SIZE
               for i in range(4))
    store_token("https://jwt.example", "short")  # replacing drops the old parts
    assert keyring.get_password(SERVICE, "https://jwt.example#0") is None
    assert load_token("https://jwt.example") == "short"
    delete_token("https://jwt.example")


@pytest.mark.usefixtures("real_keyring")
def test_provider_token_overrides_the_keyring() -> None:
    store_token("https://c.example", "from-keyring")
    assert resolve_token("https://c.example", {"PROVIDER_TOKEN": "from-env"}).token == "from-env"
    source = resolve_token("https://c.example", {})
    assert source.token == "from-keyring" and "OS keyring" in source.where
    delete_token("https://c.example")
    assert resolve_token("https://c.example", {}).token is None


@pytest.mark.parametrize("bad", ["", "   ", "two words", "line\nbreak", "x" * 70_000])
@pytest.mark.usefixtures("real_keyring")
def test_implausible_tokens_are_refused(bad: str) -> None:
    with pytest.raises(TokenStoreError):
        store_token("https://d.example", bad)


def test_no_keyring_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # keyring's own "no backend" keyring, what it selects when no Secret Service runs.
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(TokenStoreError) as caught:
            store_token("https://e.example", "secret-token")
        assert "PROVIDER_TOKEN" in str(caught.value)
        assert ("Credential Manager" if sys.platform == "win32" else "Secret Service") in str(
            caught.value)
        with pytest.raises(TokenStoreError):
            load_token("https://e.example")
    finally:
        keyring.set_keyring(previous)
    assert os.environ.get("PROVIDER_TOKEN") is None


def test_a_save_that_fails_on_the_file_puts_the_keyring_back(
        real_keyring: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ghubai_tray.desktop.settings_window import save_both_or_neither

    # A hub of its own: on Windows the Credential Manager is the whole run's, and another
    # test asks whether hub.example.com has a token.
    hub = "https://both-or-neither.example.com/gridhub"
    store_token(hub, "the-old-token")
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("GHUBAI_CONFIG", str(tmp_path / "not-a-folder" / "config.toml"))
    with pytest.raises((ConfigError, OSError)):  # Linux cannot read it, Windows not write
        save_both_or_neither(hub, {"max_images": 3}, "a-new-token", remove=False)
    assert load_token(hub) == "the-old-token", "neither was saved"
    with pytest.raises((ConfigError, OSError)):  # Linux cannot read it, Windows not write
        save_both_or_neither(hub, {"max_images": 3}, "", remove=True)
    assert load_token(hub) == "the-old-token"
    monkeypatch.setenv("GHUBAI_CONFIG", str(tmp_path / "config.toml"))
    save_both_or_neither(hub, {"max_images": 3}, "a-new-token", remove=False)
    assert load_token(hub) == "a-new-token" and "max_images = 3" in (
        tmp_path / "config.toml").read_text(), "both were saved"
    delete_token(hub)


@pytest.mark.skipif(sys.platform == "win32", reason="locks a Secret Service collection")
@pytest.mark.usefixtures("real_keyring")
def test_a_locked_keyring_says_so_and_the_lock_is_seen_without_a_prompt(
        keyring_env: dict[str, str]) -> None:
    """A locked keyring read as "cannot be used (KeyringLocked) ... set PROVIDER_TOKEN
    instead": advice to replace what only needs unlocking."""
    from ghubai_tray.adapters.credentials import keyring_locked
    from tests.testbed.secrets import lock_keyring, unlock_keyring

    store_token("https://a.example/gridhub", "token-a")
    assert keyring_locked() is False
    lock_keyring(keyring_env)
    assert keyring_locked() is True
    with pytest.raises(TokenStoreError, match="the OS keyring is locked, so it could not read "
                                              "the token .*unlock it and try again"):
        load_token("https://a.example/gridhub")
    # keyring leaves the D-Bus connection of a read that found the collection locked open
    # (its SecretService backend raises KeyringLocked before closing it): collected here,
    # where that warning is expected, rather than in whichever test the collector runs in
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert keyring_locked() is True, "asking did not unlock it (nor prompt)"
    unlock_keyring(keyring_env)
    assert keyring_locked() is False
    assert load_token("https://a.example/gridhub") == "token-a"

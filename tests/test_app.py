"""The composition root's own rule: a first run opens no keyring before Settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghubai_tray.adapters.credentials import TokenSource
from ghubai_tray.app import NOT_SET_UP_YET, keyring_after_setup
from ghubai_tray.core.settings import DEFAULT_HUB_URL, Settings


class Keyring:
    """Stands for resolve_token (the real Secret Service cannot show whether it would
    have prompted for its password; what matters is whether it was opened at all)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, hub_url: str) -> TokenSource:
        self.asked.append(hub_url)
        return TokenSource("stored", "the OS keyring")


@pytest.fixture(autouse=True)
def _no_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVIDER_TOKEN", raising=False)


def test_a_first_run_reads_no_token_until_settings_are_saved(tmp_path: Path) -> None:
    keyring, config = Keyring(), tmp_path / "config.toml"
    provider = keyring_after_setup(Settings(), keyring, config)
    assert provider(DEFAULT_HUB_URL) == TokenSource(None, NOT_SET_UP_YET)
    assert keyring.asked == []
    config.write_text('hub_url = "https://hub.example.com/gridhub"\n')
    assert provider("https://hub.example.com/gridhub").token == "stored"
    assert provider(DEFAULT_HUB_URL).token == "stored"  # saved settings: not a first run
    assert keyring.asked == ["https://hub.example.com/gridhub", DEFAULT_HUB_URL]


def test_a_hub_chosen_by_a_variable_or_flag_reads_the_keyring_at_once(tmp_path: Path) -> None:
    keyring = Keyring()
    chosen = Settings(sources={"hub_url": "HUB_URL"})
    assert keyring_after_setup(chosen, keyring, tmp_path / "none.toml")(
        DEFAULT_HUB_URL).token == "stored"
    other = keyring_after_setup(Settings(), keyring, tmp_path / "none.toml")
    assert other("https://hub.example.com/gridhub").token == "stored"
    assert len(keyring.asked) == 2


def test_provider_token_set_is_not_a_first_run(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = Keyring()
    monkeypatch.setenv("PROVIDER_TOKEN", "from-the-variable")
    keyring_after_setup(Settings(), keyring, tmp_path / "none.toml")(DEFAULT_HUB_URL)
    assert keyring.asked == [DEFAULT_HUB_URL]

"""The notification policy: one per episode, after the episode has lasted long enough."""

from __future__ import annotations

from dataclasses import replace

from ghubai_tray.core import texts
from ghubai_tray.core.state import ModelView, OllamaStatus, Snapshot, State
from ghubai_tray.desktop.notifications import HUB_AFTER, OLLAMA_AFTER, Episodes, update
from tests.snapshots import changed, snapshot

OK = snapshot(connection=State.REGISTERED, hub_url="https://hub.example.com/gridhub",
              ollama=OllamaStatus.REACHABLE, models=(ModelView("m", False, True),))
OLLAMA_DOWN = replace(OK, ollama=OllamaStatus.UNREACHABLE)
HUB_DOWN = replace(OK, connection=State.RECONNECTING)
REJECTED = replace(OK, connection=State.AUTH_REJECTED)
NEEDED = replace(OK, connection=State.TOKEN_NEEDED)
BACK = texts.NOTIFY_BACK.format(host="hub.example.com")
NOW = texts.NOTIFY_NOW.format(models="1 model", host="hub.example.com")


def run(timeline: list[tuple[float, Snapshot]], shared: bool = True) -> list[tuple[float, str]]:
    """What is said over a timeline; ``shared``: it had shared already before it began."""
    episodes, said = Episodes(shared=shared), []
    for now, snap in timeline:
        episodes, messages = update(episodes, snap, now)
        said += [(now, m) for m in messages]
    return said


def test_all_quiet_says_nothing() -> None:
    assert run([(t, OK) for t in range(0, 1000, 10)]) == []


def test_a_refused_token_is_said_at_once_and_once() -> None:
    assert run([(0, REJECTED), (1, REJECTED), (500, REJECTED)]) == [(0, texts.NOTIFY_TOKEN)]


def test_a_needed_token_is_said_at_once_and_once_and_not_as_refused() -> None:
    assert run([(0, NEEDED), (1, NEEDED), (500, NEEDED)]) == [(0, texts.NOTIFY_TOKEN_NEEDED)]
    assert "refused" not in texts.NOTIFY_TOKEN_NEEDED


def test_ollama_away_for_a_minute_then_back() -> None:
    said = run([(0, OK), (10, OLLAMA_DOWN), (10 + OLLAMA_AFTER - 1, OLLAMA_DOWN),
                (10 + OLLAMA_AFTER, OLLAMA_DOWN), (200, OLLAMA_DOWN), (300, OK), (400, OK)])
    assert said == [(10 + OLLAMA_AFTER, texts.NOTIFY_OLLAMA), (300, BACK)]


def test_short_outages_say_nothing_even_when_they_flap() -> None:
    timeline = []
    for i in range(50):
        timeline += [(i * 40.0, HUB_DOWN), (i * 40.0 + 20, OK)]
    assert run(timeline) == []


def test_hub_away_for_five_minutes_then_back_via_reconnecting() -> None:
    said = run([(0, HUB_DOWN), (HUB_AFTER, HUB_DOWN), (HUB_AFTER + 5,
                                                        replace(OK, connection=State.CONNECTED)),
                (HUB_AFTER + 6, OK)])
    assert said == [(HUB_AFTER, texts.NOTIFY_HUB), (HUB_AFTER + 6, BACK)]


def test_pausing_is_not_an_ollama_outage() -> None:
    paused = changed(OLLAMA_DOWN, paused=True)
    assert run([(0, paused), (OLLAMA_AFTER * 3, paused)]) == []


def test_the_first_share_says_now_sharing_once_and_not_back() -> None:
    assert run([(0, OK), (10, OK), (20, OK)], shared=False) == [(0, NOW)]
    # unreachable from the start for five minutes: nothing to be "back" to
    said = run([(0, HUB_DOWN), (HUB_AFTER, HUB_DOWN), (HUB_AFTER + 6, OK)], shared=False)
    assert said == [(HUB_AFTER, texts.NOTIFY_HUB), (HUB_AFTER + 6, NOW)]


def test_a_tray_not_set_up_yet_is_not_a_hub_outage() -> None:
    not_set_up = replace(OK, connection=State.NOT_CONFIGURED)
    said = run([(0, not_set_up), (HUB_AFTER * 3, not_set_up), (HUB_AFTER * 3 + 1, OK)],
               shared=False)
    assert said == [(HUB_AFTER * 3 + 1, NOW)]


def test_while_not_set_up_ollama_being_away_is_not_announced() -> None:
    """The owner of a first run was told "Ollama is not reachable" while still typing the
    Ollama address into Settings; once set up, a real outage is said as usual."""
    typing = replace(OLLAMA_DOWN, connection=State.NOT_CONFIGURED)
    said = run([(0, typing), (OLLAMA_AFTER * 5, typing), (OLLAMA_AFTER * 5 + 1, OK),
                (1000, OLLAMA_DOWN), (1000 + OLLAMA_AFTER, OLLAMA_DOWN)], shared=False)
    assert said == [(OLLAMA_AFTER * 5 + 1, NOW), (1000 + OLLAMA_AFTER, texts.NOTIFY_OLLAMA)]


def test_a_locked_keyring_is_said_at_once_and_not_as_a_missing_token() -> None:
    locked = replace(OK, connection=State.TOKEN_UNREADABLE)
    said = run([(0, OK), (1, locked), (100, locked), (200, OK)])
    assert said == [(1, texts.NOTIFY_TOKEN_UNREADABLE), (200, BACK)]


def test_a_newer_version_is_told_once_per_version() -> None:
    from ghubai_tray.core.state import UpdateView

    v2 = replace(OK, update=UpdateView("0.2.0", "https://example.com/v0.2.0"))
    v3 = replace(OK, update=UpdateView("0.3.0", "https://example.com/v0.3.0"))
    assert run([(0, OK), (10, v2), (20, v2), (30, OK), (40, v2), (50, v3), (60, v3)]) == [
        (10, texts.NOTIFY_UPDATE.format(version="0.2.0")),
        (50, texts.NOTIFY_UPDATE.format(version="0.3.0"))]


def test_installed_from_the_deb_the_notice_names_apt() -> None:
    from ghubai_tray.core.state import UpdateView

    v2 = replace(OK, update=UpdateView("0.2.0", "https://example.com/v0.2.0"))
    _, said = update(Episodes(shared=True), v2, 0.0, deb=True)
    assert said == [texts.NOTIFY_UPDATE_DEB.format(version="0.2.0")]
    assert "sudo apt install ./ghubai-tray_amd64.deb" in said[0]


def test_where_the_app_installs_updates_the_notice_says_how() -> None:
    from ghubai_tray.core.state import UpdateView

    v2 = replace(OK, update=UpdateView("0.2.0", "https://example.com/v0.2.0", True))
    _, said = update(Episodes(shared=True), v2, 0.0, deb=False)
    assert said == [texts.NOTIFY_UPDATE_INSTALL.format(version="0.2.0")]
    assert "Install update" in said[0]

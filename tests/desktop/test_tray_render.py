"""The icon, the tooltip and the menu as pure functions of the snapshot, state by state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageChops, ImageStat

from ghubai_tray.core.state import (
    ModelView,
    OllamaStatus,
    Pause,
    PauseMode,
    Resume,
    RetryNow,
    SetFreeGpuWhenPaused,
    SetModelShared,
    SetShareNewModels,
    ShareAnyway,
    Snapshot,
    State,
)
from ghubai_tray.core.texts import moment
from ghubai_tray.desktop.icon import IconKind, icon_for, icon_image, icon_kind, title_for
from ghubai_tray.desktop.menu import (
    Desktop,
    Item,
    PauseFor,
    PauseUntilMorning,
    Ui,
    morning,
    render_menu,
    resolve,
)
from tests.snapshots import changed, snapshot

MODELS = (ModelView("llama3.2:1b", False, True), ModelView("mistral:7b", False, True),
          ModelView("gpt-oss:120b-cloud", True, False))
BASE = snapshot(connection=State.REGISTERED, hub_url="https://hub.example.com/gridhub",
                ollama=OllamaStatus.REACHABLE, ollama_url="http://localhost:11434",
                models=MODELS, registered_models=2)
UNTIL = datetime(2026, 11, 24, 18, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the day of UNTIL: its time needs no day


def snap(**changes: Any) -> Snapshot:
    return changed(BASE, **changes)


STATES: dict[str, tuple[Snapshot, IconKind, str]] = {
    "contributing": (snap(), IconKind.CONTRIBUTING,
                     "GhubAi — Sharing 2 models with hub.example.com"),
    "serving": (snap(active=1), IconKind.SERVING,
                "GhubAi — Serving 1 request for hub.example.com"),
    "connecting": (snap(connection=State.CONNECTING), IconKind.CONNECTING,
                   "GhubAi — Connecting to hub.example.com…"),
    "connected-not-yet-registered": (snap(connection=State.CONNECTED), IconKind.CONNECTING,
                                     "GhubAi — Connecting to hub.example.com…"),
    "reconnecting": (snap(connection=State.RECONNECTING,
                          next_attempt=datetime(2026, 1, 1, 9, 5, 7)), IconKind.CONNECTING,
                     "GhubAi — Cannot reach hub.example.com; trying again at 09:05:07"),
    "paused": (snap(paused=True), IconKind.PAUSED, "GhubAi — Paused"),
    "paused-until": (snap(paused=True, paused_until=UNTIL), IconKind.PAUSED,
                     "GhubAi — Paused until 18:30"),
    "not-configured": (snap(connection=State.NOT_CONFIGURED), IconKind.ATTENTION,
                       "GhubAi — Not set up yet: choose Set up… to connect to a hub"),
    "token-rejected": (snap(connection=State.AUTH_REJECTED), IconKind.ATTENTION,
                       "GhubAi — The hub refused the token: choose Settings… to replace it"),
    "token-needed": (snap(connection=State.TOKEN_NEEDED), IconKind.ATTENTION,
                     "GhubAi — The hub needs a provider token, and none was sent: choose "
                     "Settings…"),
    "keyring-locked": (snap(connection=State.TOKEN_UNREADABLE), IconKind.ATTENTION,
                       "GhubAi — The OS keyring did not give the token (is it locked?): "
                       "unlock it, then choose Retry now"),
    "ollama-down": (snap(ollama=OllamaStatus.UNREACHABLE), IconKind.ATTENTION,
                    "GhubAi — Ollama is not running"),
    "ollama-odd": (snap(ollama=OllamaStatus.BAD_ANSWER), IconKind.ATTENTION,
                   "GhubAi — Something other than Ollama answers at the Ollama address"),
    "nothing-shared": (snap(models=tuple(replace(m, shared=False) for m in MODELS)),
                       IconKind.ATTENTION,
                       "GhubAi — Connected, but no model is shared: choose some under Models"),
    "certs-not-checked": (snap(insecure_tls=True), IconKind.ATTENTION,
                          "GhubAi — Connected without checking the hub's certificate"),
    "paused-while-ollama-down": (snap(paused=True, ollama=OllamaStatus.UNREACHABLE),
                                 IconKind.PAUSED, "GhubAi — Paused"),
    "stopped": (snap(connection=State.STOPPED), IconKind.CONNECTING, "GhubAi — Stopped"),
    "finishing": (snap(paused=True, active=1), IconKind.FINISHING,
                  "GhubAi — Finishing 1 request, then pausing"),
    "finishing-queued": (snap(paused=True, active=1, queued=1), IconKind.FINISHING,
                         "GhubAi — Finishing 2 requests, then pausing"),
    "quitting": (snap(stopping=True, active=2), IconKind.QUITTING,
                 "GhubAi — Quitting: finishing 2 requests…"),
    "quitting-idle": (snap(stopping=True), IconKind.QUITTING, "GhubAi — Quitting…"),
    "held-by-the-schedule": (snap(held_by="schedule", held_until=UNTIL), IconKind.PAUSED,
                             "GhubAi — Paused until 18:30 (schedule)"),
    "held-by-a-game": (snap(held_by="full-screen app"), IconKind.PAUSED,
                       "GhubAi — Paused: a full-screen app is running"),
    "held-by-the-owners-chat": (snap(held_by="your use of Ollama", held_until=UNTIL),
                                IconKind.PAUSED,
                                "GhubAi — Paused: you are using Ollama (until 18:30 at least)"),
    "held-by-the-gpu": (snap(held_by="GPU in use"), IconKind.PAUSED,
                        "GhubAi — Paused: another program is using the GPU"),
    "held-while-here": (snap(held_by="you are here"), IconKind.PAUSED,
                        "GhubAi — Paused: you are using this computer"),
    "held-on-battery": (snap(held_by="battery"), IconKind.PAUSED, "GhubAi — Paused: on battery"),
    "held-finishing": (snap(held_by="schedule", active=1), IconKind.FINISHING,
                       "GhubAi — Finishing 1 request, then pausing"),
    "quitting-unreachable": (snap(stopping=True, connection=State.RECONNECTING),
                             IconKind.QUITTING, "GhubAi — Quitting…"),
}


@pytest.mark.parametrize("state,kind,title", STATES.values(), ids=STATES.keys())
def test_icon_and_tooltip(state: Snapshot, kind: IconKind, title: str) -> None:
    assert icon_kind(state) is kind
    assert title_for(state, NOW) == title
    image = icon_for(state, 32)
    assert image.size == (32, 32) and image.mode == "RGBA"


def test_tooltips_fit_windows_limit() -> None:
    long = snap(hub_url="https://" + "h" * 200 + ".example/gridhub")
    assert len(title_for(long)) <= 127 and title_for(long).endswith("…")


@pytest.mark.parametrize("size", [16, 24, 32, 64])
def test_every_look_is_distinct_at_every_size(size: int) -> None:
    images = {kind: icon_image(kind, size) for kind in IconKind}
    kinds = list(IconKind)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            diff = _difference(images[a], images[b])
            assert diff > 0.02, f"{a.value} and {b.value} look alike at {size} px ({diff:.3f})"
            gray = _difference(images[a].convert("LA"), images[b].convert("LA"))
            assert gray > 0.01, f"{a.value} and {b.value} differ only by colour at {size} px"


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference over all channels, from 0 (same) to 1."""
    means = ImageStat.Stat(ImageChops.difference(a, b)).mean
    return float(sum(means)) / (len(means) * 255)


DESKTOP = Desktop(version="1.2.3", autostart=False)


def texts_of(items: tuple[Item, ...]) -> list[str]:
    return [i.text for i in items]


def find(items: tuple[Item, ...], text: str) -> Item:
    return next(i for i in items if i.text == text)


def test_the_menu_when_contributing() -> None:
    menu = render_menu(snap(), DESKTOP, NOW)
    assert texts_of(menu) == [
        "Sharing 2 models with hub.example.com", "Hub: hub.example.com (registered)",
        "Ollama: running, 3 models", "-", "Pause", "Models", "Activity", "-", "Settings…",
        "Start at login", "Open log folder", "Copy diagnostics", "About GhubAi Tray 1.2.3", "-",
        "Quit"]
    assert [i.enabled for i in menu[:3]] == [False, False, False]
    assert find(menu, "Settings…").default and find(menu, "Settings…").action is Ui.SETTINGS
    assert find(menu, "Quit").action is Ui.QUIT
    assert find(menu, "Start at login").checked is False


def test_a_newer_version_shows_in_the_menu_and_opens_its_page() -> None:
    from ghubai_tray.core.state import UpdateView

    menu = render_menu(replace(snap(), update=UpdateView("1.3.0", "https://example.com/")),
                       DESKTOP, NOW)
    assert texts_of(menu)[3:6] == ["-", "Update available: 1.3.0", "Pause"]
    assert find(menu, "Update available: 1.3.0").action is Ui.UPDATE


def test_models_submenu_toggles_each_model_and_new_models() -> None:
    models = find(render_menu(snap(), DESKTOP, NOW), "Models").submenu
    assert [(i.text, i.checked, i.action) for i in models] == [
        ("llama3.2:1b", True, SetModelShared("llama3.2:1b", False)),
        ("mistral:7b", True, SetModelShared("mistral:7b", False)),
        ("gpt-oss:120b-cloud (cloud)", False, SetModelShared("gpt-oss:120b-cloud", True)),
        ("-", None, None),
        ("Share new models automatically", True, SetShareNewModels(False))]
    empty = find(render_menu(snap(models=()), DESKTOP), "Models").submenu
    assert empty[0] == Item("Ollama has no models", enabled=False)


def test_pause_submenu_and_resume() -> None:
    pause = find(render_menu(snap(), DESKTOP, NOW), "Pause").submenu
    assert [(i.text, i.action) for i in pause] == [
        ("Pause now (stop current requests)", Pause(PauseMode.NOW)),
        ("Finish current requests, then pause", Pause(PauseMode.AFTER_CURRENT)),
        ("Pause for 30 minutes", PauseFor(30)), ("Pause for 1 hour", PauseFor(60)),
        ("Pause until the morning (08:00)", PauseUntilMorning()), ("-", None),
        ("Free GPU memory when paused", SetFreeGpuWhenPaused(False))]
    paused = render_menu(snap(paused=True, paused_until=UNTIL), DESKTOP, NOW)
    assert texts_of(paused)[:5] == ["Paused until 18:30", "Hub: hub.example.com (paused)",
                                    "Ollama: running, 3 models", "-", "Resume"]
    assert find(paused, "Resume").action == Resume()


def test_set_up_comes_first_when_not_configured() -> None:
    menu = render_menu(snap(connection=State.NOT_CONFIGURED), DESKTOP, NOW)
    assert menu[0] == Item("Not set up yet: Set up…", Ui.SET_UP, default=True)
    assert not find(menu, "Settings…").default
    assert texts_of(menu).count("Settings…") == 1 and "Set up…" not in texts_of(menu)
    assert not find(menu, "Pause").enabled and not find(menu, "Models").enabled


PROBLEMS = {
    "token-refused": (snap(connection=State.AUTH_REJECTED), "Token refused: Replace token…",
                      Ui.SETTINGS),
    "token-needed": (snap(connection=State.TOKEN_NEEDED), "Token needed: Settings…",
                     Ui.SETTINGS),
    # a token is stored, the keyring would not give it: reading it again is the fix
    "keyring-locked": (snap(connection=State.TOKEN_UNREADABLE), "Keyring locked? Retry now",
                       RetryNow()),
    "ollama-down": (snap(ollama=OllamaStatus.UNREACHABLE), "Ollama not running: Retry now",
                    RetryNow()),
    "not-ollama": (snap(ollama=OllamaStatus.BAD_ANSWER),
                   "Not Ollama at the Ollama address: Settings…", Ui.SETTINGS),
    "hub-unreachable": (snap(connection=State.RECONNECTING),
                        "Cannot reach hub.example.com: Retry now", RetryNow()),
}


@pytest.mark.parametrize("state,text,action", PROBLEMS.values(), ids=PROBLEMS.keys())
def test_a_problem_heads_the_menu_with_its_fix_one_click_away(
        state: Snapshot, text: str, action: object) -> None:
    menu = render_menu(state, DESKTOP, NOW)
    assert (menu[0].text, menu[0].action, menu[0].enabled) == (text, action, True)
    assert sum(i.default for i in menu) == 1
    assert find(menu, "Pause").enabled and find(menu, "Models").enabled


def test_the_active_pause_is_marked_with_its_day() -> None:
    day_before = NOW - timedelta(days=1)
    pause = find(render_menu(snap(paused=True, paused_until=UNTIL), DESKTOP, day_before),
                 "Pause").submenu
    assert texts_of(pause)[:2] == ["Now: paused until Tue 18:30", "-"]
    assert not pause[0].enabled
    open_ended = find(render_menu(snap(paused=True), DESKTOP, NOW), "Pause").submenu
    assert open_ended[0].text == "Now: paused until you resume"


def test_activity_submenu() -> None:
    from ghubai_tray.core.activity import Activity, Tally

    activity = Activity("2026-11-24", Tally(3, 1, 120, 2), Tally(40, 2, 9000))
    items = find(render_menu(snap(active=2, activity=activity), DESKTOP, NOW), "Activity").submenu
    assert texts_of(items) == ["Serving now: 2", "Today: 3 requests, 120 tokens",
                               "Failed or refused today: 1",
                               "Kept within your limits today: 2",
                               "Since install: 40 requests, 9000 tokens", "-",
                               "Charts and export…"]
    assert not any(i.enabled for i in items[:-1])
    assert items[-1].enabled and items[-1].action is Ui.ACTIVITY  # the Activity window


def test_the_activity_submenu_says_how_much_of_todays_budgets_is_used() -> None:
    from ghubai_tray.core.activity import Activity
    from ghubai_tray.core.guard import DayUse

    today = Activity("2026-11-24")
    use = DayUse().add("2026-11-24", 320.0, 4320.0)  # 0.32 kWh, 1.2 h of the GPU's time
    items = find(render_menu(snap(activity=today, today_use=use, daily_energy_kwh=0.5,
                                  daily_gpu_hours=3.0), DESKTOP, NOW), "Activity").submenu
    assert "Energy budget: 0.32 of 0.50 kWh used today" in texts_of(items)
    assert "GPU-time budget: 1.2 of 3 h used today" in texts_of(items)
    yesterday = find(render_menu(snap(activity=Activity("2026-11-25"), today_use=use,
                                      daily_energy_kwh=0.5), DESKTOP, NOW), "Activity").submenu
    assert "Energy budget: 0.50 kWh (nothing measured yet today)" in texts_of(yesterday)
    assert not any("budget" in t for t in texts_of(
        find(render_menu(snap(activity=today, today_use=use), DESKTOP, NOW),
             "Activity").submenu))  # no budget set: no line


def test_start_at_login_greyed_out_where_unavailable() -> None:
    item = find(render_menu(snap(), Desktop("1", autostart=None)), "Start at login")
    assert not item.enabled
    assert find(render_menu(snap(), Desktop("1", autostart=True)), "Start at login").checked


def test_pause_ends_are_computed_when_clicked() -> None:
    now = datetime(2026, 11, 24, 23, 50, tzinfo=timezone(timedelta(hours=1)))
    assert resolve(PauseFor(30), now) == Pause(PauseMode.AFTER_CURRENT,
                                               now + timedelta(minutes=30))
    assert resolve(PauseUntilMorning(), now) == Pause(
        PauseMode.AFTER_CURRENT, datetime(2026, 11, 25, 8, 0, tzinfo=now.tzinfo))
    assert resolve(Ui.QUIT, now) is Ui.QUIT
    assert morning(datetime(2026, 12, 31, 9, 0, tzinfo=UTC)) == datetime(2027, 1, 1, 8,
                                                                          tzinfo=UTC)


BERLIN = ZoneInfo("Europe/Berlin")  # summer time began on 29 March 2026 at 02:00


@pytest.mark.parametrize("now,coming", [
    (datetime(2026, 11, 24, 7, 59, tzinfo=BERLIN), datetime(2026, 11, 24, 8, 0, tzinfo=BERLIN)),
    (datetime(2026, 11, 24, 8, 0, tzinfo=BERLIN), datetime(2026, 11, 25, 8, 0, tzinfo=BERLIN)),
    (datetime(2026, 11, 24, 0, 0, tzinfo=BERLIN), datetime(2026, 11, 24, 8, 0, tzinfo=BERLIN)),
    (datetime(2026, 11, 24, 23, 59, tzinfo=BERLIN), datetime(2026, 11, 25, 8, 0, tzinfo=BERLIN)),
    (datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN), datetime(2026, 3, 29, 8, 0, tzinfo=BERLIN)),
    (datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN), datetime(2026, 3, 29, 8, 0, tzinfo=BERLIN)),
], ids=["before-8", "at-8", "midnight", "late", "eve-of-summer-time", "night-of-the-change"])
def test_the_morning_is_the_coming_8_oclock(now: datetime, coming: datetime) -> None:
    """Clicked at 04:00, "Pause until the morning" paused 28 hours while the tooltip said
    "until 08:00"; it is the coming 8:00, on that day's clock."""
    assert morning(now) == coming
    assert morning(now).astimezone(BERLIN).hour == 8
    assert (morning(now) - now) <= timedelta(hours=24)


def test_a_time_is_said_with_its_day_unless_it_is_today() -> None:
    now = datetime(2026, 11, 24, 4, 28, tzinfo=BERLIN)  # a Tuesday
    assert moment(datetime(2026, 11, 24, 8, 0, tzinfo=BERLIN), now) == "08:00"
    assert moment(datetime(2026, 11, 25, 3, 0, tzinfo=BERLIN), now) == "Wed 03:00"
    assert moment(datetime(2026, 11, 30, 3, 0, tzinfo=BERLIN), now) == "Mon 03:00"
    assert moment(datetime(2026, 12, 1, 3, 0, tzinfo=BERLIN), now) == "Tue 01 Dec 03:00"
    assert moment(datetime(2026, 11, 24, 7, 0, tzinfo=UTC), now) == "08:00", "in now's zone"
    # what `pause --until 03:00` at 04:28 shows: the pause ends tomorrow, and says so
    paused = snap(paused=True, paused_until=datetime(2026, 11, 25, 3, 0, tzinfo=BERLIN))
    assert title_for(paused, now) == "GhubAi — Paused until Wed 03:00"
    held = snap(held_by="schedule", held_until=datetime(2026, 11, 25, 8, 0, tzinfo=BERLIN))
    assert texts_of(render_menu(held, DESKTOP, now))[0] == "Paused until Wed 08:00 (schedule)"


def test_a_problem_the_owner_must_know_heads_the_menu() -> None:
    notice = "your settings could not be saved (No space left on device)"
    items = render_menu(snap(notice=notice), DESKTOP, NOW)
    assert texts_of(items)[0] == ("Attention: Your settings could not be saved (No space left "
                                  "on device)")
    assert not items[0].enabled


def test_a_rule_that_holds_sharing_can_be_set_aside_for_an_hour() -> None:
    menu = render_menu(snap(held_by="schedule", held_until=UNTIL), DESKTOP, NOW)
    assert texts_of(menu)[:5] == ["Paused until 18:30 (schedule)",
                                  "Hub: hub.example.com (paused)", "Ollama: running, 3 models",
                                  "-", "Share anyway for 1 hour"]
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    action = find(menu, "Share anyway for 1 hour").action
    assert action is not None
    assert resolve(action, now) == ShareAnyway(now + timedelta(hours=1))
    manual = render_menu(snap(paused=True, held_by="schedule"), DESKTOP, NOW)
    assert "Resume" in texts_of(manual) and "Share anyway for 1 hour" not in texts_of(manual)


def test_share_anyway_shows_in_the_menu_with_its_end_and_an_undo() -> None:
    """"Share anyway for 1 hour" left no trace in the menu: no end shown, no way back."""
    overridden = snap(rules_overridden_until=UNTIL)
    menu = render_menu(overridden, DESKTOP, NOW)
    assert texts_of(menu)[4:6] == ["Sharing despite the rules until 18:30",
                                   "Let the rules hold again"]
    assert not menu[4].enabled
    assert find(menu, "Let the rules hold again").action == ShareAnyway(None)
    assert "Share anyway for 1 hour" not in texts_of(menu)
    assert "Let the rules hold again" not in texts_of(render_menu(snap(), DESKTOP, NOW))


def test_where_the_app_installs_updates_the_menu_installs_it_and_says_how_it_goes() -> None:
    from ghubai_tray.core.state import InstallUpdate, UpdateView

    newer = replace(snap(), update=UpdateView("1.3.0", "https://example.com/", True))
    menu = render_menu(newer, DESKTOP, NOW)
    assert texts_of(menu)[3:6] == ["-", "Install update 1.3.0", "Pause"]
    assert find(menu, "Install update 1.3.0").action == InstallUpdate()
    for phase in ("Downloading 1.3.0…", "Updating to 1.3.0…"):
        menu = render_menu(replace(newer, updating=phase), DESKTOP, NOW)
        assert texts_of(menu)[4] == phase and not menu[4].enabled
        assert "Install update 1.3.0" not in texts_of(menu), "asked once, not twice"


def test_another_server_is_named_in_the_menu_with_what_it_cannot_do() -> None:
    from ghubai_tray.core.server_kinds import ServerKind

    llama = texts_of(render_menu(replace(snap(), server_kind=ServerKind.LLAMACPP,
                                         model_server="llama.cpp's llama-server b1"),
                                 DESKTOP, NOW))
    line = llama.index("llama.cpp's llama-server: running, 3 models")
    assert llama[line + 1] == "Freeing memory on pause is not available with it"
    studio = texts_of(render_menu(replace(snap(), server_kind=ServerKind.LMSTUDIO),
                                  DESKTOP, NOW))
    line = studio.index("LM Studio: running, 3 models")
    assert studio[line + 1] == "Owner first is not available with it"
    ollama = texts_of(render_menu(snap(), DESKTOP, NOW))
    line = ollama.index("Ollama: running, 3 models")
    assert ollama[line + 1] == "-"  # nothing to say: every rule works with Ollama

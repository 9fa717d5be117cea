"""Every word the tray shows a person, in one place (menus, tooltips, notifications).

No enum's value is shown as text: each state has its words here (:data:`STATE_WORDS`,
:data:`OLLAMA_WORDS`), and every count goes through :func:`counted`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ghubai_tray.core.state import OllamaStatus, State

APP = "GhubAi Tray"

# Status, as the tooltip and the first menu line say it.
NOT_SET_UP = "Not set up yet: choose Set up… to connect to a hub"
TOKEN_REFUSED = "The hub refused the token: choose Settings… to replace it"
TOKEN_NEEDED = "The hub needs a provider token, and none was sent: choose Settings…"
TOKEN_UNREADABLE = ("The OS keyring did not give the token (is it locked?): unlock it, then "
                    "choose Retry now")
OLLAMA_NOT_RUNNING = "Ollama is not running"
OLLAMA_ODD = "Something other than Ollama answers at the Ollama address"
NOTHING_SHARED = "Connected, but no model is shared: choose some under Models"
CERTS_NOT_CHECKED = "Connected without checking the hub's certificate"
# The same for ``status`` of a headless worker, which has no menu to point to.
HEADLESS_STATUS = {
    NOT_SET_UP: "Not set up yet: set HUB_URL (or hub_url in config.toml) and store the token "
                "with 'ghubai-tray token set'",
    TOKEN_REFUSED: "The hub refused the token: replace it with 'ghubai-tray token set' (or "
                   "in PROVIDER_TOKEN, if it comes from there)",
    TOKEN_NEEDED: "The hub needs a provider token, and none was sent: store the one its "
                  "operator gave you with 'ghubai-tray token set'",
    TOKEN_UNREADABLE: "The OS keyring did not give the token (is it locked?): unlock it, or "
                      "run 'ghubai-tray token status' to see why",
    NOTHING_SHARED: "Connected, but no model is shared: see shared_models and "
                    "share_new_models in config.toml",
}
PAUSED = "Paused"
FINISHING = "Finishing {requests}, then pausing"
HELD_UNTIL = "Paused until {until} ({rule})"
HELD = "Paused ({rule})"
# A rule that holds sharing, by the rule's name (Snapshot.held_by): what the owner reads.
HELD_BY = {
    "schedule": HELD,
    "your use of Ollama": "Paused: you are using {server}",
    "full-screen app": "Paused: a full-screen app is running",
    "GPU in use": "Paused: another program is using the GPU",
    "you are here": "Paused: you are using this computer",
    "battery": "Paused: on battery",
    "GPU temperature": "Paused: the GPU is too hot",
    "GPU power": "Paused: the GPU draws more power than you allow",
    "energy budget": "Paused: today's energy budget is used, until midnight",
    "GPU-time budget": "Paused: today's GPU-time budget is used, until midnight",
}
# The same, with the reading that holds (Snapshot.held_detail), where there is one.
HELD_BY_DETAIL = {
    "GPU temperature": "Paused: {detail}",
    "GPU power": "Paused: {detail}",
    "energy budget": "Paused: {detail}, until midnight",
    "GPU-time budget": "Paused: {detail}, until midnight",
}
HELD_BY_UNTIL = {
    "schedule": HELD_UNTIL,
    "your use of Ollama": "Paused: you are using {server} (until {until} at least)",
}


# The rules' names in lists (doctor, status), by the rule's name (core.rules.Rule).
RULE_NAMES = {
    "your use of Ollama": "owner first", "full-screen app": "pause when full screen",
    "GPU in use": "pause when the GPU is busy", "you are here": "share only when away",
    "battery": "pause on battery", "schedule": "schedule",
    "GPU temperature": "temperature guard", "GPU power": "power guard",
    "energy budget": "daily energy budget", "GPU-time budget": "daily GPU-time budget",
}


def moment(when: datetime, now: datetime) -> str:
    """A time as a person reads it, with its day whenever that is not today: ``08:00``
    today, ``Sat 08:00`` within the week, ``Sat 12 Dec 08:00`` further off. Words that
    stay true however long they are shown (a tooltip drawn before midnight still reads
    right after it), unlike "tomorrow"."""
    local, today = when.astimezone(now.tzinfo), now.date()
    if local.date() == today:
        return f"{local:%H:%M}"
    if today < local.date() <= today + timedelta(days=6):
        return f"{local:%a %H:%M}"
    return f"{local:%a %d %b %H:%M}"


def held(rule: str, until: str | None, server: str = "Ollama", detail: str | None = None
         ) -> str:
    """The words for sharing held by ``rule`` (until ``until``, a :func:`moment`, when
    known); ``server`` names the model server the owner uses; ``detail``, the reading
    that holds it (a guard's or a budget's)."""
    if detail is not None and rule in HELD_BY_DETAIL:
        return HELD_BY_DETAIL[rule].format(detail=detail)
    if until is not None and rule in HELD_BY_UNTIL:
        return HELD_BY_UNTIL[rule].format(until=until, rule=rule, server=server)
    return HELD_BY.get(rule, HELD).format(rule=rule, server=server)
QUITTING = "Quitting: finishing {requests}…"
QUITTING_NOW = "Quitting…"
PAUSED_UNTIL = "Paused until {until}"
SERVING = "Serving {requests} for {host}"
SHARING = "Sharing {models} with {host}"
RECONNECTING = "Cannot reach {host}; trying again{when}"
CONNECTING = "Connecting to {host}…"
STOPPED = "Stopped"
WAITING_FOR_TRAY = "Not sharing yet: waiting for the tray icon to show"

# The Settings window.
SETTINGS_TITLE = "GhubAi Tray settings"
ACTIVITY_TITLE = "GhubAi Tray: what this computer gave"
NO_LEDGER_YET = ("Nothing is recorded yet: the ledger begins with the first request the hub "
                 "sends to this computer.")
SETTINGS_LABELS = {
    "hub_url": "Hub URL", "ollama_url": "Ollama URL",
    "allow_invalid_certs": "Accept untrusted certificates (development hubs only)",
    "max_concurrent_requests": "Requests at the same time",
    "check_for_updates": "Tell me when a new version is out (asks GitHub about once a day)",
    "schedule": "Share only at these times",
    "max_context": "Largest context (tokens)",
    "max_output_tokens": "Longest answer (tokens)",
    "max_keep_alive": "Keep a model loaded after a request (s)",
    "max_images": "Images per request",
    "max_image_size": "Largest image (bytes, or like 10MiB)",
    "max_messages": "Messages per chat",
    "max_embedding_inputs": "Texts per embedding request",
    "max_tools": "Tools per request",
    "max_stop_strings": "Stop strings per request",
    "max_prompt_size": "Most text per request (like 4MiB)",
    "owner_first": "Pause while I use Ollama myself",
    "owner_first_hold": "After my own use of Ollama, wait (s)",
    "pause_when_fullscreen": "Pause during full-screen apps and games",
    "pause_on_battery": "Pause on battery",
    "share_when_idle_only": "Share only when I am away",
    "idle_minutes": "Away after this long without input (min)",
    "max_gpu_temp": "Hold sharing when the GPU reaches (°C)",
    "resume_gpu_temp": "Share again once it is at or below (°C; 0: 10 °C lower)",
    "max_gpu_power": "Hold sharing when the GPU draws more than (W)",
    "daily_energy_kwh": "Energy budget per day (kWh)",
    "daily_gpu_hours": "GPU-time budget per day (hours)",
    "pause_when_gpu_busy": "Pause while another program uses the GPU (NVIDIA)",
}
SETTINGS_TAB_SHARING = "Hub"
SETTINGS_TAB_WHEN = "When to share"
SETTINGS_TAB_LIMITS = "Limits"
SETTINGS_TAB_HARDWARE = "Hardware"
SETTINGS_HARDWARE_NOTE = (
    "Keep your GPU cool, quiet and within a budget: sharing is held while the GPU is "
    "too hot or draws too much (it resumes by itself once it has cooled down for a "
    "minute), and for the rest of the day once a budget is used. 0 turns one off.")
SETTINGS_TOKEN = "Provider token"
SETTINGS_REMOVE_TOKEN = "Remove the stored token"
SETTINGS_LIMITS_NOTE = ("Limits on each request from the hub (the README says why, under "
                        "\"What the hub can do on your machine\"):")
SETTINGS_INSECURE_WARNING = ("Anyone between you and the hub could read and change the traffic. "
                             "Use this only for a development hub.")
SETTINGS_HUB_EXAMPLE = ("Like https://hub.example.com/gridhub: the address your hub's operator "
                        "gives you (a bare host name gets https:// and /gridhub added).")
SETTINGS_COMPLETED = "Completed to {url}"
SETTINGS_SCHEDULE_EXAMPLE = ("Like Mon-Fri 18:00-23:30, Sat,Sun 09:00-23:00 (your local time); "
                             "empty: always")
SETTINGS_LOCKED = ("Set by {where}, which wins over this window: change it where GhubAi Tray "
                   "is started")
SETTINGS_KEYRING_NOTE = ("Checking the OS keyring, where the token is kept… (your desktop may "
                         "ask for the keyring's password now: that is this check)")
SETTINGS_KEYRING_LATER = ("Kept in your OS keyring once you save: your desktop may ask for "
                          "the keyring's password then")
SETTINGS_TOKEN_STORED = "A token is stored (type a new one to replace it)"
SETTINGS_NO_TOKEN = "No token is stored for this hub"
SETTINGS_TOKEN_FROM_VARIABLE = ("The token in use comes from the PROVIDER_TOKEN variable, which "
                                "wins over the keyring; a token stored here is used once that "
                                "variable is unset")
SETTINGS_NO_KEYRING = "The OS keyring cannot be used: {why}"
SETTINGS_KEYRING_LOCKED = ("The OS keyring is locked, so whether a token is stored cannot be "
                           "read yet: unlock it (your desktop asks for its password) and this "
                           "line follows. A token typed here is stored on Save.")
SETTINGS_TEST = "Test connection"
SETTINGS_CANCEL = "Cancel"
SETTINGS_SAVE = "Save"
SETTINGS_SAVE_ANYWAY = "Save anyway"
SETTINGS_SAVED = "Saved. GhubAi Tray uses the new settings now."
SETTINGS_FIX_FIRST = "Nothing was saved: fix the fields marked in red."
SETTINGS_FIX_TO_TEST = "Fix the fields marked in red first."
SETTINGS_SAVING = "Saving…"
SETTINGS_TESTING = "Testing…"
SETTINGS_NOT_SAVED = "Not saved: {why}"
SETTINGS_FAILED_TEST = ("The test found a problem (above). Fix it and test again, or choose Save "
                        "anyway to keep these settings as they are.")

# When no tray shows the icon (a window of its own says so: nothing else can).
NO_TRAY_TITLE = "GhubAi Tray: no tray icon"
NO_TRAY_TEXT = ("GhubAi Tray is running, but this desktop shows no tray icon, so you could "
                "not see, pause or quit it. It shares nothing until you choose.")
NO_TRAY_HELP = ("On GNOME, install the AppIndicator extension (Debian: "
                "gnome-shell-extension-appindicator) and log in again. To lend your GPU "
                "without a tray on purpose, run 'ghubai-tray --headless'; 'ghubai-tray status' "
                "and 'ghubai-tray quit' steer it from a terminal.")
NO_TRAY_SHARE = "Share anyway"
NO_TRAY_QUIT = "Quit GhubAi Tray"
NOTIFY_NO_TRAY = ("GhubAi Tray is running but this desktop shows no tray icon; it shares "
                  "nothing until you choose in its window.")

# Menu.
SET_UP = "Set up…"
# The headline, when something needs the owner: the problem and what to do, one click.
FIX_SET_UP = "Not set up yet: Set up…"
FIX_TOKEN = "Token refused: Replace token…"
FIX_TOKEN_NEEDED = "Token needed: Settings…"
FIX_TOKEN_UNREADABLE = "Keyring locked? Retry now"
FIX_OLLAMA = "Ollama not running: Retry now"
FIX_OLLAMA_ODD = "Not Ollama at the Ollama address: Settings…"
FIX_HUB = "Cannot reach {host}: Retry now"
PAUSE_ACTIVE = "Now: paused until {until}"
SHARE_ANYWAY = "Share anyway for 1 hour"
SHARING_ANYWAY = "Sharing despite the rules until {until}"
STOP_SHARING_ANYWAY = "Let the rules hold again"
PAUSE_ACTIVE_OPEN = "Now: paused until you resume"
HUB_LINE = "Hub: {host} ({state})"
OLLAMA_LINE = "{server}: {state}"
OLLAMA_RUNNING = "running, {models}"
OLLAMA_AWAY = "not running at {url}"

# The words for each state, where a menu line names it.
STATE_WORDS = {
    State.NOT_CONFIGURED: "not set up",
    State.CONNECTING: "connecting",
    State.CONNECTED: "connected",
    State.REGISTERED: "registered",
    State.RECONNECTING: "reconnecting",
    State.AUTH_REJECTED: "token refused",
    State.TOKEN_NEEDED: "token needed",
    State.TOKEN_UNREADABLE: "keyring locked?",
    State.PAUSED: "paused",
    State.STOPPED: "stopped",
}
OLLAMA_WORDS = {
    OllamaStatus.UNKNOWN: "not checked yet",
    OllamaStatus.REACHABLE: "running",
    OllamaStatus.UNREACHABLE: "not running",
    OllamaStatus.BAD_ANSWER: "answering something unexpected",
}
MODELS = "Models"
NO_MODELS = "Ollama has no models"
CLOUD = " (cloud)"
SHARE_NEW = "Share new models automatically"
ACTIVITY = "Activity"
OPEN_ACTIVITY = "Charts and export…"
ENERGY_BUDGET_USED = "Energy budget: {used} of {budget} kWh used today"
ENERGY_BUDGET_UNMEASURED = "Energy budget: {budget} kWh (nothing measured yet today)"
GPU_TIME_BUDGET_USED = "GPU-time budget: {used} of {budget} h used today"
SERVING_NOW = "Serving now: {n}"
TODAY = "Today: {requests} requests, {tokens} tokens"
SINCE_INSTALL = "Since install: {requests} requests, {tokens} tokens"
FAILED_TODAY = "Failed or refused today: {n}"
NOTICE = "Attention: {text}"
LIMITED_TODAY = "Kept within your limits today: {n}"
PAUSE = "Pause"
PAUSE_NOW = "Pause now (stop current requests)"
PAUSE_AFTER = "Finish current requests, then pause"
PAUSE_30 = "Pause for 30 minutes"
PAUSE_60 = "Pause for 1 hour"
PAUSE_MORNING = "Pause until the morning (08:00)"
FREE_GPU = "Free GPU memory when paused"
RESUME = "Resume"
SETTINGS = "Settings…"
START_AT_LOGIN = "Start at login"
OPEN_LOGS = "Open log folder"
COPY_DIAGNOSTICS = "Copy diagnostics"
ABOUT = "About GhubAi Tray {version}"
RELEASE_NOTES = "https://github.com/ghubai/ghubai-tray/releases/tag/v{version}"
ABOUT_TEXT = ("GhubAi Tray {version}: lends your GPU to a GhubAi hub, for the models you "
              "choose. What changed: " + RELEASE_NOTES)
QUIT = "Quit"

# Notifications (one per episode).
NOTIFY_TOKEN = "The hub refused the token. Choose Settings… in the GhubAi menu to replace it."
NOTIFY_TOKEN_NEEDED = ("The hub needs a provider token, and none was sent. Choose Settings… in "
                       "the GhubAi menu to enter the one its operator gave you.")
NOTIFY_UPDATE = ("GhubAi Tray {version} is out. Update available in the GhubAi menu shows "
                 "what changed and where to get it.")
NOTIFY_UPDATE_DEB = ("GhubAi Tray {version} is out. Update available in the GhubAi menu opens "
                     "its page: download ghubai-tray_amd64.deb there, then run "
                     "'sudo apt install ./ghubai-tray_amd64.deb' where you saved it.")
UPDATE_AVAILABLE = "Update available: {version}"
INSTALL_UPDATE = "Install update {version}"
NOTIFY_UPDATE_INSTALL = ("GhubAi Tray {version} is out. Choose Install update in the GhubAi menu: "
                         "it finishes the requests in progress, installs it and starts again.")
NOTIFY_TOKEN_UNREADABLE = ("The OS keyring did not give GhubAi its token, so nothing is shared. "
                           "Unlock the keyring, then choose Retry now in the GhubAi menu.")
NOTIFY_OLLAMA = "Ollama has not been reachable for a minute, so nothing is shared. Is it running?"
NOTIFY_HUB = "The hub has been unreachable for five minutes. GhubAi keeps trying."
NOTIFY_BACK = "Back to sharing your GPU with {host}."
NOTIFY_NOW = "Now sharing {models} with {host}. Pause or Quit is in the GhubAi menu."

# Desktop integration.
NO_MENU = ("The tray menu needs PyGObject and the Gtk 3 / Ayatana AppIndicator libraries. "
           "On Debian/Ubuntu: sudo apt install gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1 "
           "python3-gi")
NO_DISPLAY = ("There is no graphical display here, so the tray icon cannot start. "
              "Run 'ghubai-tray --headless' instead.")
NOT_RUNNING = "GhubAi Tray is not running for this user (no tray, no --headless worker)."
NOT_ANSWERING = ("GhubAi Tray is running but did not answer ({why}). Try again; if it keeps "
                 "happening, quit it from its menu (or end its process) and start it again; "
                 "its log in {logs} may say why.")
ALREADY_RUNNING = "GhubAi Tray is already running: look for its icon in the system tray."
SHOWN_AGAIN = ("GhubAi Tray was already running: here it is. Its icon stays in the system "
               "tray (it may be among the hidden icons).")
BROUGHT_FORWARD = ("GhubAi Tray is already running in the system tray{pid}: its Settings "
                   "window was opened instead of starting a second one.")
ALREADY_HEADLESS = ("GhubAi Tray is already running without a tray (--headless{pid}), so this "
                    "one does not start: one worker per user. Stop that one first (Ctrl-C in "
                    "its terminal, or 'systemctl --user stop ghubai-tray' for the service).")
ALREADY_TRAY = ("GhubAi Tray is already running in the system tray{pid}, so this one does not "
                "start: one worker per user. Choose Quit in its menu first.")


def already_running(mode: str | None, pid: int | None) -> str:
    """What a second start says, naming the worker that runs when it is known."""
    shown = f", process {pid}" if pid else ""
    if mode == "headless":
        return ALREADY_HEADLESS.format(pid=shown)
    if mode == "tray":
        return ALREADY_TRAY.format(pid=shown)
    return ALREADY_RUNNING


def counted(n: int, noun: str) -> str:
    """``1 model``, ``2 models``, ``0 models``: the one plural rule (our nouns are regular)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

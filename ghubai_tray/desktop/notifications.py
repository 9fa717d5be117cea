"""When to tell the owner something, as a pure policy: one notification per episode.

An episode starts when a condition begins and lasts until it clears; the
policy speaks once when an episode has lasted long enough to matter (a token
refused: at once; Ollama away: a minute; the hub away: five minutes) and once
more, "back to sharing", when the worker is contributing again after such an
outage. The first time it shares at all it says "now sharing" instead (there
is nothing to be back to), and a tray not set up yet has no outages at all: its
icon and menu already say "set up", and the owner is typing the very addresses
(an "Ollama not reachable" notice arrived mid-typing). Never a storm: flapping inside the
thresholds says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ghubai_tray.core import texts
from ghubai_tray.core.state import OllamaStatus, Snapshot, State
from ghubai_tray.desktop.icon import hub_host

OLLAMA_AFTER = 60.0
HUB_AFTER = 300.0


@dataclass(frozen=True)
class Episodes:
    """When each current problem began (monotonic seconds), and which were announced."""

    since: dict[str, float] = field(default_factory=dict)
    announced: frozenset[str] = frozenset()
    shared: bool = False  # it has shared at least once in this run
    updates_told: frozenset[str] = frozenset()  # the versions "is out" was said of


def _problems(snap: Snapshot) -> set[str]:
    if snap.state is State.NOT_CONFIGURED:
        # A first run: the owner is filling in Settings (the Ollama address among them);
        # an outage notice then would interrupt them about what they are setting up.
        return set()
    found = set()
    if snap.state is State.AUTH_REJECTED:
        found.add("token")
    if snap.state is State.TOKEN_NEEDED:
        found.add("no token")
    if snap.state is State.TOKEN_UNREADABLE:
        found.add("keyring")
    if snap.state is not State.PAUSED and snap.ollama in (OllamaStatus.UNREACHABLE,
                                                          OllamaStatus.BAD_ANSWER):
        found.add("ollama")
    if snap.state in (State.RECONNECTING, State.CONNECTING):
        found.add("hub")
    return found


_AFTER = {"token": 0.0, "no token": 0.0, "keyring": 0.0, "ollama": OLLAMA_AFTER,
          "hub": HUB_AFTER}
_TEXT = {"token": texts.NOTIFY_TOKEN, "no token": texts.NOTIFY_TOKEN_NEEDED,
         "keyring": texts.NOTIFY_TOKEN_UNREADABLE,
         "ollama": texts.NOTIFY_OLLAMA, "hub": texts.NOTIFY_HUB}


def update(episodes: Episodes, snap: Snapshot, now: float, *,
           deb: bool = False) -> tuple[Episodes, list[str]]:
    """The new episodes and the notifications to show now (usually none); ``deb``: this
    copy came from the Debian package, so a new version is installed with apt."""
    current = _problems(snap)
    since = {p: episodes.since.get(p, now) for p in current}
    messages = [_TEXT[p] for p in sorted(current)
                if p not in episodes.announced and now - since[p] >= _AFTER[p]]
    announced = (episodes.announced & current) | {p for p in current
                                                  if now - since[p] >= _AFTER[p]}
    recovered = episodes.announced - current
    contributing = snap.state is State.REGISTERED and bool(snap.shared_models) and not current
    if contributing and not episodes.shared:
        shared = texts.counted(len(snap.shared_models), "model")
        messages.append(texts.NOTIFY_NOW.format(models=shared, host=hub_host(snap)))
    elif recovered and contributing:
        messages.append(texts.NOTIFY_BACK.format(host=hub_host(snap)))
    elif recovered:
        announced |= recovered  # not back yet: remember, so "back" is said when it is
    told = episodes.updates_told
    if snap.update is not None and snap.update.version not in told:
        said = texts.NOTIFY_UPDATE_INSTALL if snap.update.installable else \
            texts.NOTIFY_UPDATE_DEB if deb else texts.NOTIFY_UPDATE
        messages.append(said.format(version=snap.update.version))
        told |= {snap.update.version}
    return replace(episodes, since=since, announced=frozenset(announced),
                   shared=episodes.shared or contributing, updates_told=told), messages

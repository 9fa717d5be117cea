"""What ``ghubai-tray status|pause|resume|quit|share-anyway`` (and ``token set``) ask the
running worker.

Pure: a request (a small JSON object from the control channel,
:mod:`ghubai_tray.adapters.control`) and the latest snapshot in, a
:class:`Decision` out: the command to submit, whether to quit, and the reply.
Anything the channel delivers is checked here as strictly as a hub message:
only the owner can reach the channel, but a bad request must still get a clear
answer and change nothing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import Any

from ghubai_tray.core import texts
from ghubai_tray.core.rules import Rule, enabled
from ghubai_tray.core.server_kinds import SHORT
from ghubai_tray.core.settings import shown_url
from ghubai_tray.core.state import (
    Command,
    InstallUpdate,
    Pause,
    PauseMode,
    Resume,
    ShareAnyway,
    Snapshot,
    TokenChanged,
)

ACTIONS = ("status", "pause", "resume", "quit", "token", "share-anyway", "show",
           "install-update")
SHARE_ANYWAY_FOR = timedelta(hours=1)  # what the menu's item gives, and the CLI's default
_DURATION = re.compile(r"^(?:(\d{1,12})h)?(?:(\d{1,12})m)?(?:(\d{1,12})s)?$", re.ASCII)
MAX_PAUSE = timedelta(days=366)


@dataclass(frozen=True)
class Decision:
    reply: dict[str, Any]
    command: Command | None = None
    quit: bool = False
    show: bool = False  # a second launch: the running tray comes forward


def parse_duration(text: str) -> timedelta:
    """``90`` (minutes), ``30m``, ``1h``, ``1h30m``, ``45s``; ValueError saying the form."""
    raw = text.strip().lower().replace(" ", "")
    expected = "a duration like 30m, 1h, 1h30m or 90 (minutes)"
    if raw.isascii() and raw.isdigit():
        value = timedelta(minutes=int(raw)) if len(raw) <= 9 else MAX_PAUSE * 2
    else:
        match = _DURATION.match(raw)
        if not raw or match is None:
            raise ValueError(f"expected {expected}, not {text!r}")
        hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        try:
            value = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        except OverflowError:  # past timedelta's ~2.7 million years: past a year anyway
            value = MAX_PAUSE * 2
    if not timedelta(0) < value <= MAX_PAUSE:
        raise ValueError(f"expected {expected}, more than 0 and at most a year")
    return value


def parse_until(text: str, now: datetime) -> datetime:
    """``18:30`` (the next one: today, or tomorrow if past) or an ISO date and time."""
    raw = text.strip()
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}", raw):
            clock = time.fromisoformat(raw.zfill(5))
            when = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
            return when if when > now else when + timedelta(days=1)
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"expected a time like 18:30 or 2026-12-24T18:30, not {text!r}") from None
    when = when if when.tzinfo else when.replace(tzinfo=now.tzinfo)
    if when <= now:
        raise ValueError(f"{text!r} has already passed")
    return when


def status_of(snap: Snapshot, headline: str) -> dict[str, Any]:
    """The worker's state in plain data: what ``status`` prints, and scripts read as JSON."""
    return {
        "headline": headline,
        "state": texts.STATE_WORDS[snap.state],
        "reason": snap.reason,
        "hub": shown_url(snap.hub_url),
        "ollama": texts.OLLAMA_WORDS[snap.ollama],
        "ollama_reason": snap.ollama_reason,
        "model_server": snap.model_server,
        "server_kind": snap.server_kind.value,
        "shared_models": list(snap.shared_models),
        "registered_models": snap.registered_models,
        "active": snap.active,
        "queued": snap.queued,
        "paused": snap.paused,
        "paused_until": snap.paused_until.isoformat() if snap.paused_until else None,
        "stopping": snap.stopping,
        "waiting_for_tray": snap.waiting_for_tray,
        "held_by": snap.held_by,
        "held_until": snap.held_until.isoformat() if snap.held_until else None,
        "held_detail": snap.held_detail,
        "gpu": _gpu_status(snap),
        "today_use": {"energy_kwh": snap.today_use.kwh, "gpu_hours": round(
            snap.today_use.gpu_hours, 3), "day": snap.today_use.day} if snap.today_use.day
        else None,
        "rules_overridden_until": (snap.rules_overridden_until.isoformat()
                                   if snap.rules_overridden_until else None),
        "rules_on": [name for rule, name in texts.RULE_NAMES.items()
                     if Rule(rule) in enabled(snap.settings)],
        "update": snap.update.version if snap.update else None,
        "updating": snap.updating,
        "notice": snap.notice,
    }


def _gpu_status(snap: Snapshot) -> dict[str, Any] | None:
    """The GPUs as the guards last read them: each reading, and where it comes from."""
    if snap.gpus is None:
        return None
    return {"source": snap.gpus.source, "temperature_c": snap.gpus.hottest_c,
            "power_w": snap.gpus.power_w, "words": snap.gpus.words(),
            "gpus": [asdict(g) for g in snap.gpus.gpus]}


def decide(request: Any, snap: Snapshot, now: datetime, headline: str) -> Decision:
    """The answer to one control request; never raises."""
    if not isinstance(request, dict) or request.get("action") not in ACTIONS:
        return Decision({"ok": False, "error": "unknown request: expected one of "
                         + ", ".join(ACTIONS)})
    action = request["action"]
    if action == "status":
        return Decision({"ok": True, "status": status_of(snap, headline)})
    if action == "resume":
        return _resume(request, snap, now)
    if action == "share-anyway":
        try:
            until = now + (parse_duration(request["for"]) if isinstance(request.get("for"), str)
                           else SHARE_ANYWAY_FOR)
        except ValueError as exc:
            return Decision({"ok": False, "error": str(exc)})
        said = (f"Sharing despite the rules until {texts.moment(until, now)}; "
                "'ghubai-tray resume --rules' lets them hold again sooner.")
        if snap.paused:
            said += " You paused sharing yourself: 'ghubai-tray resume' ends that."
        return Decision({"ok": True, "said": said}, ShareAnyway(until))
    if action == "token":  # `ghubai-tray token set|clear` changed what is stored
        return Decision({"ok": True, "said": "The running GhubAi Tray reads the token again; "
                         "requests in progress finish on the old connection."}, TokenChanged())
    if action == "show":
        return Decision({"ok": True, "said": "shown"}, show=True)
    if action == "install-update":  # `ghubai-tray update install`, as the menu's item
        return Decision({"ok": True, "said": "The running GhubAi Tray installs the update."},
                        InstallUpdate())
    if action == "quit":
        return Decision({"ok": True, "said": "Quitting: requests in progress get a few seconds "
                         "to finish."}, quit=True)
    return _pause(request, now)


def _resume(request: dict[str, Any], snap: Snapshot, now: datetime) -> Decision:
    """End the owner's pause; with ``rules``, end "Share anyway" too. Never a bare "not
    paused" while a rule holds sharing: which one, and how to set it aside."""
    if request.get("rules") is True:  # only "Share anyway" ends: a pause is the owner's
        yours = " You paused sharing yourself: 'ghubai-tray resume' ends that." \
            if snap.paused else ""
        if snap.rules_overridden_until is None:
            return Decision({"ok": True, "said": "The rules already hold: nothing was set "
                             "aside." + yours})
        return Decision({"ok": True, "said": "The rules hold again." + yours},
                        ShareAnyway(None))
    if snap.paused:
        return Decision({"ok": True, "said": "Resumed: sharing again."}, Resume())
    if snap.held_by:
        until = f" until {texts.moment(snap.held_until, now)}" if snap.held_until else ""
        name = texts.RULE_NAMES.get(snap.held_by, snap.held_by)
        words = texts.held(snap.held_by, None, SHORT[snap.server_kind], snap.held_detail)
        return Decision({"ok": True, "said": (
            f"Not paused by you: the rule '{name}' holds sharing{until} ({words}). "
            "To share anyway: 'ghubai-tray share-anyway --for 1h'.")})
    return Decision({"ok": True, "said": "Not paused: nothing to resume."})


def _pause(request: dict[str, Any], now: datetime) -> Decision:
    until: datetime | None = None
    try:
        if isinstance(request.get("for"), str):
            until = now + parse_duration(request["for"])
        elif isinstance(request.get("until"), str):
            until = parse_until(request["until"], now)
        elif request.get("for") is not None or request.get("until") is not None:
            raise ValueError("for and until are text")
    except ValueError as exc:
        return Decision({"ok": False, "error": str(exc)})
    finish = request.get("finish") is True
    mode = PauseMode.AFTER_CURRENT if finish else PauseMode.NOW
    when = f" until {texts.moment(until, now)}" if until else ""
    said = (f"Paused{when}; requests in progress finish first." if finish
            else f"Paused{when}; requests in progress were stopped.")
    return Decision({"ok": True, "said": said}, Pause(mode, until))

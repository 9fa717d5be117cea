"""``ghubai-tray status|pause|resume|quit`` against a real headless worker, as processes.

The same channel serves the tray (tests/desktop/test_tray_desktop.py quits it this way);
here every command runs as the owner would type it, and the hub is the judge of what
the worker then shares.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.core import texts
from ghubai_tray.core.control import decide, parse_duration, parse_until
from ghubai_tray.core.state import Pause, PauseMode, Resume, ShareAnyway, Snapshot, TokenChanged
from tests.processes import cli, headless_worker
from tests.snapshots import snapshot
from tests.testbed.hub import AuthMode, GridHub
from tests.worker_bed import TOKEN

MODELS = ("llama3.2:1b", "mistral:7b")


async def test_status_pause_resume_and_quit_steer_the_running_worker(
        tmp_path: Path, env: dict[str, str]) -> None:
    async with headless_worker(tmp_path) as worker:
        hub = worker.hub
        code, out, err = await cli("status", env=env)
        assert code == 0, err
        assert "GhubAi Tray is running without a tray (--headless), process" in out
        assert "Shared:   llama3.2:1b, mistral:7b" in out and "Paused:   no" in out
        assert "Rules on: owner first, pause when full screen, pause on battery" in out

        code, out, _ = await cli("pause", "--for", "30m", env=env)
        assert code == 0 and out.startswith("Paused until ")
        await hub.wait_until(lambda: all(n.models == () for n in hub.nodes.values()), 30,
                             "the paused worker to register no model")
        code, out, _ = await cli("status", "--json", env=env)
        status = json.loads(out)
        assert code == 0 and status["paused"] is True and status["paused_until"]
        assert status["mode"] == "headless" and status["state"] == "paused"

        code, out, _ = await cli("resume", env=env)
        assert code == 0 and out.strip() == "Resumed: sharing again."
        await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()), 30,
                             "the resumed worker to share again")

        code, out, _ = await cli("pause", "--for", "soon", env=env)
        assert code == 2 and out == ""

        code, out, _ = await cli("quit", env=env)
        assert code == 0 and out.startswith("Quitting")
        assert await asyncio.wait_for(worker.process.wait(), 30) == 0
        assert "quit requested (ghubai-tray quit)" in worker.stderr

    code, _, err = await cli("status", env=env)
    assert code == 1 and "not running" in err


async def test_a_headless_workers_status_points_to_the_command_line_not_to_a_menu(
        tmp_path: Path, env: dict[str, str]) -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    async with headless_worker(tmp_path, hub=hub, registers=False, PROVIDER_TOKEN="wrong"):
        status: dict[str, Any] = {}
        for _ in range(60):  # the state follows the hub's answer within moments
            code, out, err = await cli("status", "--json", env=env)
            assert code == 0, err
            status = json.loads(out)
            if status["state"] == "token refused":
                break
            await asyncio.sleep(0.5)
        assert status["state"] == "token refused", status
        assert status["headline"] == texts.HEADLESS_STATUS[texts.TOKEN_REFUSED]
        code, out, _ = await cli("status", env=env)
        assert "ghubai-tray token set" in out and "Settings" not in out and "menu" not in out


async def test_without_a_running_worker_every_command_says_so(env: dict[str, str]) -> None:
    for command in (["status"], ["pause"], ["resume"], ["quit"]):
        code, out, err = await cli(*command, env=env)
        assert (code, out) == (1, "")
        assert "GhubAi Tray is not running for this user" in err


def _control_socket(env: dict[str, str]) -> str:
    return str(Path(env["XDG_RUNTIME_DIR"]) / "ghubai-tray" / "ghubai-tray.sock")


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


@pytest.mark.skipif(sys.platform == "win32", reason="the Unix socket's side (Windows: a pipe)")
async def test_silent_and_garbled_control_connections_jam_nothing(
        tmp_path: Path, env: dict[str, str]) -> None:
    """One silent connection used to hold every later command for ever, and one answering
    the key challenge with 300 bytes closed the channel until a restart."""
    async with headless_worker(tmp_path):
        where = _control_socket(env)
        silent = [_connect(where) for _ in range(3)]
        garbled = _connect(where)
        garbled.recv(1024)  # the challenge
        garbled.sendall(struct.pack("!i", 300) + b"x" * 300)
        code, out, err = await cli("status", env=env)
        assert code == 0 and "GhubAi Tray is running" in out, err
        # a flood past what is served at once: refused while it lasts, never for good
        flood = [_connect(where) for _ in range(30)]
        for _ in range(60):
            code, out, err = await cli("status", env=env)
            if code == 0:
                break
            assert "did not answer" in err, err  # running, and said so: not "not running"
        assert code == 0, err
        for sock in [*silent, garbled, *flood]:
            sock.close()
        code, _, _ = await cli("pause", "--for", "99999999999h", env=env)
        assert code == 2
        code, out, err = await cli("quit", env=env)
        assert code == 0, err


@pytest.mark.skipif(sys.platform == "win32", reason="the Unix socket's side (Windows: a pipe)")
async def test_a_worker_that_never_answers_is_said_within_seconds(
        tmp_path: Path, env: dict[str, str]) -> None:
    """Something listens where the worker would, and never answers: the command gives up."""
    (tmp_path / "ghubai-tray").mkdir(mode=0o700)
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(_control_socket(env))
    listening.listen(4)  # connections wait in the backlog, unanswered
    key = Path(env["HOME"]) / ".local" / "share" / "GhubAi" / "control.key"
    key.parent.mkdir(parents=True)
    key.write_text("00" * 32)
    try:
        code, out, err = await cli("status", env=env, timeout=60)
    finally:
        listening.close()
    assert (code, out) == (1, "")
    assert "GhubAi Tray is running but did not answer (no answer within 10 s)" in err


def test_the_requests_decide_commands_and_refuse_what_they_cannot_read() -> None:
    now = _at("2026-12-02T10:00+00:00")
    snap = snapshot(paused=False)
    pause = decide({"action": "pause", "for": "1h30m", "finish": True}, snap, now, "x")
    assert pause.command == Pause(PauseMode.AFTER_CURRENT, _at("2026-12-02T11:30+00:00"))
    assert decide({"action": "pause"}, snap, now, "x").command == Pause(PauseMode.NOW, None)
    assert decide({"action": "resume"}, snapshot(paused=True), now, "x").command == Resume()
    assert decide({"action": "resume"}, snap, now, "x").command is None
    assert decide({"action": "quit"}, snap, now, "x").quit
    bad: object
    for bad in (None, [], {"action": "rm -rf"}, {"action": "pause", "for": 5},
                {"action": "pause", "until": "yesterday"}, {"action": "pause", "for": "0m"}):
        decision = decide(bad, snap, now, "x")
        assert decision.reply["ok"] is False and decision.command is None and not decision.quit
    status = decide({"action": "status"}, Snapshot(), now, "Connecting").reply["status"]
    assert status["headline"] == "Connecting" and status["state"] == "connecting"


def test_status_shows_the_hub_without_the_values_of_its_query() -> None:
    now = _at("2026-12-02T10:00+00:00")
    snap = snapshot(hub_url="https://hub.example/gridhub?access_token=s3cret&region=eu")
    status = decide({"action": "status"}, snap, now, "x").reply["status"]
    assert status["hub"] == "https://hub.example/gridhub?access_token=[redacted]&region=[redacted]"
    assert "s3cret" not in json.dumps(status)


def test_durations_and_times_read_as_people_write_them() -> None:
    now = _at("2026-12-01T20:00+00:00")
    assert parse_duration("90").total_seconds() == 90 * 60
    assert parse_duration("1h30m").total_seconds() == 90 * 60
    assert parse_duration("45s").total_seconds() == 45
    for too_long in ("99999999999h", "9" * 400, "99999999999999999999m"):
        with pytest.raises(ValueError, match="at most a year|expected a duration"):
            parse_duration(too_long)
    assert parse_until("18:30", now) == _at("2026-12-02T18:30+00:00")  # past today: tomorrow
    assert parse_until("21:15", now) == _at("2026-12-01T21:15+00:00")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_rule_is_seen_set_aside_and_restored_from_the_command_line(
        tmp_path: Path, env: dict[str, str]) -> None:
    """`resume` said "Not paused" while the tray said "Paused (schedule)"; "Share anyway"
    had no command-line form and no undo."""
    later = datetime.now() + timedelta(hours=2)  # a window that does not include now
    window = f"{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"
    async with headless_worker(tmp_path, registers=False, GHUBAI_SCHEDULE=window) as worker:
        hub = worker.hub

        def registered(models: tuple[str, ...]) -> bool:
            return any(n.models == models for n in hub.nodes.values()
                       if n.connection_id in hub.connections)

        await hub.wait_until(lambda: registered(()), 30, "the schedule to hold sharing")
        code, out, _ = await cli("resume", env=env)
        assert code == 0 and out.startswith("Not paused by you: the rule 'schedule' holds "
                                            "sharing until "), out
        assert "ghubai-tray share-anyway --for 1h" in out
        code, out, _ = await cli("share-anyway", "--for", "30m", env=env)
        assert code == 0 and out.startswith("Sharing despite the rules until "), out
        await hub.wait_until(lambda: registered(MODELS), 30, "sharing despite the schedule")
        code, out, _ = await cli("status", env=env)
        assert "Rules:    set aside until " in out and "resume --rules" in out
        code, out, _ = await cli("resume", "--rules", env=env)
        assert code == 0 and out.strip() == "The rules hold again."
        await hub.wait_until(lambda: registered(()), 30, "the schedule to hold again")
        code, out, _ = await cli("share-anyway", "--for", "soon", env=env)
        assert code == 2 and out == ""


def test_share_anyway_and_resume_decide_what_the_owner_asked() -> None:
    now = _at("2026-12-02T10:00+00:00")
    held = snapshot(held_by="schedule", held_until=_at("2026-12-02T18:00+00:00"))
    assert decide({"action": "share-anyway"}, held, now, "x").command == \
        ShareAnyway(_at("2026-12-02T11:00+00:00"))
    assert decide({"action": "share-anyway", "for": "2h"}, held, now, "x").command == \
        ShareAnyway(_at("2026-12-02T12:00+00:00"))
    said = decide({"action": "resume"}, held, now, "x")
    assert said.command is None
    assert said.reply["said"].startswith("Not paused by you: the rule 'schedule' holds "
                                         "sharing until 18:00")
    overridden = snapshot(rules_overridden_until=_at("2026-12-02T11:00+00:00"))
    assert decide({"action": "resume", "rules": True}, overridden, now, "x").command == \
        ShareAnyway(None)
    assert decide({"action": "resume", "rules": True}, snapshot(), now, "x").command is None
    assert decide({"action": "token"}, snapshot(), now, "x").command == TokenChanged()

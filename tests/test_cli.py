"""``ghubai-tray`` as people run it: a real process against the test hub and Ollama stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import date
from pathlib import Path

import pytest

from ghubai_tray.adapters import ledger_db
from tests.processes import (
    SPAWN_FLAGS,
    STOP_NAME,
    clean_environment,
    cli,
    headless_worker,
    marked,
    python_for,
    stop_child,
)
from tests.testbed.hub import AuthMode, GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.worker_bed import TOKEN, failure_of

MODELS = ("llama3.2:1b", "mistral:7b")


def lifetime_requests(ledger: Path) -> int:
    """The requests served since install, as the ledger at ``ledger`` counts them."""
    if not ledger.exists():
        return 0
    with contextlib.closing(ledger_db.read_only(ledger)) as db:
        return ledger_db.activity_in(db, date.today()).lifetime.requests


@pytest.mark.parametrize("args", [["--help"], ["token", "--help"], ["token", "set", "--help"],
                                  ["token", "clear", "--help"], ["token", "status", "--help"],
                                  ["doctor", "--help"], ["status", "--help"],
                                  ["pause", "--help"], ["resume", "--help"], ["quit", "--help"],
                                  ["--version"]])
async def test_every_command_has_help(args: list[str], env: dict[str, str]) -> None:
    code, out, _ = await cli(*args, env=env)
    assert code == 0 and out.strip()


async def test_a_bad_setting_exits_2_naming_it(env: dict[str, str]) -> None:
    code, _, err = await cli("--headless", env={**env, "HUB_URL": "hub.example.com"})
    assert code == 2
    assert "hub_url from the variable HUB_URL is 'hub.example.com'" in err
    code, _, err = await cli("--max-concurrent-requests", "lots", "doctor", env=env)
    assert code == 2 and "the flag --max-concurrent-requests" in err


async def test_headless_registers_relays_and_stops_cleanly_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    ollama = OllamaStandIn(token_delay=0.01)
    await hub.start()
    await ollama.start()
    run_env = marked({**env, "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
                      "OLLAMA_LOCAL_URL": ollama.url, "GHUBAI_MACHINE_NAME": "headless-node",
                      "XDG_DATA_HOME": str(tmp_path / "data")})
    # Where the child keeps "Since install" (Windows: the profile's %LOCALAPPDATA%, shared).
    ledger = (tmp_path / "data" / "GhubAi" / "ledger.sqlite3" if sys.platform != "win32"
              else ledger_db.default_path())
    before = lifetime_requests(ledger)
    proc = await asyncio.create_subprocess_exec(
        *python_for(run_env), "-m", "ghubai_tray", "--headless", env=run_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **SPAWN_FLAGS)
    try:
        await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()), 30,
                             "the headless worker to register")
        req = await hub.dispatch("llama3.2:1b", "/api/chat", {"model": "llama3.2:1b",
                                                               "messages": [], "stream": True})
        await req.wait()
        assert json.loads(req.fragments[-1])["done"] is True
        stop_child(proc, run_env)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
        await hub.stop()
        await ollama.stop()
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert out == b"", "headless mode logs to stderr only"
    for line in ("state: registered (sharing 2 models with 127.0.0.1:",
                 f"[{req.request_id}] served in", f"{STOP_NAME} received: stopping", "stopped"):
        assert line in stderr
    logged = (tmp_path / "logs" / "ghubai-tray.log").read_text()
    assert "state: registered" in logged
    assert TOKEN not in stderr and TOKEN not in logged
    assert lifetime_requests(ledger) == before + 1, "headless counts too"


async def test_headless_sigint_cancels_a_long_request_after_the_grace(env: dict[str, str]) -> None:
    hub = GridHub()
    ollama = OllamaStandIn(token_delay=0.2, reply_tokens=["x"] * 500)
    await hub.start()
    await ollama.start()
    env = marked(env)
    proc = await asyncio.create_subprocess_exec(
        *python_for(env), "-m", "ghubai_tray", "--headless", "--grace", "0.5", "--hub-url", hub.url,
        "--ollama-url", ollama.url, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, **SPAWN_FLAGS)
    try:
        await hub.wait_until(lambda: any(n.models == MODELS for n in hub.nodes.values()), 30,
                             "registration")
        req = await hub.dispatch("llama3.2:1b", "/api/chat", {
            "model": "llama3.2:1b", "messages": [{"role": "user", "content": "a long story"}]})
        await anext(aiter(req.stream()))
        stop_child(proc, env, interrupt=True)
        assert await failure_of(req) == "worker shutting down"
        await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
        await hub.stop()
        await ollama.stop()
    assert proc.returncode == 0
    assert ollama.cancellations == ["/api/chat"]


async def doctor_against_the_bed(env: dict[str, str], **variables: str
                                 ) -> tuple[int, str, GridHub, OllamaStandIn]:
    """``doctor`` with a token against a test hub that requires it and an Ollama stand-in."""
    hub, ollama = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED), OllamaStandIn()
    await hub.start()
    await ollama.start()
    try:
        code, out, _ = await cli("doctor", env={**env, "HUB_URL": hub.url, "PROVIDER_TOKEN": TOKEN,
                                                "OLLAMA_LOCAL_URL": ollama.url, **variables})
    finally:
        await hub.stop()
        await ollama.stop()
    return code, out, hub, ollama


async def test_doctor_all_well(env: dict[str, str]) -> None:
    code, out, hub, ollama = await doctor_against_the_bed(env)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "All is well: this machine is ready to share its models."
    assert lines[1].startswith("[  ok] config: ")
    assert f"hub_url = {hub.url}  (the variable HUB_URL)" in out
    assert "[  ok] token: from the PROVIDER_TOKEN variable; the hub accepted it" in lines
    assert f"[  ok] Ollama: 2 models at {ollama.url} (Ollama 0.12.6): llama3.2:1b, " \
           "mistral:7b" in lines
    assert "[  ok] sharing: 2 models would be shared: llama3.2:1b, mistral:7b" in lines
    assert any(line.startswith("[  ok] hub: negotiate, WebSocket and handshake with 127.0.0.1:")
               and line.endswith("token accepted") for line in lines)
    assert "[  ok] TLS: not used: the hub is on this machine (http)" in lines
    assert ("of at most 10 MiB, bodies up to 30,000,000 bytes (28.6 MiB)" in out), out
    assert TOKEN not in out


async def test_doctor_says_a_pause_is_not_all_is_well(env: dict[str, str]) -> None:
    code, out, _, _ = await doctor_against_the_bed(env, GHUBAI_PAUSED="1")
    assert code == 1, out
    assert ("[FAIL] paused: sharing is paused until you choose Resume (the variable "
            "GHUBAI_PAUSED): the hub gets no models until then") in out
    assert out.splitlines()[0] == "Ready, but paused: nothing is shared until the pause ends."


async def test_doctor_names_each_problem(env: dict[str, str]) -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    try:
        code, out, _ = await cli("doctor", env={**env, "HUB_URL": hub.url,
                                                "PROVIDER_TOKEN": "wrong-token",
                                                "OLLAMA_LOCAL_URL": "http://127.0.0.1:9"})
    finally:
        await hub.stop()
    assert code == 1
    assert ("[FAIL] Ollama: Ollama is not reachable at http://127.0.0.1:9: is it running?"
            in out.splitlines())
    assert (f"[info] hub: the hub at 127.0.0.1:{hub.port} refused the token: see the token "
            "line") in out.splitlines()
    assert ("[FAIL] token: from the PROVIDER_TOKEN variable; the hub refused it: replace it "
            "(Settings, or 'ghubai-tray token set')") in out.splitlines()
    # one wrong token is one problem (it was counted twice: "token, Ollama, hub")
    assert out.splitlines()[0] == "2 problems to fix: token, Ollama."


async def test_a_key_in_the_hub_urls_query_is_shown_nowhere(env: dict[str, str]) -> None:
    """A hub may take its key in the URL (?access_token=): doctor named the whole URL."""
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    secret = "sekrit-in-the-url-7c1"
    try:
        code, out, err = await cli("doctor", env={
            **env, "HUB_URL": f"{hub.url}?access_token={secret}&k={secret}2",
            "PROVIDER_TOKEN": "wrong-token", "OLLAMA_LOCAL_URL": "http://127.0.0.1:9"})
    finally:
        await hub.stop()
    assert code == 1
    assert f"hub_url = {hub.url}?access_token=[redacted]&k=[redacted]" in out
    logs = "".join(p.read_text() for p in (Path(env["GHUBAI_LOG_DIR"])).glob("*.log"))
    assert secret not in out + err + logs


async def test_doctor_without_a_token_says_one_is_needed_not_refused(
    env: dict[str, str], keyring_env: dict[str, str]
) -> None:
    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    try:
        code, out, _ = await cli("doctor", env={**env, **keyring_env, "HUB_URL": hub.url})
    finally:
        await hub.stop()
    assert code == 1
    assert hub.tokens_seen == [None], "nothing was sent, so nothing was refused"
    assert (f"[info] hub: the hub at 127.0.0.1:{hub.port} needs a provider token, and none "
            "is set: enter the one its operator gave you (Settings, or 'ghubai-tray token "
            "set'): see the token line") in out.splitlines()
    assert "[FAIL] token: none is set, and this hub needs one" in out.splitlines()
    verdict = out.splitlines()[0]  # Ollama: whatever answers at its default address here
    assert " to fix: token" in verdict and "hub" not in verdict, verdict
    assert "refused" not in out


async def test_token_set_status_clear_in_the_real_keyring(
    env: dict[str, str], keyring_env: dict[str, str], tmp_path: Path
) -> None:
    run_env = {**env, **keyring_env, "HUB_URL": "https://hub.example.com/gridhub"}
    code, out, _ = await cli("token", "status", env=run_env)
    assert code == 1 and "No token is set for https://hub.example.com" in out
    code, out, err = await cli("token", "set", env=run_env, stdin=f"  {TOKEN}  \n".encode())
    assert code == 0, err
    assert "Stored the token for https://hub.example.com in the OS keyring" in out
    code, out, _ = await cli("token", "status", env=run_env)
    assert code == 0 and "comes from the OS keyring (service GhubAi" in out
    code, out, _ = await cli("token", "status", env={**run_env, "PROVIDER_TOKEN": "x" * 8})
    assert "comes from the PROVIDER_TOKEN variable" in out
    code, out, _ = await cli("token", "clear", env=run_env)
    assert code == 0 and "Removed the token" in out
    code, out, _ = await cli("token", "status", env=run_env)
    assert code == 1
    assert not any(TOKEN in p.read_text(errors="replace")
                   for p in tmp_path.rglob("*") if p.is_file() and "keyring" not in str(p))


@pytest.mark.skipif(sys.platform == "win32", reason="Windows always has its Credential Manager "
                    "(the advice for when it fails is checked in test_credentials)")
async def test_token_set_without_a_keyring_says_what_to_do(env: dict[str, str],
                                                           tmp_path: Path) -> None:
    code, out, err = await cli("token", "set", env=env, stdin=f"{TOKEN}\n".encode())
    assert code == 1
    assert "PROVIDER_TOKEN" in err and "Secret Service" in err
    assert not any(TOKEN in p.read_text(errors="replace")
                   for p in tmp_path.rglob("*") if p.is_file()), "never written to a file"


async def test_token_set_from_a_terminal_reaches_the_running_worker_at_once(
    keyring_env: dict[str, str], tmp_path: Path
) -> None:
    """The running worker (headless here) connected without a token; `token set` stores
    one and tells it through the control channel: it connects with it within seconds,
    not at its next attempt."""
    new = "tok-from-the-terminal-71c2"
    hub = GridHub(tokens=[TOKEN, new])
    async with headless_worker(tmp_path, hub=hub, environment=keyring_env,
                               PROVIDER_TOKEN="") as worker:
        assert hub.tokens_seen[-1] is None
        code, out, err = await cli("token", "set", env=worker.env, stdin=f"{new}\n".encode())
        assert code == 0, err
        assert "The running GhubAi Tray reads the token again" in out
        await hub.wait_until(lambda: hub.tokens_seen[-1] == new, 10,
                             "the worker to connect with the new token")
        await hub.wait_until(lambda: any(n.models for n in hub.nodes.values()
                                         if n.connection_id in hub.connections), 15,
                             "the new connection to register")


@pytest.mark.skipif(sys.platform == "win32", reason="locks a Secret Service collection")
async def test_a_locked_keyring_is_said_and_sharing_starts_once_it_is_unlocked(
    keyring_env: dict[str, str], tmp_path: Path
) -> None:
    """At an unattended login the collection is locked: the worker said "the hub needs a
    provider token, and none was sent", though one is stored. Now it says the keyring did
    not give it, asks the keyring only whether it is locked (no prompt every 15 s), and
    connects by itself once the owner has unlocked it."""
    from tests.testbed.secrets import lock_keyring, unlock_keyring

    hub = GridHub(tokens=[TOKEN], auth=AuthMode.REQUIRED)
    await hub.start()
    try:
        store_env = {**clean_environment(tmp_path / "store"), **keyring_env, "HUB_URL": hub.url}
        code, _, err = await cli("token", "set", env=store_env, stdin=f"{TOKEN}\n".encode())
        assert code == 0, err
    finally:
        await hub.stop()
    lock_keyring(keyring_env)
    async with headless_worker(tmp_path, hub=hub, registers=False, environment=keyring_env,
                               PROVIDER_TOKEN="") as worker:
        async def status() -> str:
            _, out, _ = await cli("status", env=worker.env)
            return out

        for _ in range(100):
            if "The OS keyring did not give the token (is it locked?)" in (said := await status()):
                break
        else:
            raise AssertionError(f"status never said the keyring was locked: {said}")
        assert "needs a provider token, and none was sent" not in said
        assert ": keyring locked? (" in said, said  # the hub line's state
        unlock_keyring(keyring_env)
        await hub.wait_until(lambda: hub.tokens_seen[-1] == TOKEN, 40,
                             "the worker to connect with the token once unlocked")
        await hub.wait_until(lambda: any(n.models for n in hub.nodes.values()), 20,
                             "the worker to register")


async def test_doctor_names_another_server_at_the_ollama_address(env: dict[str, str]) -> None:
    from tests.testbed.model_servers import KOBOLD_VERSION, MODEL, Kind, ModelServerStandIn

    server = ModelServerStandIn(Kind.KOBOLDCPP)
    await server.start()
    try:
        code, out, _ = await cli("doctor", env={**env, "OLLAMA_LOCAL_URL": server.url,
                                                "PROVIDER_TOKEN": TOKEN})
    finally:
        await server.stop()
    assert f"[  ok] model server: 1 model at {server.url} (KoboldCpp {KOBOLD_VERSION}): " \
           f"koboldcpp/{MODEL}; owner first and freeing memory on pause are not available " \
           "with it" in out, out


@pytest.mark.skipif(sys.platform == "win32", reason="the ledger's folder is the profile's there "
                    "(not XDG_DATA_HOME); the command is the same: the Linux lane runs it")
async def test_activity_summarises_the_ledger_and_exports_every_row(
        env: dict[str, str], tmp_path: Path) -> None:
    from dataclasses import replace

    from ghubai_tray.adapters.ledger_db import Ledger
    from ghubai_tray.core.ledger import COLUMNS, Entry

    env = {**env, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    code, _, err = await cli("activity", env=env)
    assert code == 1 and "No activity yet" in err
    today = date.today()
    row = Entry(at=f"{today}T09:00:00.000+00:00", day=today.isoformat(), hub="hub.example.com",
                model="llama3.2:1b", endpoint="/api/chat", server="ollama", outcome="served",
                prompt_tokens=8, output_tokens=25, chunks=26, ttft_ms=50.0, duration_ms=550.0)
    ledger = Ledger(tmp_path / "xdg" / "GhubAi" / "ledger.sqlite3")
    ledger.open(today)
    for entry in (row, row, replace(row, outcome="failed", output_tokens=None, chunks=2)):
        ledger.add(entry)
    ledger.close()
    code, out, _ = await cli("activity", env=env)
    assert code == 0, out
    assert out.splitlines()[0] == "Today: 2 request(s) served, 52 tokens, 1 not served"
    assert "  llama3.2:1b: 2 served, 52 tokens" in out
    code, out, _ = await cli("activity", "--json", "--days", "7", env=env)
    summary = json.loads(out)
    assert summary["days"] == [{"day": today.isoformat(), "served": 2, "failed": 1,
                                "tokens": 52, "limited": 0, "energy_wh": 0}]
    code, out, _ = await cli("activity", "--csv", "-", env=env)
    assert out.splitlines()[0] == ",".join(COLUMNS) and len(out.splitlines()) == 4
    target = tmp_path / "export.csv"
    code, _, err = await cli("activity", "--csv", str(target), env=env)
    assert code == 0 and "3 row(s) written" in err
    assert target.read_text(encoding="utf-8").splitlines()[1].startswith(f"{today}T09:00")
    assert target.stat().st_mode & 0o777 == 0o600
    code, _, err = await cli("activity", "--days", "0", env=env)
    assert code == 2

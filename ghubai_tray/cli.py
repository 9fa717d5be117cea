"""The ``ghubai-tray`` command line: the worker headless, the token, the doctor.

    ghubai-tray [settings flags]                the tray icon (the worker on a thread)
    ghubai-tray [settings flags] --headless     run the worker without a tray
    ghubai-tray token set|clear|status          the provider token in the OS keyring
    ghubai-tray doctor                          check everything, one line each
    ghubai-tray status|pause|resume|quit        steer the worker already running
    ghubai-tray share-anyway [--for 1h]         set the automatic pauses aside a while
    ghubai-tray --version

Exit codes: 0 fine, 1 a failure at run time (doctor found a problem, no
keyring), 2 a usage or configuration error (nothing was started).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghubai_tray import __version__
from ghubai_tray.adapters import logs
from ghubai_tray.adapters.config import add_flags, flag_values, load_settings
from ghubai_tray.adapters.credentials import (
    SERVICE,
    TokenSource,
    account_for,
    delete_token,
    resolve_token,
    store_token,
)
from ghubai_tray.adapters.keyring_reader import (
    LOCKED_FLAG,
    READ_FLAG,
    child_main,
    resolve_token_apart,
)
from ghubai_tray.adapters.single_instance import SingleInstance
from ghubai_tray.app import control_server, owner_worker, self_installer, tray_worker
from ghubai_tray.core import texts
from ghubai_tray.core.errors import ConfigError, TokenStoreError
from ghubai_tray.core.ledger import summary_lines
from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Snapshot, Stop
from ghubai_tray.worker import Worker, blocking_calls_pending, run_in_new_loop

if TYPE_CHECKING:
    from ghubai_tray.adapters.update_install import SetupInstaller

log = logging.getLogger("ghubai_tray")
DEFAULT_GRACE = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghubai-tray",
        description="Lend your GPU to a GhubAi hub: relays the hub's inference requests to "
                    "your local Ollama, for the models you choose to share.",
        epilog="Settings come from defaults, then config.toml, then environment variables, "
               "then these flags. README.md, under Configuration, has the full table.")
    parser.add_argument("--version", action="version", version=f"GhubAi Tray {__version__}")
    parser.add_argument("--headless", action="store_true",
                        help="run the worker without a tray icon, until SIGINT/SIGTERM "
                        "(Ctrl-C or Ctrl-Break on Windows)")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE, metavar="SECONDS",
                        help="on stop, how long in-flight requests may finish (default 10)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    # The tray starts its settings window as a separate process through this flag.
    parser.add_argument("--settings-window", action="store_true", help=argparse.SUPPRESS)
    # ... and the window that says no tray shows its icon, and the Activity window.
    parser.add_argument("--no-tray-window", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--activity-window", action="store_true", help=argparse.SUPPRESS)
    add_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    token = commands.add_parser("token", help="store, remove or check the provider token",
                                description="The provider token lives in the OS keyring "
                                "(service GhubAi, one entry per hub). PROVIDER_TOKEN overrides it.")
    token_commands = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    token_commands.add_parser("set", help="store a token (asked without echo, or read from stdin)")
    token_commands.add_parser("clear", help="remove the stored token for the hub")
    token_commands.add_parser("status", help="say whether a token is stored, and where "
                              "(never prints it); exit 1 when there is none")
    commands.add_parser("doctor", help="check config, token, Ollama, hub and TLS",
                        description="Runs every check with one line each and a verdict; "
                        "exit code 0 only when all is well.")
    update = commands.add_parser(
        "update", help="whether a newer version is out",
        description="Asks the releases feed (update_url) now, even when the automatic "
        "check is off. Exit 0 when this is the newest, 10 when a newer one is out, 1 when "
        "the feed could not tell.")
    update_commands = update.add_subparsers(dest="action", metavar="ACTION", required=True)
    update_commands.add_parser("check", help="ask the releases feed now").add_argument(
        "--json", action="store_true", help="print the answer as JSON")
    update_commands.add_parser(
        "install", help="install the newest version (Windows)",
        description="Downloads the newest release's installer, checks its signature and "
        "checksum, lets the requests in progress finish, installs it and starts the new "
        "version, as the menu's Install update does. Exit 0 once the installer runs, 1 "
        "when nothing was installed (the reason is said).")
    activity = commands.add_parser(
        "activity", help="what this machine gave: requests and tokens by day and model",
        description="Reads the ledger of every hub request (never a prompt or an answer): "
        "the last days by day and by model, and the totals. --csv writes every row. Exit 0, "
        "1 when there is no ledger yet.")
    activity.add_argument("--days", type=int, default=30, metavar="N",
                          help="how many days back, today included (default 30)")
    activity.add_argument("--json", action="store_true", help="print the summary as JSON")
    activity.add_argument("--csv", metavar="FILE",
                          help="write every row as CSV to FILE (- for standard output)")
    _add_control_commands(commands)
    return parser


def _add_control_commands(commands: Any) -> None:
    """The commands that steer the worker already running (tray or headless)."""
    status = commands.add_parser(
        "status", help="what the running worker is doing; exit 0 when one runs, 1 when none",
        description="Asks the worker running for this user (tray or --headless): its state "
        "and why, the hub, Ollama, the models shared, the requests now, and the pause.")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    pause = commands.add_parser(
        "pause", help="stop sharing now (or --finish current requests first)",
        description="Registers no model with the hub until resumed (or until the pause "
        "ends). Exit 0 when paused, 1 when no worker runs, 2 for a bad duration or time.")
    when = pause.add_mutually_exclusive_group()
    when.add_argument("--for", dest="pause_for", metavar="DURATION",
                      help="end the pause after this long: 30m, 1h, 1h30m, 90 (minutes)")
    when.add_argument("--until", dest="pause_until", metavar="TIME",
                      help="end the pause at this time: 18:30, or 2026-12-24T18:30")
    pause.add_argument("--finish", action="store_true",
                       help="let the requests in progress finish (default: stop them now)")
    resume = commands.add_parser("resume", help="share again; exit 0, or 1 when no worker runs",
                                 description="Ends your pause. While a rule (the schedule, a "
                                 "game, your use of Ollama...) holds sharing, says which.")
    resume.add_argument("--rules", action="store_true",
                        help="also end 'Share anyway': the rules hold again")
    anyway = commands.add_parser(
        "share-anyway", help="share despite the rules for a while (default 1 hour)",
        description="Sets the automatic pauses (schedule, games, GPU busy, away, battery, "
        "your use of Ollama) aside until the time ends or 'resume --rules'. A pause of "
        "your own still holds. Exit 0, 1 when no worker runs, 2 for a bad duration.")
    anyway.add_argument("--for", dest="anyway_for", metavar="DURATION",
                        help="how long: 30m, 1h, 2h30m, 90 (minutes); default 1h")
    commands.add_parser("quit", help="stop the running worker (the tray quits too); "
                        "exit 0, or 1 when no worker runs")


def main(argv: list[str] | None = None) -> int:
    # A windowed Windows build has no console: sys.stdout and sys.stderr are None there,
    # and print() would fail. Nothing is lost: the log file has everything.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in ([READ_FLAG], [LOCKED_FLAG]):  # the worker's keyring reader (hidden)
        return child_main(argv)
    args = build_parser().parse_args(argv)
    if args.no_tray_window:
        from ghubai_tray.desktop.no_tray_window import main as no_tray_window

        return no_tray_window()
    if args.activity_window:
        from ghubai_tray.desktop.activity_window import main as activity_window

        return activity_window(_gpu_words)
    if args.settings_window:
        from ghubai_tray.desktop.settings_window import main as settings_window
        from ghubai_tray.doctor import connection_report

        return settings_window(connection_report, flags=flag_values(args))
    if args.command in ("status", "pause", "resume", "quit", "share-anyway"):
        return _control(args)  # the running worker has its settings: none are read here
    try:
        settings = load_settings(flags=flag_values(args))
    except ConfigError as exc:
        _say(f"ghubai-tray: configuration error: {exc}")
        return 2
    if args.command in ("token", "doctor", "update", "activity"):
        return _command(args, settings)
    from ghubai_tray.adapters.memory import return_large_buffers

    return_large_buffers()  # the worker may hold a hub's 90 MB message a few times over
    if args.headless:
        return run_headless(settings, grace=args.grace, verbose=args.verbose)
    return run_tray(settings, flags=flag_values(args), grace=args.grace, verbose=args.verbose)


def _command(args: Any, settings: Settings) -> int:
    """The commands that run on their own (no worker needed)."""
    if args.command == "token":
        return _token(args.action, settings)
    if args.command == "doctor":
        return _doctor(settings)
    if args.command == "activity":
        return _activity(args)
    return _update_install(settings) if args.action == "install" \
        else _update_check(settings, args.json)


def _activity(args: Any) -> int:
    """``ghubai-tray activity``: the ledger, read while the worker may be writing it."""
    from ghubai_tray.adapters import ledger_db
    from ghubai_tray.adapters.owner_only import private_file

    path = ledger_db.default_path()
    if not path.exists():
        _say(f"No activity yet: the ledger ({path}) is written once GhubAi Tray has "
             "served the hub.")
        return 1
    if args.days < 1:
        _say("ghubai-tray: --days must be 1 or more")
        return 2
    with contextlib.closing(ledger_db.read_only(path)) as db:
        if args.csv == "-":
            ledger_db.write_csv(db, sys.stdout)
            return 0
        if args.csv:
            fd = os.open(args.csv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                rows = ledger_db.write_csv(db, out)
            private_file(Path(args.csv))
            _say(f"{rows:,} row(s) written to {args.csv}")
            return 0
        summary = ledger_db.summary(db, args.days, date.today())
    print(json.dumps(summary, indent=2) if args.json else "\n".join(summary_lines(summary)))
    return 0


def _say(text: str) -> None:
    if sys.stderr is not None:
        print(text, file=sys.stderr)


# -- headless --------------------------------------------------------------


def run_headless(settings: Settings, *, grace: float, verbose: bool = False) -> int:
    claimed = _claim("headless", verbose)
    if isinstance(claimed, int):
        return claimed
    instance, _ = claimed
    try:
        worker = owner_worker(settings, _redacting_token_provider)
        worker.subscribe(_state_logger())
        channel = control_server(worker, lambda: _stop_on_request(worker, grace), "headless")
        channel.start()
        try:
            run_in_new_loop(_serve_until_signalled(worker, grace))
        finally:
            channel.close()
        log.info("stopped")
        return _exit_even_if_stuck(0)
    finally:
        instance.release()


def _stop_on_request(worker: Worker, grace: float) -> None:
    log.info("quit requested (ghubai-tray quit): stopping (up to %g s for requests in "
             "progress)", grace)
    worker.submit(Stop(grace))


def _claim(mode: str, verbose: bool) -> tuple[SingleInstance, Path | None] | int:
    """Become the session's one worker (its lock, then its log), or say which one already
    runs and give the exit code: 1, nothing started (two would share the GPU twice)."""

    instance = SingleInstance(mode=mode)
    if not instance.acquire():
        holder = instance.holder()
        if mode == "tray" and holder is not None and holder.mode == "tray" and _show_running():
            # started again (from the start menu, say): the running one comes forward
            _say(texts.BROUGHT_FORWARD.format(pid=f", process {holder.pid}"))
            return 0
        _say(texts.already_running(holder.mode if holder else None,
                                   holder.pid if holder else None))
        return 1
    path = logs.setup(to_stderr=True, verbose=verbose)
    log.info("GhubAi Tray %s%s; log file %s", __version__,
             " headless" if mode == "headless" else "", path)
    return instance, path


def _show_running() -> bool:
    """Ask the running tray to come forward; False when it could not be asked."""
    from ghubai_tray.adapters.control import NotAnswering, NotRunning, ask

    try:
        return bool(ask({"action": "show"}).get("ok"))
    except (NotRunning, NotAnswering):
        return False


def _exit_even_if_stuck(code: int) -> int:
    """Exit now if a thread left behind would hold the process open.

    A keyring call waiting on an unlock prompt nobody answers, or a thread of
    a tray backend waiting on a loop that has stopped: Python waits for such
    threads at exit, forever. They get a second to finish, then we leave.
    """
    if blocking_calls_pending():
        log.warning("a keyring call is still waiting (an unlock prompt?); exiting without it")
        logging.shutdown()
        os._exit(code)
    deadline = time.monotonic() + 1.0
    for thread in _stray_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    if stray := _stray_threads():
        log.warning("exiting without threads that did not stop: %s",
                    ", ".join(t.name for t in stray))
        logging.shutdown()
        os._exit(code)
    return code


def _stray_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t is not threading.current_thread() and not t.daemon and t.is_alive()]


def _redacting_token_provider(hub_url: str) -> TokenSource:
    source = resolve_token_apart(hub_url)
    logs.add_secret(source.token)
    return source


def _state_logger() -> Callable[[Snapshot], None]:
    last: list[tuple[str, str]] = []

    def listener(snap: Snapshot) -> None:
        key = (snap.state.value, snap.reason)
        if not last or last[0] != key:
            last[:] = [key]
            log.info("state: %s (%s)", *key)

    return listener


async def _serve_until_signalled(worker: Worker, grace: float) -> None:
    loop = asyncio.get_running_loop()
    run = asyncio.create_task(worker.run())

    def stop(what: str) -> None:
        log.info("%s received: stopping (up to %g s for requests in progress)", what, grace)
        worker.submit(Stop(grace))

    def handler(what: str) -> Callable[[int, object], None]:
        def on_signal(_signum: int, _frame: object) -> None:
            loop.call_soon_threadsafe(stop, what)
        return on_signal

    for sig, what in _stop_signals():
        try:
            loop.add_signal_handler(sig, stop, what)
        except NotImplementedError:
            # Windows: the console's Ctrl-C and Ctrl-Break arrive as SIGINT and SIGBREAK
            # on the main thread, which the Proactor loop wakes for.
            signal.signal(sig, handler(what))
    await run


def _stop_signals() -> list[tuple[signal.Signals, str]]:
    """What asks a headless worker to stop, named as the owner knows it."""
    if sys.platform == "win32":
        return [(signal.SIGINT, "Ctrl-C"), (signal.SIGBREAK, "Ctrl-Break")]  # type: ignore[attr-defined,unused-ignore]
    return [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")]


# -- tray ------------------------------------------------------------------


def run_tray(settings: Settings, *, flags: dict[str, object], grace: float,
             verbose: bool = False) -> int:
    from ghubai_tray.adapters.autostart import for_this_platform

    claimed = _claim("tray", verbose)
    if isinstance(claimed, int):
        return claimed
    instance, path = claimed
    try:
        # A tray icon never draws with OpenGL, but GDK 3 on X11 probes GLX at start-up
        # to choose visuals, loading the GL driver (with Mesa, all of libLLVM): 54 MB
        # more RSS, measured (bench/RESULTS.md). Users can still set GDK_GL themselves.
        os.environ.setdefault("GDK_GL", "disable")
        try:
            import pystray  # noqa: F401 - with no display this raises, and not ImportError
        except Exception as exc:
            log.error("cannot start the tray icon (%s: %s)", type(exc).__name__, exc)
            _say(texts.NO_DISPLAY)
            return 1
        from ghubai_tray.desktop.tray import TrayApp

        worker, run_worker = tray_worker(settings, _redacting_token_provider)
        app = TrayApp(worker, run_worker, autostart=for_this_platform(),
                      log_file=path, flags=dict(flags), grace=grace)
        channel = control_server(worker, app.quit, "tray", app.show)
        channel.start()
        try:
            code = app.run()
        finally:
            channel.close()
        return _exit_even_if_stuck(code)
    finally:
        instance.release()


# -- token -----------------------------------------------------------------


def _token(action: str, settings: Settings) -> int:
    where = f"the OS keyring (service {SERVICE}, account {account_for(settings.hub_url)})"
    try:
        if action == "set":
            token = _read_token(account_for(settings.hub_url))
            store_token(settings.hub_url, token)
            print(f"Stored the token for {account_for(settings.hub_url)} in {where}.")
            _tell_running_worker()
            return 0
        if action == "clear":
            if delete_token(settings.hub_url):
                print(f"Removed the token for {account_for(settings.hub_url)} from {where}.")
                _tell_running_worker()
            else:
                print(f"No token was stored for {account_for(settings.hub_url)}.")
            return 0
        source = resolve_token(settings.hub_url)
    except TokenStoreError as exc:
        _say(f"ghubai-tray: {exc}")
        return 1
    if source.token is None:
        print(f"No token is set for {account_for(settings.hub_url)} (looked in PROVIDER_TOKEN "
              f"and {where}).")
        return 1
    print(f"A token is set for {account_for(settings.hub_url)}: it comes from {source.where}.")
    return 0


def _tell_running_worker() -> None:
    """A running GhubAi Tray (tray or headless) reads the token again at once, rather than
    at its next connection; none running is fine."""
    from ghubai_tray.adapters.control import NotAnswering, NotRunning, ask

    try:
        answer = ask({"action": "token"})
    except NotRunning:
        return
    except NotAnswering as exc:
        _say(f"ghubai-tray: the running GhubAi Tray did not answer ({exc}); it reads the new "
             "token when it next connects.")
        return
    if answer.get("ok"):
        print(answer.get("said", ""))


def _read_token(account: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"Token for {account} (input is hidden): ")
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.strip()


# -- doctor ----------------------------------------------------------------


def _update_check(settings: Settings, as_json: bool) -> int:
    from ghubai_tray.adapters.update_feed import FeedError
    from ghubai_tray.app import release_feed
    from ghubai_tray.core.updates import newest

    try:
        found = newest(asyncio.run(release_feed(settings)), __version__,
                       settings.update_prereleases)
    except FeedError as exc:
        if as_json:
            print(json.dumps({"current": __version__, "error": str(exc)}))
        else:
            _say(f"ghubai-tray: could not tell whether a newer version is out: {exc}")
        return 1
    if as_json:
        print(json.dumps({"current": __version__, "newest": str(found.version) if found
                          else __version__, "update": found is not None,
                          "page": found.page if found else None}))
    elif found is None:
        print(f"GhubAi Tray {__version__} is the newest version.")
    else:
        print(f"GhubAi Tray {found.version} is out (this is {__version__}): {found.page}")
        from ghubai_tray.desktop.system import installed_by_deb

        if installed_by_deb():
            print("Download ghubai-tray_amd64.deb from that page, then run: "
                  "sudo apt install ./ghubai-tray_amd64.deb")
    return 10 if found else 0


def _update_install(settings: Settings) -> int:
    """The menu's Install update from a console: through the running app when there is
    one (it lets its requests finish), else here (the installer starts the app after)."""
    from ghubai_tray.adapters.control import NotAnswering, NotRunning, ask

    installer = self_installer()
    if installer is None:
        _say("ghubai-tray update install: " + (
            "this build carries no release key, so it cannot check an update; download "
            "the new version from its release page" if sys.platform == "win32" else
            "on Linux GhubAi Tray does not install its own updates; 'ghubai-tray update "
            "check' says whether one is out and where to get it"))
        return 1
    try:
        before = ask({"action": "status"}).get("status", {}).get("notice")
        ask({"action": "install-update"})
    except NotRunning:
        return _install_here(settings, installer)
    except NotAnswering as exc:
        _say(f"ghubai-tray update install: the running GhubAi Tray does not answer ({exc})")
        return 1
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        try:
            status = ask({"action": "status"}).get("status", {})
        except (NotRunning, NotAnswering):
            print("GhubAi Tray has quit for its installer; it starts again when done.")
            return 0
        if str(status.get("updating") or "").startswith("Updating"):
            print(f"{status['updating']} GhubAi Tray finishes the requests in progress, "
                  "then quits for the installer, which starts the new version.")
            return 0
        if status.get("notice") and status.get("notice") != before:
            _say(f"ghubai-tray update install: {status['notice']}")
            return 1
        time.sleep(1.0)
    _say("ghubai-tray update install: no answer within an hour; see the menu and the log")
    return 1


def _install_here(settings: Settings, installer: SetupInstaller) -> int:
    from ghubai_tray.app import release_feed
    from ghubai_tray.core.updates import newest

    async def install() -> str:
        found = newest(await release_feed(settings), __version__, settings.update_prereleases)
        if found is None:
            return f"GhubAi Tray {__version__} is the newest version; nothing to install."
        print(f"Downloading and checking GhubAi Tray {found.version}…")
        path = await installer.fetch(found)
        try:
            installer.launch(path, found)
        except OSError:
            installer.discard(path)
            raise
        return f"Installing GhubAi Tray {found.version}; it starts when the installer is done."

    try:
        print(asyncio.run(install()))
    except Exception as exc:  # the reason, in words: nothing was installed
        _say(f"ghubai-tray update install: nothing was installed: {exc}")
        return 1
    return 0


def _gpu_words() -> tuple[bool, str]:
    """For the Activity window: whether a GPU says its draw, and what the GPUs read."""
    from ghubai_tray.adapters.gpu_sensors import GpuSensors

    sensors = GpuSensors()
    try:
        readings = sensors.read()
    finally:
        sensors.close()
    return readings.power_w is not None, readings.words()


def _doctor(settings: Settings) -> int:
    from ghubai_tray.doctor import run_checks, verdict

    checks = asyncio.run(run_checks(settings))
    text, code = verdict(checks)
    print(text)  # the verdict first: the one line a person reads
    for check in checks:
        for line in check.lines():
            print(line)
    return code


# -- steering the running worker ---------------------------------------------


def _control(args: argparse.Namespace) -> int:
    from ghubai_tray.adapters.control import NotAnswering, NotRunning, ask

    request: dict[str, Any] = {"action": args.command}
    if args.command == "pause":
        request.update({"for": args.pause_for, "until": args.pause_until,
                        "finish": args.finish})
    elif args.command == "resume":
        request["rules"] = args.rules
    elif args.command == "share-anyway":
        request["for"] = args.anyway_for
    try:
        reply = ask(request)
    except NotRunning:
        _say(texts.NOT_RUNNING)
        return 1
    except NotAnswering as exc:
        from ghubai_tray.adapters.logs import log_dir

        _say(texts.NOT_ANSWERING.format(why=exc, logs=log_dir()))
        return 1
    if not reply.get("ok"):
        _say(f"ghubai-tray {args.command}: {reply.get('error', 'the worker refused')}")
        return 2
    if args.command != "status":
        print(reply.get("said", "Done."))
        return 0
    status = reply.get("status", {})
    if args.json:
        print(json.dumps({"mode": reply.get("mode"), "pid": reply.get("pid"), **status},
                         indent=2))
        return 0
    for line in _status_lines(reply.get("mode"), reply.get("pid"), status):
        print(line)
    return 0


def _status_lines(mode: Any, pid: Any, s: dict[str, Any]) -> list[str]:
    where = "in the system tray" if mode == "tray" else "without a tray (--headless)"
    if mode == "tray" and s.get("waiting_for_tray"):
        where = "as a tray app, but no tray shows its icon yet"
    if s.get("paused"):
        until = s.get("paused_until")
        paused = (f"yes, until {datetime.fromisoformat(until):%a %d %b %H:%M}" if until
                  else "yes, until you resume")
    elif s.get("held_by"):
        until = s.get("held_until")
        rule = str(s["held_by"])
        paused = (f"by a rule ({rule}), until {datetime.fromisoformat(until):%a %d %b %H:%M}"
                  if until else f"by a rule ({rule}), while it lasts")
        paused += f": {s['held_detail']}" if s.get("held_detail") else ""
    else:
        paused = "no"
    shared = ", ".join(s.get("shared_models") or []) or "none"
    return [f"GhubAi Tray is running {where}, process {pid}.",
            f"  Now:      {s.get('headline')}",
            f"  Hub:      {s.get('hub')}: {s.get('state')} ({s.get('reason')})",
            f"  Ollama:   {s.get('ollama')} ({s.get('ollama_reason') or 'not checked yet'})",
            *([f"  Server:   {s['model_server']}"] if s.get("model_server") else []),
            f"  Shared:   {shared}",
            f"  Requests: {s.get('active', 0)} running, {s.get('queued', 0)} waiting",
            f"  Paused:   {paused}",
            f"  Rules on: {', '.join(s.get('rules_on') or []) or 'none'}",
            *([f"  GPU:      {s['gpu']['words']}"] if s.get("gpu") else []),
            *([f"  Rules:    set aside until "
               f"{datetime.fromisoformat(s['rules_overridden_until']):%a %H:%M} "
               "(Share anyway; 'ghubai-tray resume --rules' ends it)"]
              if s.get("rules_overridden_until") else []),
            *(["  Quitting: finishing what runs"] if s.get("stopping") else [])]

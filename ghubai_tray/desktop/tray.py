"""The tray application: the icon on the main thread, the worker on one background thread.

State flows one way. The worker publishes snapshots; each one only *nudges*
a refresher thread (at most one refresh pending), which re-renders the icon,
tooltip and whole menu from the latest snapshot and decides on notifications.
Clicks become commands handed to ``Worker.submit()`` or small desktop jobs
run on their own threads, so the icon's thread never waits on the network,
the keyring or a window. Quit stops the icon, then drains the worker within
its grace period and joins its thread; the process always exits.

pystray backends differ (see docs/PLATFORM.md): gtk and appindicator marshal icon,
title, menu and notifications onto the Gtk main loop themselves, so calling
them from the refresher is safe; on Windows ``update_menu()`` is not
thread-safe (pystray issue #60), so it is posted to the icon's own window
thread as a private message. The xorg fallback has no menu at all: we detect
it (``HAS_MENU``) and say what to install.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ghubai_tray import __version__
from ghubai_tray.adapters.autostart import Autostart, launch_command
from ghubai_tray.adapters.config import flag_args, load_settings
from ghubai_tray.adapters.logs import log_dir
from ghubai_tray.adapters.owner_only import child_environment
from ghubai_tray.core import texts
from ghubai_tray.core.state import (
    ApplySettings,
    Command,
    Snapshot,
    State,
    Stop,
    TokenChanged,
    TrayShown,
    WorkerHandle,
)
from ghubai_tray.desktop import notifications, system
from ghubai_tray.desktop.icon import icon_for, icon_kind, status_line, title_for
from ghubai_tray.desktop.menu import Action, Desktop, Item, Ui, render_menu, resolve
from ghubai_tray.desktop.tray_host import tray_host_present

log = logging.getLogger("ghubai_tray.tray")
ICON_SIZE = 64
TRAY_WAIT = 5.0  # seconds a tray host gets to show the icon before the owner is asked
TRAY_RECHECK = 1.0  # then, while the owner is asked, how often to look again
WM_GHUBAI_UPDATE_MENU = 0x400 + 42  # WM_USER + 42: ours, beside pystray's WM_USER + 10/11


class TrayApp:
    """Build with the worker and what runs it; ``run()`` blocks until Quit.

    The composition root (:mod:`ghubai_tray.app`) builds the worker; the tray
    only reads its snapshots and submits commands.
    """

    def __init__(
        self,
        worker: WorkerHandle,
        run_worker: Callable[[], None],
        *,
        autostart: Autostart | None,
        log_file: Path | None,
        flags: dict[str, Any] | None = None,
        grace: float = 10.0,
        open_settings_when_unconfigured: bool = True,
    ) -> None:
        self.worker = worker
        self._worker_main = run_worker
        self._autostart = autostart
        self._autostart_on: bool | None = None
        self._log_file = log_file
        self._grace = grace
        self._offer_settings = open_settings_when_unconfigured
        self._latest = self.worker.snapshot
        self._nudge = threading.Event()
        self._quitting = threading.Event()
        self._icon_stopping = threading.Event()  # from then on, nothing touches the icon
        self._quit_started = 0.0
        self._finished = threading.Event()
        self._history: collections.deque[tuple[datetime, str]] = collections.deque(maxlen=100)
        self._episodes = notifications.Episodes()
        self._settings = SettingsWindowLauncher(self.worker.submit, dict(flags or {}))
        self._activity = WindowProcess("--activity-window")
        self._seen = SeenGuard(self.worker.submit, self._quitting, self.quit)
        self._icon: Any = None
        self._latin1_titles = False
        self._shown: tuple[Any, ...] = ()
        self._thread = threading.Thread(target=self._run_worker, name="ghubai-worker",
                                        daemon=True)

    # -- lifecycle -----------------------------------------------------------

    def run(self) -> int:
        import pystray  # may raise for want of a display: the caller explains

        _set_program_name()
        self.worker.subscribe(self._on_snapshot)
        self._thread.start()
        self.worker.running.wait(10)
        self._autostart_on = _autostart_enabled(self._autostart)
        snap = self._latest
        # python-xlib writes window titles as Latin-1: the xorg fallback gets plain dashes.
        self._latin1_titles = pystray.Icon.__module__.endswith("_xorg")
        icon_class: Any = pystray.Icon
        if pystray.Icon.__module__.endswith("_win32"):
            from ghubai_tray.desktop.win_icon import sharp_icon_class

            icon_class = sharp_icon_class(pystray.Icon)
        elif pystray.Icon.__module__.endswith(("_gtk", "_appindicator")):
            icon_class = without_failing_notifications(pystray.Icon)
        self._icon = icon_class("ghubai-tray", icon_for(snap, ICON_SIZE), self._title(snap),
                                menu=pystray.Menu(self._pystray_items))
        install_quit_signals(self.quit, glib=False)
        code = 0
        try:
            self._icon.run(setup=self._setup)
        except Exception as exc:  # GLib errors at stop without a notification daemon
            if not self._quitting.is_set():
                # No icon: the worker stops too, or it would run where no one sees it.
                log.exception("the tray icon could not run, so GhubAi Tray stops rather than "
                              "share where you cannot see it ('ghubai-tray --headless' runs "
                              "it without a tray)")
                code = 1
            log.debug("the icon stopped with %s", type(exc).__name__)
        self._shutdown()
        return code

    def _setup(self, icon: Any) -> None:
        """Runs on pystray's own non-daemon thread: start things and return at once.

        Showing the icon and drawing it wait for the icon's loop; if a Quit
        stops that loop first, a call made from here would wait forever and
        hold the process open. The daemon refresh thread makes those calls.
        """
        if "gtk" in type(icon).__module__ or "appindicator" in type(icon).__module__:
            install_quit_signals(self.quit, glib=True)
        backend = type(icon).__module__.rsplit("._", 1)[-1]
        log.info("tray started (%s backend)", backend)
        if not icon.HAS_MENU:
            log.warning("%s", texts.NO_MENU)
        threading.Thread(target=self._refresh_loop, name="tray-refresh", daemon=True).start()
        threading.Thread(target=self._seen.watch, args=(icon,), name="tray-visible",
                         daemon=True).start()
        self._nudge.set()

    def show(self) -> None:
        """Come forward (from any thread) when the app is started again: its window is
        Settings, and a notification says why it opened."""
        log.info("started again: showing the settings of the one that runs")
        self._desktop_job(Ui.SETTINGS)
        if self._icon is not None and self._icon.HAS_NOTIFICATION:
            with contextlib.suppress(Exception):
                self._icon.notify(texts.SHOWN_AGAIN, texts.APP)

    def quit(self) -> None:
        """Start quitting and return at once, from any thread.

        The worker starts draining now while the icon shows it quitting; once
        the worker has stopped, the icon goes and ``run()`` returns. A watchdog
        makes sure the process ends within the grace period plus 2 s even if
        the icon's loop never returns: python-xlib's threaded mode can
        deadlock while the xorg fallback stops.
        """
        if self._quitting.is_set():
            return
        self._quitting.set()
        self._quit_started = time.monotonic()
        self._nudge.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self.worker.submit(Stop(self._grace))
        threading.Thread(target=self._stop_icon, daemon=True, name="tray-quit").start()

    def _stop_icon(self) -> None:
        # The icon stays while the worker finishes what runs, and says so ("Quitting:
        # finishing 1 request…"), so a Quit that takes a few seconds is never a mystery.
        self._thread.join(max(0.0, self._quit_time_left() - 1.0))
        self._icon_stopping.set()
        self._nudge.set()  # the refresher ends
        if self._icon is not None:
            # icon.stop() waits for the icon's loop: from a thread of its own, so
            # that a stuck loop cannot keep the watchdog below from acting.
            threading.Thread(target=self._icon.stop, daemon=True, name="tray-stop").start()
        # The main thread needs a moment after the worker to log and return.
        if self._finished.wait(min(1.0, max(0.5, self._quit_time_left()))):
            return
        log.error("the tray icon did not stop; exiting without it")
        logging.shutdown()
        os._exit(0)

    def _quit_time_left(self) -> float:
        """Seconds left of Quit's budget: the grace period plus 2 s from the click."""
        return max(0.0, self._quit_started + self._grace + 2 - time.monotonic())

    def _shutdown(self) -> None:
        """On the main thread once the icon's loop has returned."""
        self.quit()  # the loop may also end on its own (the tray host went away)
        self._settings.close()
        self._activity.close()
        self._seen.close()
        self._thread.join(self._quit_time_left())
        if self._thread.is_alive():
            log.error("the worker did not stop within %g s; exiting anyway", self._grace + 2)
        log.info("quit in %.1f s", time.monotonic() - self._quit_started)
        self._finished.set()

    def _run_worker(self) -> None:
        try:
            self._worker_main()
        except Exception:
            log.exception("the worker stopped unexpectedly")
        if self.worker.snapshot.updating is not None and not self._quitting.is_set():
            # it stopped for an update's installer, which waits for this process to end
            log.info("quitting for the installer")
            self.quit()

    # -- snapshots in, icon and menu out ---------------------------------------

    def _on_snapshot(self, snap: Snapshot) -> None:
        """On the worker's thread: remember, nudge, return at once."""
        self._latest = snap
        self._nudge.set()

    def _refresh_loop(self) -> None:
        if self._icon_stopping.is_set():
            return
        try:
            self._icon.visible = True
        except Exception:
            log.exception("showing the tray icon failed")
        # kind starts as None, so the first pass sets the image once more now that the
        # icon is embedded: some XEmbed trays first embed it 1 pixel wide and only grow
        # it on the next image change.
        kind, title = None, None
        while not self._icon_stopping.is_set():
            self._nudge.wait()
            self._nudge.clear()
            if self._icon_stopping.is_set():
                return
            snap = self._latest
            try:
                if icon_kind(snap) != kind:
                    kind = icon_kind(snap)
                    self._icon.icon = icon_for(snap, ICON_SIZE)
                if self._title(snap) != title:
                    title = self._title(snap)
                    self._icon.title = title
                    self._history.append((datetime.now(), status_line(snap)))
                if self._render(snap) != self._shown:
                    self._update_menu()
                self._notify(snap)
                self._first_run(snap)
            except Exception:
                log.exception("refreshing the tray icon failed")

    def _title(self, snap: Snapshot) -> str:
        title = title_for(snap)
        if self._latin1_titles:
            title = title.replace("—", "-").replace("…", "...")
            title = title.encode("latin-1", "replace").decode("latin-1")
        return title

    def _desktop(self) -> Desktop:
        return Desktop(version=__version__, autostart=self._autostart_on)

    def _render(self, snap: Snapshot) -> tuple[Item, ...]:
        return render_menu(snap, self._desktop())

    def _pystray_items(self) -> tuple[Any, ...]:
        """Called by pystray whenever it (re)builds the menu: render the latest, whole."""
        items = self._render(self._latest)
        self._shown = items
        return to_pystray(items, self._click)

    def _update_menu(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            from pystray._util import win32

            handlers = self._icon._message_handlers
            handlers.setdefault(WM_GHUBAI_UPDATE_MENU, lambda *_: self._icon.update_menu())
            win32.PostMessage(self._icon._hwnd, WM_GHUBAI_UPDATE_MENU, 0, 0)
        else:
            self._icon.update_menu()

    def _notify(self, snap: Snapshot) -> None:
        self._episodes, messages = notifications.update(self._episodes, snap, time.monotonic(),
                                                        deb=system.installed_by_deb())
        for message in messages:
            log.info("notification: %s", message)
            if self._icon.HAS_NOTIFICATION:
                self._icon.notify(message, texts.APP)

    def _first_run(self, snap: Snapshot) -> None:
        """Settings opens by itself once when the app cannot share until the owner enters
        something there: a hub, or the token a hub needs."""
        if self._offer_settings and snap.state in (State.NOT_CONFIGURED, State.TOKEN_NEEDED):
            self._offer_settings = False
            self._settings.open()

    # -- clicks ------------------------------------------------------------------

    def _click(self, action: Action) -> None:
        """On the icon's thread: hand work elsewhere and return at once."""
        what = resolve(action, datetime.now().astimezone())
        log.info("menu: %s", what)
        if isinstance(what, Ui):
            if what is Ui.QUIT:
                self.quit()
            else:
                threading.Thread(target=self._desktop_job, args=(what,), daemon=True,
                                 name=f"tray-{what.name.lower()}").start()
        else:
            self._submit(what)

    def _submit(self, command: Command) -> None:
        self.worker.submit(command)

    def _desktop_job(self, what: Ui) -> None:
        try:
            if what in (Ui.SETTINGS, Ui.SET_UP):
                self._settings.open()
            elif what is Ui.ACTIVITY:
                self._activity.open()
            elif what is Ui.TOGGLE_AUTOSTART and self._autostart is not None:
                self._autostart.set(not self._autostart_on)
                self._autostart_on = _autostart_enabled(self._autostart)
                self._nudge.set()
            elif what is Ui.OPEN_LOGS:
                system.open_path(log_dir())
            elif what is Ui.UPDATE and (update := self._latest.update) is not None:
                system.open_url(update.page)
            elif what is Ui.COPY_DIAGNOSTICS:
                self._copy_diagnostics()
            elif what is Ui.ABOUT and self._icon.HAS_NOTIFICATION:
                self._icon.notify(texts.ABOUT_TEXT.format(version=__version__), texts.APP)
        except Exception:
            log.exception("the menu action %s failed", what.value)

    def _copy_diagnostics(self) -> None:
        backend = type(self._icon).__module__.rsplit("._", 1)[-1]
        message = system.share_diagnostics(system.diagnostics(
            self.worker.snapshot.settings, list(self._history), self._log_file, backend))
        log.info("%s", message)
        if self._icon.HAS_NOTIFICATION:
            self._icon.notify(message, texts.APP)


def _autostart_enabled(autostart: Autostart | None) -> bool | None:
    """Whether the app starts at login; None where that cannot be read (the menu's
    check box is then greyed out)."""
    if autostart is None:
        return None
    try:
        return autostart.enabled()
    except OSError:
        return None


def without_failing_notifications(base: type[Any]) -> type[Any]:
    """pystray's Gtk and AppIndicator ``Icon``, started even when the desktop's notification
    service fails: pystray connects to it before the icon's loop runs, so a service that
    crashes as D-Bus starts it stopped the whole tray. The icon and menu still say what is
    wrong without notifications."""

    class Icon(base):  # type: ignore[misc]
        notifications = True

        def _initialize(self) -> None:
            try:
                super()._initialize()
            except Exception as exc:
                log.warning("desktop notifications are not available (%s); the tray icon and "
                            "its menu still show every problem", str(exc).splitlines()[0][:200])
                self.notifications = False
                self._mark_ready()

        def _notify(self, message: str, title: str | None = None) -> None:
            if self.notifications:
                super()._notify(message, title)

        def _remove_notification(self) -> None:
            if self.notifications:
                super()._remove_notification()

    Icon.__module__ = base.__module__  # the backend, for whoever asks which one runs
    return Icon


def install_quit_signals(quit_app: Callable[[], None], glib: bool) -> None:
    """Quit cleanly on SIGINT/SIGTERM.

    Gtk's main loop runs in C, so a Python signal handler would wait for the
    next Python callback; GLib's own signal source runs promptly inside the
    loop. It is installed from ``_setup``, after pystray's Gtk start-up has
    reset SIGINT to its default.
    """
    def on_glib_signal() -> bool:
        log.info("signal received: quitting")
        quit_app()  # returns at once: the stopping happens on threads of its own
        return False  # remove the GLib source

    if glib:
        try:
            from gi.repository import GLib

            for sig in (signal.SIGINT, signal.SIGTERM):
                GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, on_glib_signal)
            return
        except (ImportError, AttributeError, ValueError):
            pass
    if threading.current_thread() is threading.main_thread():
        signalled = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: signalled.set())
        threading.Thread(target=_quit_when, args=(signalled, quit_app), daemon=True,
                         name="tray-signals").start()


def _quit_when(signalled: threading.Event, quit_app: Callable[[], None]) -> None:
    """Quit from a thread of its own once a signal has come.

    A Python signal handler runs on the main thread between two bytecodes,
    possibly inside python-xlib while it holds its display locks, where
    taking a lock (starting a thread, submitting to the worker) could
    deadlock. The handler only sets an event; this thread quits.
    """
    signalled.wait()
    log.info("signal received: quitting")
    quit_app()


class SeenGuard:
    """Lets the worker share once a tray shows the icon, or once the owner chose to share
    without one: never lend the GPU where the owner cannot see, pause or quit it."""

    def __init__(self, submit: Callable[[Command], None], quitting: threading.Event,
                 quit_app: Callable[[], None]) -> None:
        self._submit = submit
        self._quitting = quitting
        self._quit = quit_app
        self._window: subprocess.Popen[bytes] | None = None

    def watch(self, icon: Any) -> None:
        deadline = time.monotonic() + TRAY_WAIT
        while (present := tray_host_present()) is False:
            if time.monotonic() >= deadline or self._quitting.wait(0.25):
                break
        if self._quitting.is_set():
            return
        if present is not False:
            if present is None:
                log.info("cannot tell whether a tray shows the icon (no X display or session "
                         "bus to ask); sharing as usual")
            self._submit(TrayShown())
            return
        log.warning("no tray shows the icon (no StatusNotifier host, no XEmbed tray): "
                    "sharing nothing until the owner chooses")
        if icon.HAS_NOTIFICATION:
            icon.notify(texts.NOTIFY_NO_TRAY, texts.APP)
        window = self._window = subprocess.Popen(
            [*launch_command(), "--no-tray-window"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, env=child_environment())
        # The window waits for the owner, and this keeps looking: a panel that comes up
        # late (a slow login) closes the window and lets sharing start by itself.
        while (code := _wait(window, TRAY_RECHECK)) is None:
            if self._quitting.is_set():
                return
            if tray_host_present():
                log.info("a tray now shows the icon: sharing may start")
                window.terminate()
                self._submit(TrayShown())
                return
        if code == 0:
            log.info("the owner chose to share without a tray icon")
            self._submit(TrayShown())
        elif not self._quitting.is_set():
            log.info("the owner chose to quit: no tray shows the icon")
            self._quit()

    def close(self) -> None:
        if self._window is not None and self._window.poll() is None:
            self._window.terminate()


def _wait(process: subprocess.Popen[bytes], seconds: float) -> int | None:
    """The process's exit code, or None if it still runs after ``seconds``."""
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


class WindowProcess:
    """One of the app's windows, a process of its own (``ghubai-tray FLAG``): at most one
    open at a time; closed when the app quits; ``on_exit`` told its exit code."""

    def __init__(self, flag: str, args: Callable[[], list[str]] = list,
                 on_exit: Callable[[int], None] | None = None) -> None:
        self._flag = flag
        self._args = args
        self._on_exit = on_exit
        self._window: subprocess.Popen[bytes] | None = None

    def open(self) -> None:
        if self._window is not None and self._window.poll() is None:
            return  # already open
        self._window = subprocess.Popen(
            [*launch_command(), self._flag, *self._args()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=child_environment())
        if self._on_exit is not None:
            threading.Thread(target=self._await, args=(self._window, self._on_exit),
                             daemon=True, name=self._flag.strip("-")).start()

    def close(self) -> None:
        """Quitting the app closes its window too."""
        window = self._window
        if window is not None and window.poll() is None:
            window.terminate()

    @staticmethod
    def _await(window: subprocess.Popen[bytes], on_exit: Callable[[int], None]) -> None:
        on_exit(window.wait())


class SettingsWindowLauncher(WindowProcess):
    """The Settings window: when it saved, the new settings (and token) go to the worker."""

    def __init__(self, submit: Callable[[Command], None], flags: dict[str, Any]) -> None:
        super().__init__("--settings-window", lambda: flag_args(flags), self._saved)
        self._submit = submit
        self._flags = flags

    def _saved(self, code: int) -> None:
        if code != 0:
            return  # closed without saving
        try:
            settings = load_settings(flags=self._flags)
        except Exception:
            log.exception("the new settings cannot be read")
            return
        log.info("settings changed: applying them")
        self._submit(ApplySettings(settings))
        self._submit(TokenChanged())


def to_pystray(items: tuple[Item, ...], click: Callable[[Action], None]) -> tuple[Any, ...]:
    """The thin adapter: our menu description to pystray objects."""
    import pystray

    def build(item: Item) -> Any:
        if item.is_separator:
            return pystray.Menu.SEPARATOR
        if item.submenu:
            return pystray.MenuItem(item.text, pystray.Menu(*(build(i) for i in item.submenu)),
                                    enabled=item.enabled)
        # pystray counts a callback's parameters (defaults included), so closures
        # are made by factories rather than with default-argument lambdas.
        handler = None if item.action is None else _on_click(click, item.action)
        checked = None if item.checked is None else _constant(item.checked)
        return pystray.MenuItem(item.text, handler, checked=checked, enabled=item.enabled,
                                default=item.default)

    return tuple(build(i) for i in items)


def _on_click(click: Callable[[Action], None], action: Action) -> Callable[[Any, Any], None]:
    def handler(_icon: Any, _item: Any) -> None:
        click(action)

    return handler


def _constant(value: bool) -> Callable[[Any], bool]:
    def read(_item: Any) -> bool:
        return value

    return read


def _set_program_name() -> None:
    """Name the process for the desktop (window class, notifications), not ``__main__.py``."""
    try:
        from gi.repository import GLib

        GLib.set_prgname("ghubai-tray")
        GLib.set_application_name(texts.APP)
        _route_gtk_messages(GLib)
    except (ImportError, AttributeError):
        pass


# A GTK 3 assertion that fires once at every start when AppIndicator falls back to an
# XEmbed tray icon, and means nothing for us (the icon shows and works): not a line
# for the owner to worry about on the terminal.
KNOWN_GTK_NOISE = ("gdk_window_thaw_toplevel_updates",)


def _route_gtk_messages(glib: Any) -> None:
    """Gtk's and Gdk's warnings go to our log, where they belong, instead of stderr;
    the known harmless one at DEBUG, any other as a warning."""
    def handler(domain: str, _level: Any, message: str, _data: Any) -> None:
        known = any(noise in message for noise in KNOWN_GTK_NOISE)
        log.log(logging.DEBUG if known else logging.WARNING, "%s: %s", domain, message)

    levels = glib.LogLevelFlags.LEVEL_CRITICAL | glib.LogLevelFlags.LEVEL_WARNING
    for domain in ("Gdk", "Gtk"):
        glib.log_set_handler(domain, levels, handler, None)

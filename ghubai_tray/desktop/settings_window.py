"""The settings window (tkinter), run as its own process so the tray never waits on it.

The tray starts ``ghubai-tray --settings-window`` and carries on; this process
shows the form, checks every field with the same parsers as the config file
(errors appear next to the field, nothing is saved half-valid), writes
``config.toml`` and the keyring, and exits 0 when something was saved, so
the tray reloads. "Test connection" runs the doctor's checks on what is in
the form, on a thread, so the window stays responsive too; so does every
keyring call (reading whether a token is stored, storing or removing one),
since a keyring may wait on an unlock prompt: Tk is touched only from its
own thread, which polls for the results.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import tkinter as tk
from collections.abc import Callable
from dataclasses import replace
from tkinter import ttk
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ghubai_tray.adapters.config import load_settings, save_settings
from ghubai_tray.adapters.credentials import (
    delete_token,
    keyring_locked,
    load_token,
    store_token,
)
from ghubai_tray.adapters.owner_only import TOKEN_FROM_VARIABLE
from ghubai_tray.core import texts
from ghubai_tray.core.errors import ConfigError, TokenStoreError
from ghubai_tray.core.settings import BY_KEY, Settings
from ghubai_tray.desktop.tk_scaling import dpi_aware, scale_to_desktop

T = TypeVar("T")
W = TypeVar("W", bound=ttk.Widget)
ConnectionTest = Callable[[Settings, str | None], tuple[str, bool]]
"""Test connection: the settings in the form and the token typed (if any) to the report
shown and whether all was well. Handed in by the composition root (it is the doctor), so
this window holds no network code."""
NOTE, ERROR = "#555555", "#c00000"
TITLE = texts.SETTINGS_TITLE
LIMITS = ("max_context", "max_output_tokens", "max_keep_alive", "max_images", "max_image_size",
          "max_messages", "max_embedding_inputs", "max_tools", "max_stop_strings",
          "max_prompt_size")
UNLOCK_POLL = 1.0  # seconds between asking a locked keyring (no prompt) whether it opened
LIMITS_PER_COLUMN = 5  # two columns of limits, so the window fits a 768-pixel screen
RULE_TOGGLES = ("owner_first", "pause_when_fullscreen", "pause_on_battery",
                "share_when_idle_only", "pause_when_gpu_busy")
RULE_NUMBERS = ("owner_first_hold", "idle_minutes")
GUARD_NUMBERS = ("max_gpu_temp", "resume_gpu_temp", "max_gpu_power", "daily_energy_kwh",
                 "daily_gpu_hours")
FIELDS = ("hub_url", "ollama_url", "allow_invalid_certs", "max_concurrent_requests",
          "check_for_updates", "schedule", *RULE_TOGGLES, *RULE_NUMBERS, *GUARD_NUMBERS,
          *LIMITS)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def complete_hub_url(text: str) -> str:
    """``hub.example.com`` as people type it, as the URL a hub answers at:
    ``https://hub.example.com/gridhub``. Anything with a scheme or a path stays as typed."""
    raw = text.strip()
    if not raw or " " in raw:
        return raw
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.path in ("", "/") and parts.hostname:
        raw = urlunsplit(parts._replace(path="/gridhub"))
    return raw


def locked_by(settings: Settings, key: str) -> str | None:
    """Where a value comes from when the window cannot change it: a variable or a flag
    wins over config.toml, so saving the field there would be silently ignored."""
    source = settings.source(key)
    return source if source.startswith(("the variable", "the flag")) else None


def save_both_or_neither(hub: str, fields: dict[str, Any], token: str, *,
                         remove: bool) -> None:
    """Save the token (or its removal) and the fields, both or neither.

    The keyring first: if it fails, the file has not changed. Then the file: if
    that fails, the keyring is put back as it was. Once, a failed keyring left
    config.toml half-saved behind "Not saved"."""
    changing = remove or bool(token.strip())
    before = load_token(hub) if changing else None
    if remove:
        delete_token(hub)
    elif token.strip():
        store_token(hub, token)
    try:
        save_settings(fields)
    except BaseException:
        if changing:
            with contextlib.suppress(TokenStoreError):
                if before is None:
                    delete_token(hub)
                else:
                    store_token(hub, before)
        raise


def validate_form(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse the form: the settings to save, and the error (in words) per invalid field."""
    parsed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in FIELDS:
        try:
            parsed[key] = BY_KEY[key].parse(values[key])
        except ValueError as exc:
            errors[key] = str(exc)[:1].upper() + str(exc)[1:]
    return (parsed if not errors else {}), errors


class SettingsWindow:
    def __init__(self, root: tk.Tk, settings: Settings, test_connection: ConnectionTest) -> None:
        self.root, self.settings, self.saved = root, settings, False
        self._test_connection = test_connection
        root.title(TITLE)
        root.resizable(False, False)
        outer = ttk.Frame(root, padding=16)
        outer.grid(sticky="nsew")
        # Three tabs, so that the window fits a 1366x768 screen with a taskbar (at most
        # 700 px high; two tabs needed 767): the hub and what to share, when to share
        # (the schedule and the automatic pauses), and the limits on each request.
        self.tabs = ttk.Notebook(outer)
        self.tabs.grid(row=0, column=0, sticky="nsew")
        frame = ttk.Frame(self.tabs, padding=8)
        self.when_tab = ttk.Frame(self.tabs, padding=8)
        self.limits_tab = ttk.Frame(self.tabs, padding=8)
        self.hardware_tab = ttk.Frame(self.tabs, padding=8)
        self.tabs.add(frame, text=texts.SETTINGS_TAB_SHARING)
        self.tabs.add(self.when_tab, text=texts.SETTINGS_TAB_WHEN)
        self.tabs.add(self.hardware_tab, text=texts.SETTINGS_TAB_HARDWARE)
        self.tabs.add(self.limits_tab, text=texts.SETTINGS_TAB_LIMITS)
        first_run = settings.source("hub_url") == "default"  # the seed's developer address
        self.vars: dict[str, tk.StringVar] = {
            "hub_url": tk.StringVar(value="" if first_run else settings.hub_url),
            "ollama_url": tk.StringVar(value=settings.ollama_url),
            "max_concurrent_requests": tk.StringVar(value=str(settings.max_concurrent_requests)),
            "schedule": tk.StringVar(value=", ".join(str(w) for w in settings.schedule)),
            **{key: tk.StringVar(value=_shown(getattr(settings, key)))
               for key in (*RULE_NUMBERS, *GUARD_NUMBERS, *LIMITS)},
        }
        self.toggles = {key: tk.BooleanVar(value=getattr(settings, key))
                        for key in (*RULE_TOGGLES, "check_for_updates")}
        self.insecure = tk.BooleanVar(value=settings.allow_invalid_certs)
        self.errors: dict[str, ttk.Label] = {}
        self.locked = {key: where for key in FIELDS if (where := locked_by(settings, key))}
        self.notes = {key: texts.SETTINGS_LOCKED.format(where=where)
                      for key, where in self.locked.items()}
        self.notes.setdefault("hub_url", texts.SETTINGS_HUB_EXAMPLE)
        self._completed = ""  # the hub URL this window completed, while the field holds it
        self.notes.setdefault("schedule", texts.SETTINGS_SCHEDULE_EXAMPLE)
        row = 0
        entries = []
        for key in ("hub_url", "ollama_url"):
            self._label(frame, key, row)
            entries.append(self._lockable(ttk.Entry(frame, textvariable=self.vars[key],
                                                    width=44), key))
            entries[-1].grid(row=row, column=1, sticky="we")
            row = self._error_row(frame, key, row + 1)
        entries[0].bind("<FocusOut>", lambda _: self._complete_hub())
        entries[0].focus_set()
        ttk.Label(frame, text=texts.SETTINGS_TOKEN).grid(row=row, column=0, sticky="w", pady=2)
        self.token = tk.StringVar()
        ttk.Entry(frame, textvariable=self.token, show="•", width=44).grid(row=row, column=1,
                                                                           sticky="we")
        row += 1
        self.token_state = ttk.Label(frame, foreground="#555", wraplength=420, text=(
            texts.SETTINGS_KEYRING_LATER if first_run else texts.SETTINGS_KEYRING_NOTE))
        if not first_run:
            # On a first run nothing is stored yet: the keyring is opened on Save, so the
            # desktop's password prompt (if any) comes after this window, not on top of it.
            self._in_background(self._token_state, self._show_token_state)
        self.token_state.grid(row=row, column=1, sticky="w")
        self.remove_token = tk.BooleanVar(value=False)
        ttk.Checkbutton(frame, text=texts.SETTINGS_REMOVE_TOKEN, variable=self.remove_token).grid(
            row=row + 1, column=1, sticky="w")
        row += 2
        self._label(frame, "max_concurrent_requests", row)
        self._lockable(ttk.Spinbox(frame, from_=1, to=64, width=6,
                                   textvariable=self.vars["max_concurrent_requests"]),
                       "max_concurrent_requests").grid(row=row, column=1, sticky="w")
        row = self._error_row(frame, "max_concurrent_requests", row + 1)
        self._lockable(ttk.Checkbutton(frame, text=texts.SETTINGS_LABELS["check_for_updates"],
                                       variable=self.toggles["check_for_updates"]),
                       "check_for_updates").grid(row=row, column=0, columnspan=2, sticky="w")
        self._label(self.when_tab, "schedule", 0)
        self._lockable(ttk.Entry(self.when_tab, textvariable=self.vars["schedule"], width=44),
                       "schedule").grid(row=0, column=1, sticky="we")
        self._rules(self.when_tab, self._error_row(self.when_tab, "schedule", 1))
        numbers_tab(self, self.hardware_tab, texts.SETTINGS_HARDWARE_NOTE, GUARD_NUMBERS)
        self._limits(self.limits_tab)
        self._result_and_buttons(outer, 1)

    def _limits(self, frame: ttk.Frame) -> None:
        """The Limits tab: the ceilings on one hub request, and the certificate switch."""
        ttk.Label(frame, text=texts.SETTINGS_LIMITS_NOTE, foreground="#555", wraplength=560).grid(
            row=0, column=0, columnspan=2, sticky="w", pady=(0, 2))
        columns = [ttk.Frame(frame), ttk.Frame(frame)]
        for i, column in enumerate(columns):
            column.grid(row=1, column=i, sticky="nw", padx=(0, 16))
        rows = [0, 0]
        for i, key in enumerate(LIMITS):
            side = i // LIMITS_PER_COLUMN
            column, row = columns[side], rows[side]
            self._label(column, key, row)
            self._lockable(ttk.Entry(column, textvariable=self.vars[key], width=10),
                           key).grid(row=row, column=1, sticky="w", padx=(6, 0))
            rows[side] = self._error_row(column, key, row + 1, wrap=200)
        row = 2
        self._lockable(ttk.Checkbutton(frame, text=texts.SETTINGS_LABELS["allow_invalid_certs"],
                                       variable=self.insecure), "allow_invalid_certs").grid(
            row=row, column=0, columnspan=2, sticky="w")
        self.warning = ttk.Label(frame, text="", foreground="#b35900", wraplength=420)
        self.warning.grid(row=row + 1, column=0, columnspan=2, sticky="w")
        self.insecure.trace_add("write", lambda *_: self._show_warning())
        self._show_warning()

    def _rules(self, frame: ttk.Frame, row: int) -> int:
        """The automatic pauses (README, When GhubAi shares): switches two by two, then
        their two numbers."""
        switches = ttk.Frame(frame)
        switches.grid(row=row, column=0, columnspan=2, sticky="w", pady=(6, 2))
        for i, key in enumerate(RULE_TOGGLES):
            text = texts.SETTINGS_LABELS[key]
            if key in self.locked:
                text += f" ({texts.SETTINGS_LOCKED.format(where=self.locked[key])})"
            self._lockable(ttk.Checkbutton(switches, text=text, variable=self.toggles[key]),
                           key).grid(
                row=i // 2, column=i % 2, sticky="w", padx=(0, 16))
        row += 1
        for key in RULE_NUMBERS:
            self._label(frame, key, row)
            self._lockable(ttk.Entry(frame, textvariable=self.vars[key], width=8),
                           key).grid(row=row, column=1, sticky="w")
            row = self._error_row(frame, key, row + 1)
        return row

    def _result_and_buttons(self, frame: ttk.Frame, row: int) -> None:
        box = ttk.Frame(frame)
        box.grid(row=row, column=0, columnspan=2, pady=(10, 4), sticky="we")
        self.result = tk.Text(box, height=7, width=70, state="disabled", wrap="word",
                              takefocus=0)
        scroll = ttk.Scrollbar(box, orient="vertical", command=self.result.yview)
        self.result.configure(yscrollcommand=scroll.set)
        self.result.grid(row=0, column=0, sticky="nsew")
        scroll.grid(row=0, column=1, sticky="ns")
        buttons = ttk.Frame(frame)
        buttons.grid(row=row + 1, column=0, columnspan=2, sticky="e")
        self.test_button = ttk.Button(buttons, text=texts.SETTINGS_TEST, command=self.test,
                                      underline=0)
        self.test_button.grid(row=0, column=0, padx=4)
        cancel = ttk.Button(buttons, text=texts.SETTINGS_CANCEL, command=self.root.destroy)
        cancel.grid(row=0, column=1, padx=4)
        self.save_button = ttk.Button(buttons, text=texts.SETTINGS_SAVE, command=self.save)
        self.save_button.grid(row=0, column=2, padx=4)
        self.root.bind("<Escape>", lambda _: self.root.destroy())
        self.root.bind("<Return>", lambda _: self.save())
        self.root.bind("<Alt-t>", lambda _: self.test())  # the underlined T of Test connection

    def _label(self, frame: ttk.Frame, key: str, row: int) -> None:
        ttk.Label(frame, text=texts.SETTINGS_LABELS[key]).grid(row=row, column=0, sticky="w",
                                                               pady=2)

    def _error_row(self, frame: ttk.Frame, key: str, row: int, wrap: int = 420) -> int:
        self.errors[key] = ttk.Label(frame, text=self.notes.get(key, ""), foreground=NOTE,
                                     wraplength=wrap)
        self.errors[key].grid(row=row, column=1, sticky="w")
        return row + 1

    def _lockable(self, widget: W, key: str) -> W:
        """A field a variable or flag decides is shown, greyed out, with where it comes from."""
        if key in self.locked:
            widget.state(["disabled"])
        return widget

    def _complete_hub(self) -> None:
        """Complete a bare host name, and say so only while the field holds what was
        completed: once the owner edits it (to http://, say), the note goes back."""
        typed = self.vars["hub_url"].get()
        completed = complete_hub_url(typed)
        if completed != typed.strip():
            self.vars["hub_url"].set(completed)
            self.notes["hub_url"] = texts.SETTINGS_COMPLETED.format(url=completed)
            self._completed = completed
        elif typed.strip() != self._completed and "hub_url" not in self.locked:
            self.notes["hub_url"] = texts.SETTINGS_HUB_EXAMPLE

    def _token_state(self) -> str | None:
        """The keyring line; None when the keyring is locked (its prompt unanswered, closed,
        or not shown), which is not "cannot be used" and changes when the owner unlocks it."""
        if os.environ.get(TOKEN_FROM_VARIABLE):
            return texts.SETTINGS_TOKEN_FROM_VARIABLE
        try:
            stored = load_token(self.settings.hub_url)
        except TokenStoreError as exc:
            return None if keyring_locked() else texts.SETTINGS_NO_KEYRING.format(why=exc)
        return texts.SETTINGS_TOKEN_STORED if stored else texts.SETTINGS_NO_TOKEN

    def _show_token_state(self, text: str | None | Exception) -> None:
        if text is None:
            self.token_state.configure(text=texts.SETTINGS_KEYRING_LOCKED)
            self._in_background(until_unlocked, lambda _: self._in_background(
                self._token_state, self._show_token_state))
            return
        self.token_state.configure(
            text=text if isinstance(text, str) else texts.SETTINGS_NO_KEYRING.format(why=text))

    def _show_warning(self) -> None:
        self.warning.configure(text=texts.SETTINGS_INSECURE_WARNING if self.insecure.get() else "")

    def _form(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The fields to save (those a variable or flag decides left out) and the errors."""
        self._complete_hub()
        values: dict[str, Any] = {k: v.get() for k, v in self.vars.items()}
        parsed, errors = validate_form({**values, "allow_invalid_certs": self.insecure.get(),
                                        **{k: v.get() for k, v in self.toggles.items()}})
        for key, label in self.errors.items():
            label.configure(text=errors.get(key, self.notes.get(key, "")),
                            foreground=ERROR if key in errors else NOTE)
        if errors:  # the first field in error in view, whichever tab it is on
            first = next(key for key in FIELDS if key in errors)
            tab = (self.limits_tab if first in LIMITS else self.hardware_tab
                   if first in GUARD_NUMBERS else self.when_tab
                   if first in ("schedule", *RULE_NUMBERS) else 0)
            self.tabs.select(tab)  # type: ignore[no-untyped-call]
        return {k: v for k, v in parsed.items() if k not in self.locked}, errors

    def _say(self, text: str) -> None:
        self.result.configure(state="normal")
        self.result.delete("1.0", "end")
        self.result.insert("end", text)
        self.result.configure(state="disabled")

    def _in_background(self, work: Callable[[], T], done: Callable[[T | Exception], None]
                       ) -> None:
        """Run ``work`` off the Tk thread; ``done`` gets its result (or error) on it."""
        results: queue.Queue[T | Exception] = queue.Queue()

        def run() -> None:
            try:
                results.put(work())
            except Exception as exc:  # handed to the Tk thread
                results.put(exc)

        def poll() -> None:
            try:
                outcome = results.get_nowait()
            except queue.Empty:
                self.root.after(100, poll)
                return
            done(outcome)

        threading.Thread(target=run, daemon=True, name="settings-keyring").start()
        self.root.after(100, poll)

    def save(self) -> None:
        parsed, errors = self._form()
        if errors:
            self._say(texts.SETTINGS_FIX_FIRST)
            return
        remove, token = self.remove_token.get(), self.token.get()

        hub = parsed.get("hub_url", self.settings.hub_url)

        def work() -> None:
            save_both_or_neither(hub, parsed, token, remove=remove)

        def done(outcome: None | Exception) -> None:
            self.save_button.state(["!disabled"])
            if isinstance(outcome, ConfigError | TokenStoreError | OSError):
                self._say(texts.SETTINGS_NOT_SAVED.format(why=outcome))
                return
            if isinstance(outcome, Exception):
                raise outcome
            self.saved = True
            self._say(texts.SETTINGS_SAVED)
            self.root.after(1200, self.root.destroy)  # long enough to be read

        self.save_button.state(["disabled"])
        self._say(texts.SETTINGS_SAVING)
        self._in_background(work, done)

    def test(self) -> None:
        parsed, errors = self._form()
        if errors:
            self._say(texts.SETTINGS_FIX_TO_TEST)
            return
        self.test_button.state(["disabled"])
        self._say(texts.SETTINGS_TESTING)
        candidate = replace(self.settings, **parsed)
        token = self.token.get().strip() or None

        def work() -> None:
            report, ok = self._test_connection(candidate, token)
            results.put((report, ok))

        def poll() -> None:  # on the Tk thread: Tk must not be called from the worker thread
            try:
                report, ok = results.get_nowait()
            except queue.Empty:
                self.root.after(100, poll)
                return
            # After a failed test, Save says what it would do: save what did not work.
            self.save_button.configure(text=texts.SETTINGS_SAVE if ok
                                       else texts.SETTINGS_SAVE_ANYWAY)
            self._say(report if ok else f"{report}\n\n{texts.SETTINGS_FAILED_TEST}")
            self.test_button.state(["!disabled"])

        results: queue.Queue[tuple[str, bool]] = queue.Queue()
        threading.Thread(target=work, daemon=True, name="settings-test").start()
        self.root.after(100, poll)


def numbers_tab(window: SettingsWindow, frame: ttk.Frame, note: str, keys: tuple[str, ...]
                ) -> None:
    """A tab of numbers under a note: the hardware guard's and the daily budgets'."""
    ttk.Label(frame, text=note, foreground="#555", wraplength=560).grid(
        row=0, column=0, columnspan=2, sticky="w", pady=(0, 2))
    row = 1
    for key in keys:
        window._label(frame, key, row)
        window._lockable(ttk.Entry(frame, textvariable=window.vars[key], width=8),
                         key).grid(row=row, column=1, sticky="w", padx=(6, 0))
        row = window._error_row(frame, key, row + 1, wrap=300)


def main(test_connection: ConnectionTest, flags: dict[str, Any] | None = None) -> int:
    """Show the window; 0 when settings were saved, 1 when closed without saving.
    ``flags`` are the tray's own: the fields they decide are shown locked."""
    try:
        settings = load_settings(flags=flags)
    except ConfigError:
        settings = Settings()  # the window is how a broken file gets fixed
    dpi_aware()
    root = tk.Tk(className="ghubai-tray-settings")
    scale_to_desktop(root)
    window = SettingsWindow(root, settings, test_connection)
    root.mainloop()
    return 0 if window.saved else 1



def until_unlocked() -> None:
    """Off the Tk thread: wait until the keyring is unlocked (asked without a prompt),
    or cannot be asked any more."""
    while keyring_locked() is True:
        time.sleep(UNLOCK_POLL)

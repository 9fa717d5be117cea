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

import queue
import threading
import tkinter as tk
from collections.abc import Callable
from dataclasses import replace
from tkinter import ttk
from typing import Any, TypeVar

from ghubai_tray.adapters.config import load_settings, save_settings
from ghubai_tray.adapters.credentials import delete_token, load_token, store_token
from ghubai_tray.core.errors import ConfigError, TokenStoreError
from ghubai_tray.core.settings import BY_KEY, Settings

T = TypeVar("T")
ConnectionTest = Callable[[Settings, str | None], str]
"""Test connection: the settings in the form and the token typed (if any) to the report shown.
Handed in by the composition root (it is the doctor), so this window holds no network code."""
TITLE = "GhubAi Tray settings"
LIMITS = ("max_context", "max_output_tokens", "max_keep_alive", "max_images", "max_image_size")
FIELDS = ("hub_url", "ollama_url", "allow_invalid_certs", "max_concurrent_requests", *LIMITS)
LABELS = {"hub_url": "Hub URL", "ollama_url": "Ollama URL",
          "allow_invalid_certs": "Accept untrusted certificates (development hubs only)",
          "max_concurrent_requests": "Requests at the same time",
          "max_context": "Largest context (tokens)",
          "max_output_tokens": "Longest answer (tokens)",
          "max_keep_alive": "Keep a model loaded after a request (s)",
          "max_images": "Images per request",
          "max_image_size": "Largest image (bytes, or like 10MiB)"}
LIMITS_NOTE = "Limits on each request from the hub (see the README, What the hub can do):"
INSECURE_WARNING = ("Anyone between you and the hub could read and change the traffic. "
                    "Use this only for a development hub.")


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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
        frame = ttk.Frame(root, padding=16)
        frame.grid(sticky="nsew")
        self.vars: dict[str, tk.StringVar] = {
            "hub_url": tk.StringVar(value=settings.hub_url),
            "ollama_url": tk.StringVar(value=settings.ollama_url),
            "max_concurrent_requests": tk.StringVar(value=str(settings.max_concurrent_requests)),
            **{key: tk.StringVar(value=_shown(getattr(settings, key))) for key in LIMITS},
        }
        self.insecure = tk.BooleanVar(value=settings.allow_invalid_certs)
        self.errors: dict[str, ttk.Label] = {}
        row = 0
        entries = []
        for key in ("hub_url", "ollama_url"):
            ttk.Label(frame, text=LABELS[key]).grid(row=row, column=0, sticky="w", pady=2)
            entries.append(ttk.Entry(frame, textvariable=self.vars[key], width=44))
            entries[-1].grid(row=row, column=1, sticky="we")
            row = self._error_row(frame, key, row + 1)
        entries[0].focus_set()
        ttk.Label(frame, text="Provider token").grid(row=row, column=0, sticky="w", pady=2)
        self.token = tk.StringVar()
        ttk.Entry(frame, textvariable=self.token, show="•", width=44).grid(row=row, column=1,
                                                                           sticky="we")
        row += 1
        self.token_state = ttk.Label(frame, text="Checking the OS keyring…", foreground="#555",
                                     wraplength=420)
        self._in_background(self._token_state, self._show_token_state)
        self.token_state.grid(row=row, column=1, sticky="w")
        self.remove_token = tk.BooleanVar(value=False)
        ttk.Checkbutton(frame, text="Remove the stored token", variable=self.remove_token).grid(
            row=row + 1, column=1, sticky="w")
        row += 2
        ttk.Label(frame, text=LABELS["max_concurrent_requests"]).grid(row=row, column=0,
                                                                       sticky="w", pady=2)
        ttk.Spinbox(frame, from_=1, to=64, width=6,
                    textvariable=self.vars["max_concurrent_requests"]).grid(row=row, column=1,
                                                                            sticky="w")
        row = self._error_row(frame, "max_concurrent_requests", row + 1)
        ttk.Label(frame, text=LIMITS_NOTE, foreground="#555", wraplength=560).grid(
            row=row, column=0, columnspan=2, sticky="w", pady=(8, 2))
        row += 1
        for key in LIMITS:
            ttk.Label(frame, text=LABELS[key]).grid(row=row, column=0, sticky="w", pady=2)
            ttk.Entry(frame, textvariable=self.vars[key], width=12).grid(row=row, column=1,
                                                                         sticky="w")
            row = self._error_row(frame, key, row + 1)
        ttk.Checkbutton(frame, text=LABELS["allow_invalid_certs"],
                        variable=self.insecure).grid(row=row, column=0,
                                                                        columnspan=2, sticky="w")
        self.warning = ttk.Label(frame, text="", foreground="#b35900", wraplength=420)
        self.warning.grid(row=row + 1, column=0, columnspan=2, sticky="w")
        self.insecure.trace_add("write", lambda *_: self._show_warning())
        self._show_warning()
        row += 2
        self.result = tk.Text(frame, height=7, width=70, state="disabled", wrap="word",
                              takefocus=0)
        self.result.grid(row=row, column=0, columnspan=2, pady=(10, 4))
        buttons = ttk.Frame(frame)
        buttons.grid(row=row + 1, column=0, columnspan=2, sticky="e")
        self.test_button = ttk.Button(buttons, text="Test connection", command=self.test)
        self.test_button.grid(row=0, column=0, padx=4)
        ttk.Button(buttons, text="Cancel", command=root.destroy).grid(row=0, column=1, padx=4)
        self.save_button = ttk.Button(buttons, text="Save", command=self.save)
        self.save_button.grid(row=0, column=2, padx=4)
        root.bind("<Escape>", lambda _: root.destroy())
        root.bind("<Return>", lambda _: self.save())

    def _error_row(self, frame: ttk.Frame, key: str, row: int) -> int:
        self.errors[key] = ttk.Label(frame, text="", foreground="#c00000", wraplength=420)
        self.errors[key].grid(row=row, column=1, sticky="w")
        return row + 1

    def _token_state(self) -> str:
        try:
            stored = load_token(self.settings.hub_url)
        except TokenStoreError as exc:
            return f"The OS keyring cannot be used: {exc}"
        return ("A token is stored (type a new one to replace it)" if stored
                else "No token is stored for this hub")

    def _show_token_state(self, text: str | Exception) -> None:
        self.token_state.configure(
            text=text if isinstance(text, str) else f"The OS keyring cannot be used: {text}")

    def _show_warning(self) -> None:
        self.warning.configure(text=INSECURE_WARNING if self.insecure.get() else "")

    def _form(self) -> tuple[dict[str, Any], dict[str, str]]:
        values: dict[str, Any] = {k: v.get() for k, v in self.vars.items()}
        parsed, errors = validate_form({**values, "allow_invalid_certs": self.insecure.get()})
        for key, label in self.errors.items():
            label.configure(text=errors.get(key, ""))
        return parsed, errors

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
            self._say("Nothing was saved: fix the fields marked in red.")
            return
        remove, token = self.remove_token.get(), self.token.get()

        def work() -> None:
            # The keyring first: if it fails, config.toml has not changed either.
            hub = parsed["hub_url"]
            if remove:
                delete_token(hub)
            elif token.strip():
                store_token(hub, token)
            save_settings(parsed)

        def done(outcome: None | Exception) -> None:
            self.save_button.state(["!disabled"])
            if isinstance(outcome, ConfigError | TokenStoreError | OSError):
                self._say(f"Not saved: {outcome}")
                return
            if isinstance(outcome, Exception):
                raise outcome
            self.saved = True
            self.root.destroy()

        self.save_button.state(["disabled"])
        self._say("Saving…")
        self._in_background(work, done)

    def test(self) -> None:
        parsed, errors = self._form()
        if errors:
            self._say("Fix the fields marked in red first.")
            return
        self.test_button.state(["disabled"])
        self._say("Testing…")
        candidate = replace(self.settings, **parsed)
        token = self.token.get().strip() or None

        def work() -> None:
            results.put(self._test_connection(candidate, token))

        def poll() -> None:  # on the Tk thread: Tk must not be called from the worker thread
            try:
                report = results.get_nowait()
            except queue.Empty:
                self.root.after(100, poll)
                return
            self._say(report)
            self.test_button.state(["!disabled"])

        results: queue.Queue[str] = queue.Queue()
        threading.Thread(target=work, daemon=True, name="settings-test").start()
        self.root.after(100, poll)


def main(test_connection: ConnectionTest) -> int:
    """Show the window; 0 when settings were saved, 1 when closed without saving."""
    try:
        settings = load_settings()
    except ConfigError:
        settings = Settings()  # the window is how a broken file gets fixed
    root = tk.Tk(className="ghubai-tray-settings")
    window = SettingsWindow(root, settings, test_connection)
    root.mainloop()
    return 0 if window.saved else 1


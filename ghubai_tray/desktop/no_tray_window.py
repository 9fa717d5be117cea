"""The window shown when no tray can show the icon: share anyway, or quit.

Run as a process of its own (``ghubai-tray --no-tray-window``), like the
Settings window, so the tray never waits on Tk. Exit 0: share anyway; 1:
quit (the window closed counts as Quit: a person who closes it wants the app
gone, and an invisible app must not go on lending the GPU).
"""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from ghubai_tray.core import texts

SHARE, QUIT = 0, 1


def main() -> int:
    root = tk.Tk(className="ghubai-tray-no-tray")
    root.title(texts.NO_TRAY_TITLE)
    root.resizable(False, False)
    choice = [QUIT]
    frame = ttk.Frame(root, padding=16)
    frame.grid(sticky="nsew")
    ttk.Label(frame, text=texts.NO_TRAY_TEXT, wraplength=420, justify="left").grid(
        row=0, column=0, columnspan=2, sticky="w")
    ttk.Label(frame, text=texts.NO_TRAY_HELP, wraplength=420, justify="left").grid(
        row=1, column=0, columnspan=2, sticky="w", pady=(8, 12))

    def choose(value: int) -> None:
        choice[0] = value
        root.destroy()

    share = ttk.Button(frame, text=texts.NO_TRAY_SHARE, command=lambda: choose(SHARE))
    share.grid(row=2, column=0, sticky="w")
    ttk.Button(frame, text=texts.NO_TRAY_QUIT, command=lambda: choose(QUIT)).grid(
        row=2, column=1, sticky="e")
    share.focus_set()
    root.bind("<Return>", lambda _event: choose(SHARE))
    root.bind("<Escape>", lambda _event: choose(QUIT))
    root.mainloop()
    return choice[0]

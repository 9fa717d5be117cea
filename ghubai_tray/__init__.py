"""GhubAi Tray: lend a home GPU to a GhubAi hub, from the system tray."""

__version__ = "0.1.0"

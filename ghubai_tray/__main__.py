"""Allows ``python -m ghubai_tray``, which is what the installers' launchers call."""

from ghubai_tray.cli import main

raise SystemExit(main())

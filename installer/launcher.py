"""The frozen app's entry point: the same command line as ``python -m ghubai_tray``."""

from ghubai_tray.cli import main

raise SystemExit(main())

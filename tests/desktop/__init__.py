"""Tests of ghubai_tray/desktop/ (the layout mirrors the package)."""

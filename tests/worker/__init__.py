"""Tests of ghubai_tray/worker/ (the layout mirrors the package)."""

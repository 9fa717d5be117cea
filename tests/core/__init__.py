"""Tests of ghubai_tray/core/ (the layout mirrors the package)."""

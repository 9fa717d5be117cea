"""Tests of ghubai_tray/adapters/ (the layout mirrors the package)."""

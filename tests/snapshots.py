"""Snapshots for render tests, named the way people think of them (``paused=True``).

A snapshot carries the effective settings (pause, URLs, sharing choices) in
``settings``; these helpers route such names there, so a test can still say
``snapshot(paused=True, hub_url=...)`` without spelling out a Settings.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from ghubai_tray.core.settings import Settings
from ghubai_tray.core.state import Snapshot

_SETTING_NAMES = {f.name for f in fields(Settings)}
_ALIASES = {"insecure_tls": "allow_invalid_certs"}


def changed(base: Snapshot, **changes: Any) -> Snapshot:
    """``base`` with ``changes``, settings and snapshot fields alike."""
    named = {_ALIASES.get(k, k): v for k, v in changes.items()}
    setting = {k: v for k, v in named.items() if k in _SETTING_NAMES}
    own = {k: v for k, v in named.items() if k not in _SETTING_NAMES}
    return replace(base, settings=replace(base.settings, **setting), **own)


def snapshot(**fields_: Any) -> Snapshot:
    return changed(Snapshot(settings=Settings(machine_name="test")), **fields_)

"""Settings layered: defaults, then ``config.toml``, then environment variables, then flags.

The settings themselves are described once, in :data:`ghubai_tray.core.settings.SETTINGS`;
this module reads and writes where they come from. An invalid value names the
setting, where it came from and what is expected, and the program exits 2
rather than start half-configured.

The file is ours: it is written atomically (temporary file, then rename),
keeps keys it does not know (a newer version may have written them) and
never holds the token, which lives in the OS keyring (:mod:`ghubai_tray.adapters.credentials`).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from ghubai_tray.adapters.logs import add_secret
from ghubai_tray.adapters.owner_only import write_atomically
from ghubai_tray.core.errors import ConfigError
from ghubai_tray.core.settings import (
    APP_NAME,
    BY_KEY,
    SETTINGS,
    TOKEN_KEYS,
    Settings,
    parse_bool,
    url_secrets,
)


def config_path() -> Path:
    """Where ``config.toml`` lives; ``GHUBAI_CONFIG`` moves it (tests, containers)."""
    override = os.environ.get("GHUBAI_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per setting (bools get ``--no-...`` too), defaulting to unset."""
    group = parser.add_argument_group("settings (override config.toml and the environment)")
    for s in SETTINGS:
        if s.parse is parse_bool:
            group.add_argument(s.flag, dest=f"set_{s.key}", action=argparse.BooleanOptionalAction,
                               default=None, help=s.help)
        else:
            group.add_argument(s.flag, dest=f"set_{s.key}", metavar="VALUE", default=None,
                               help=f"{s.help} (variable {s.env})")


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, by key."""
    return {s.key: v for s in SETTINGS if (v := getattr(args, f"set_{s.key}", None)) is not None}


def flag_args(flags: Mapping[str, Any]) -> list[str]:
    """The command-line flags that give ``flags`` again (the tray hands its own to the
    Settings window, so the window knows which fields a flag decides)."""
    args: list[str] = []
    for key, value in flags.items():
        flag = BY_KEY[key].flag
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, str(value)]
    return args


def read_file(path: Path) -> dict[str, Any]:
    """The raw TOML document (empty when there is no file); errors say what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None


def _check_no_token(doc: Mapping[str, Any], path: Path) -> None:
    found = sorted(k for k in doc if k.lower() in TOKEN_KEYS)
    if found:
        raise ConfigError(
            f"the config file {path} holds a token ({found[0]}): tokens belong in the OS "
            "keyring. Remove that line and run 'ghubai-tray token set'.")


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer defaults, file, environment and flags; raise :class:`ConfigError` on any bad value."""
    path = path or config_path()
    environ = os.environ if environ is None else environ
    doc = read_file(path)
    _check_no_token(doc, path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def take(key: str, raw: Any, source: str) -> None:
        try:
            values[key] = BY_KEY[key].parse(raw)
        except ValueError as exc:
            shown = raw if len(repr(raw)) < 80 else f"{repr(raw)[:77]}..."
            raise ConfigError(f"{key} from {source} is {shown!r}: {exc}") from None
        sources[key] = source

    for s in SETTINGS:
        if s.key in doc:
            take(s.key, doc[s.key], f"the config file {path}")
    for s in SETTINGS:
        if s.env in environ:
            take(s.key, environ[s.env], f"the variable {s.env}")
            if s.key == "shared_models":
                _implied_share_new(values, sources, environ[s.env], sources["shared_models"],
                                   explicit="GHUBAI_SHARE_NEW_MODELS" in environ)
    flags = flags or {}
    for key, raw in flags.items():
        take(key, raw, f"the flag {BY_KEY[key].flag}")
    if "shared_models" in flags:
        _implied_share_new(values, sources, flags["shared_models"], sources["shared_models"],
                           explicit="share_new_models" in flags)
    if values.get("paused_until") is not None and "paused" not in values:
        values["paused"] = True
    settings = replace(Settings(), **values, sources=sources)
    for secret in url_secrets(settings.hub_url):  # a key in the hub URL never reaches a log
        add_secret(secret)
    return settings


def _implied_share_new(
    values: dict[str, Any], sources: dict[str, str], raw: Any, source: str, explicit: bool
) -> None:
    # A list of shared models given as a variable or flag means "only these", unless
    # new models are mentioned explicitly too; "all" means every model.
    if isinstance(raw, str) and raw.strip().lower() == "all":
        values["shared_models"] = ()
        values["share_new_models"] = True
    elif not explicit:
        values["share_new_models"] = False
    else:
        return
    sources["share_new_models"] = source


def to_toml_value(key: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return [str(v) for v in value]  # model names, or schedule windows as written
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if value is None:
        return ""
    return value


def save_settings(updates: Mapping[str, Any], path: Path | None = None) -> None:
    """Write ``updates`` into the config file atomically, keeping every other key.

    The whole new document is checked before anything is written, so a bad
    value leaves the old file as it was.
    """
    path = path or config_path()
    doc = read_file(path)
    for key, value in updates.items():
        if key not in BY_KEY:
            raise ConfigError(f"{key} is not a setting")
        doc[key] = to_toml_value(key, value)
    _check_no_token(doc, path)
    for key in updates:
        try:
            BY_KEY[key].parse(doc[key])
        except ValueError as exc:
            raise ConfigError(f"{key} cannot be saved as {doc[key]!r}: {exc}") from None
    write_atomically(path, tomli_w.dumps(doc).encode("utf-8"))

"""``ghubai-tray doctor``: every check a helper on a forum would ask for, one line each.

Each check returns a :class:`Check`; the verdict is "all is well" only when
none failed (warnings are worth reading but do not stop sharing).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ghubai_tray.config import SETTINGS, Settings, config_path
from ghubai_tray.credentials import TokenSource, resolve_token
from ghubai_tray.errors import AuthRejected, GhubAiError, HubError, TokenStoreError
from ghubai_tray.hub import HubConnection
from ghubai_tray.logs import add_secret, redact
from ghubai_tray.ollama import OllamaClient
from ghubai_tray.tls import client_context


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    level: Level
    name: str
    detail: str
    more: tuple[str, ...] = ()

    def lines(self) -> Iterator[str]:
        """The check as printed; redacted, since details quote what the hub said."""
        yield redact(f"[{self.level.value:>4}] {self.name}: {self.detail}")
        for line in self.more:
            yield redact(f"       {line}")


def config_check(settings: Settings, path: Path | None = None) -> Check:
    path = path or config_path()
    where = f"{path} ({'found' if path.exists() else 'not present: defaults apply'})"
    more = tuple(f"{s.key} = {_shown(getattr(settings, s.key))}  ({settings.source(s.key)})"
                 for s in SETTINGS)
    return Check(Level.OK, "config", where, more)


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) or "(none)"
    return "(none)" if value is None else str(value)


def limits_check(settings: Settings) -> Check:
    """The owner's ceilings on every hub request, in force now."""
    c = settings.ceilings
    return Check(Level.OK, "limits", (
        f"each hub request: model kept loaded at most {c.keep_alive:g} s after it, context "
        f"up to {c.context:,} tokens, answers up to {c.output_tokens:,} tokens, up to "
        f"{c.images} image(s) of at most {_size(c.image_bytes)}, bodies up to "
        f"{_size(settings.max_request_body)}"))


def _size(size: int) -> str:
    """``10 MiB`` for a round size, ``30,000,000 bytes (28.6 MiB)`` for the others."""
    mib = size / 1024 / 1024
    return f"{mib:g} MiB" if mib == int(mib) else f"{size:,} bytes ({mib:.1f} MiB)"


def token_check(settings: Settings) -> tuple[Check, TokenSource | None]:
    try:
        source = resolve_token(settings.hub_url)
    except TokenStoreError as exc:
        # Not a failure by itself: a hub may need no token (the hub check tells).
        return Check(Level.WARN, "token", str(exc)), None
    if source.token is None:
        return Check(Level.WARN, "token", "none is set; a hub that needs one will refuse this "
                     "machine ('ghubai-tray token set')"), source
    return Check(Level.OK, "token", f"from {source.where}"), source


async def ollama_check(settings: Settings) -> Check:
    client = OllamaClient(settings.ollama_url, client_context(settings.allow_invalid_certs))
    try:
        models = await client.tags()
    except GhubAiError as exc:
        return Check(Level.FAIL, "Ollama", str(exc))
    finally:
        await client.aclose()
    names = ", ".join(m.name + (" (cloud)" if m.remote else "") for m in models)
    if not models:
        return Check(Level.WARN, "Ollama", f"reachable at {settings.ollama_url}, but it has no "
                     "models: pull one with 'ollama pull <model>'")
    return Check(Level.OK, "Ollama", f"{len(models)} model(s) at {settings.ollama_url}: {names}")


async def hub_check(settings: Settings, token: str | None) -> Check:
    try:
        conn = await HubConnection.open(settings.hub_url, token,
                                        ssl_context=client_context(settings.allow_invalid_certs))
    except AuthRejected as exc:
        return Check(Level.FAIL, "hub", str(exc))
    except HubError as exc:
        return Check(Level.FAIL, "hub", f"{exc} ({settings.hub_url})")
    await conn.close()
    auth = "token accepted" if token else "no token needed"
    return Check(Level.OK, "hub", f"negotiate, WebSocket and handshake with {conn.host} "
                 f"work; {auth}")


def tls_check(settings: Settings) -> Check:
    parts = urlsplit(settings.hub_url)
    if parts.scheme == "http":
        if _is_local(parts.hostname or ""):
            return Check(Level.OK, "TLS", "not used: the hub is on this machine (http)")
        return Check(Level.WARN, "TLS", "the hub URL is plain http: the token and all requests "
                     "cross the network unencrypted")
    if settings.allow_invalid_certs:
        return Check(Level.WARN, "TLS", "certificate checking is OFF (ALLOW_INVALID_CERTS=1): "
                     "use this for development hubs only")
    return Check(Level.OK, "TLS", "the hub's certificate is checked against this computer's "
                 "trust store")


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_checks(settings: Settings, token: str | None = None) -> list[Check]:
    """Every check; ``token``, when given, is tested instead of the stored one."""
    if token is not None:
        add_secret(token)
        return [Check(Level.OK, "token", "the one just entered"),
                await ollama_check(settings), await hub_check(settings, token),
                tls_check(settings)]
    token_line, source = token_check(settings)
    add_secret(source.token if source else None)
    checks = [config_check(settings), token_line, limits_check(settings)]
    checks.append(await ollama_check(settings))
    checks.append(await hub_check(settings, source.token if source else None))
    checks.append(tls_check(settings))
    return checks


def verdict(checks: list[Check]) -> tuple[str, int]:
    failed = [c for c in checks if c.level is Level.FAIL]
    if not failed:
        return "All is well: this machine is ready to share its models.", 0
    names = ", ".join(c.name for c in failed)
    return f"{len(failed)} problem(s) to fix: {names}.", 1

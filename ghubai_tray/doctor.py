"""``ghubai-tray doctor``: every check a helper on a forum would ask for, one line each.

Each check returns a :class:`Check`; the verdict is "all is well" only when
none failed (warnings are worth reading but do not stop sharing) and this
machine would really share something now: a pause, or rules that share none of
Ollama's models, fail it, since "ready to share" would not be true.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from ghubai_tray.adapters.config import config_path
from ghubai_tray.adapters.credentials import TokenSource, resolve_token
from ghubai_tray.adapters.desktop_signals import DesktopSignals
from ghubai_tray.adapters.gpu_sensors import GpuSensors
from ghubai_tray.adapters.hub import HubConnection
from ghubai_tray.adapters.logs import add_secret, redact
from ghubai_tray.adapters.tls import client_context
from ghubai_tray.core import schedule, texts
from ghubai_tray.core.errors import (
    AuthRejected,
    GhubAiError,
    HubError,
    NoHubHere,
    SecureConnectionFailed,
    TokenNeeded,
    TokenStoreError,
)
from ghubai_tray.core.hardware import Readings
from ghubai_tray.core.rules import (
    DesktopReadings,
    Rule,
    decide,
    enabled,
    limits_of,
    read_desktop,
)
from ghubai_tray.core.server_kinds import ServerKind, not_available
from ghubai_tray.core.settings import SETTINGS, Settings, shown_setting, shown_url
from ghubai_tray.core.sharing import is_shared
from ghubai_tray.core.tags import LocalModel
from ghubai_tray.worker import server_for


class Level(enum.Enum):
    OK = "ok"  # verified
    INFO = "info"  # true, but not verified (never "ok" for what was not tested)
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
    more = tuple(f"{s.key} = {shown_setting(settings, s.key)}  ({settings.source(s.key)})"
                 for s in SETTINGS)
    return Check(Level.OK, "config", where, more)


def limits_check(settings: Settings) -> Check:
    """The owner's ceilings on every hub request, in force now."""
    c = settings.ceilings
    return Check(Level.OK, "limits", (
        f"each hub request: model kept loaded at most {c.keep_alive:g} s after it, context "
        f"up to {c.context:,} tokens, answers up to {c.output_tokens:,} tokens, up to "
        f"{c.images} image(s) of at most {_size(c.image_bytes)}, bodies up to "
        f"{_size(settings.max_request_body)}, text up to {_size(c.prompt_bytes)}, up to "
        f"{c.messages:,} messages, {c.inputs:,} embedding inputs, {c.tools:,} tools and "
        f"{c.stops:,} stop strings; structured-output schemas only as the model's grammar "
        "can take them"))


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
                     "machine (set one in Settings, or with 'ghubai-tray token set')"), source
    return Check(Level.OK, "token", f"from {source.where}"), source


def _server_check_name(kind: ServerKind) -> str:
    return "Ollama" if kind is ServerKind.OLLAMA else "model server"


async def ollama_check(settings: Settings) -> tuple[Check, tuple[LocalModel, ...] | None]:
    """The model server's line, and the models it has (None when it could not be asked)."""
    kind = ServerKind.OLLAMA
    client = server_for(settings, kind)  # the probes are the same for every kind
    try:
        server = await client.identify()
        if server is not None and server.kind is not kind:  # the worker's own adapter
            kind = server.kind
            await client.aclose()
            client = server_for(settings, kind)
        models = await client.tags()
    except GhubAiError as exc:
        return Check(Level.FAIL, _server_check_name(kind), str(exc)), None
    finally:
        await client.aclose()
    name = _server_check_name(kind)
    names = ", ".join(m.name + (" (cloud)" if m.remote else "") for m in models)
    where = settings.ollama_url + (f" ({server})" if server else "")
    missing = "; " + gaps if (gaps := not_available(kind)) else ""
    if not models:
        hint = ("pull one with 'ollama pull <model>'" if kind is ServerKind.OLLAMA
                else "load or download one in it")
        return Check(Level.WARN, name, f"reachable at {where}, but it has no models: "
                     f"{hint}{missing}"), models
    return Check(Level.OK, name,
                 f"{texts.counted(len(models), 'model')} at {where}: {names}{missing}"), models


PAUSED = "paused"  # the name of the check a pause fails, which the verdict words apart


def sharing_check(settings: Settings, models: tuple[LocalModel, ...] | None,
                  now: datetime | None = None) -> Check | None:
    """What the hub would get from this machine now; None when Ollama could not say."""
    now = now or datetime.now().astimezone()
    if settings.paused and (settings.paused_until is None or settings.paused_until > now):
        until = ("until you choose Resume" if settings.paused_until is None else
                 f"until {settings.paused_until.astimezone():%a %d %b %H:%M}")
        source = settings.source("paused")
        return Check(Level.FAIL, PAUSED, f"sharing is paused {until} ({source}): the hub "
                     "gets no models until then; Resume in the menu ends it")
    if models is None:
        return None
    shared = [m.name for m in models if is_shared(
        m, settings.share_new_models, settings.shared_models, settings.unshared_models)]
    have = {m.name.casefold() for m in models}
    missing = [name for name in settings.shared_models if name.casefold() not in have]
    more = (f"shared_models names {', '.join(missing)}, which Ollama does not have",
            ) if missing else ()
    if not shared:
        why = ("share_new_models is off and shared_models names none of them"
               if not settings.share_new_models else
               "each is a cloud model or listed in unshared_models")
        every = texts.counted(len(models), "model")
        return Check(Level.FAIL, "sharing", f"none of Ollama's {every} would "
                     f"be shared: {why}; choose some under Models in the menu", more)
    return Check(Level.WARN if missing else Level.OK, "sharing",
                 f"{texts.counted(len(shared), 'model')} would be shared: "
                 f"{', '.join(shared)}", more)


async def hub_check(settings: Settings, token: str | None) -> tuple[Check, HubError | None]:
    """The hub line, and the failure (None when the hub answered as a hub should)."""
    try:
        conn = await _open(settings.hub_url, token, settings)
    except AuthRejected as exc:  # its words say what was sent and what to do
        return Check(Level.FAIL, "hub", str(exc)), exc
    except HubError as exc:
        hint = await _hint(settings, token, exc)
        return Check(Level.FAIL, "hub", f"{exc} ({shown_url(settings.hub_url)})", hint), exc
    await conn.close()
    auth = "token accepted" if token else "no token needed"
    return Check(Level.OK, "hub", f"negotiate, WebSocket and handshake with {conn.host} "
                 f"work; {auth}"), None


async def _open(url: str, token: str | None, settings: Settings) -> HubConnection:
    return await HubConnection.open(url, token,
                                    ssl_context=client_context(settings.allow_invalid_certs))


async def _a_hub_answers(url: str, token: str | None, settings: Settings) -> bool:
    """Whether a hub answers at ``url`` (refusing the token counts: it is a hub)."""
    try:
        conn = await _open(url, token, settings)
    except AuthRejected:
        return True
    except HubError:
        return False
    await conn.close()
    return True


async def _hint(settings: Settings, token: str | None, exc: HubError) -> tuple[str, ...]:
    """A probe that finds the fix for the two URL mistakes people make most: https for a
    hub that speaks http, and a hub address without its /gridhub path."""
    parts = urlsplit(settings.hub_url)
    if (isinstance(exc, SecureConnectionFailed) and "certificate" not in str(exc)
            and parts.scheme == "https"):
        plain = parts._replace(scheme="http").geturl()
        # no token: it would cross the network unencrypted
        if await _a_hub_answers(plain, None, settings):
            return (f"a hub answers on plain http at this address: if it is yours, set the "
                    f"Hub URL to {plain} (the token then crosses the network unencrypted)",)
    if isinstance(exc, NoHubHere) and not parts.path.rstrip("/").endswith("/gridhub"):
        paths = dict.fromkeys((parts.path.rstrip("/") + "/gridhub", "/gridhub"))
        for path in paths:
            guess = parts._replace(path=path, query="").geturl()
            if await _a_hub_answers(guess, token, settings):  # same origin: the token may go
                return (f"the hub answers at {guess}: set that as the Hub URL",)
    return ()


def tls_check(settings: Settings, hub_failure: HubError | None = None) -> Check:
    parts = urlsplit(settings.hub_url)
    if isinstance(hub_failure, SecureConnectionFailed):
        return Check(Level.WARN, "TLS", "not verified: the secure connection to the hub "
                     "failed (see the hub line)")
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


def rules_check(settings: Settings, readings: DesktopReadings,
                now: datetime | None = None, gpus: Readings | None = None) -> Check:
    """The rules that are on (the schedule among them), what their signals read on this
    computer now, and whether one holds sharing this moment: one verdict, never "the
    schedule holds" beside "none holds" (owner first needs two looks at Ollama: the
    running worker's ``status`` says that one)."""
    now = now or datetime.now().astimezone()
    on = enabled(settings)
    signals = read_desktop(readings, settings, now)
    read = {Rule.FULLSCREEN: signals.fullscreen, Rule.GPU_BUSY: signals.gpu_busy,
            Rule.AWAY: signals.idle_seconds, Rule.BATTERY: signals.on_battery}
    parts = []
    for rule in (Rule.OWNER_FIRST, Rule.FULLSCREEN, Rule.GPU_BUSY, Rule.AWAY, Rule.BATTERY):
        if rule not in on:
            continue
        name = texts.RULE_NAMES[rule.value]
        if rule is Rule.OWNER_FIRST:
            parts.append(f"{name} ({settings.owner_first_hold:g} s hold)")
        elif read[rule] is None:
            parts.append(f"{name} (not available on this computer)")
        else:
            parts.append(name)
    parts += _guard_parts(settings, on, gpus or Readings())
    if settings.schedule:
        parts.append(f"schedule ({schedule.shown(settings.schedule)})")
    listed = ", ".join(parts) if parts else "none"
    if not schedule.allows(settings.schedule, now):  # one verdict on the rules: this one
        change = schedule.next_change(settings.schedule, now)
        until = f"until {change:%a %d %b %H:%M}" if change else "at no time this week"
        return Check(Level.FAIL, PAUSED, f"the schedule ({schedule.shown(settings.schedule)}, "
                     f"{settings.source('schedule')}) holds sharing now: the hub gets no "
                     f"models {until}")
    decision = decide(replace(settings, schedule=()), signals)
    if decision.rule is not None:
        return Check(Level.FAIL, PAUSED, f"{texts.held(decision.rule.value, None)}: the hub "
                     f"gets no models while it lasts (rules on: {listed})")
    return Check(Level.INFO, "rules", f"on: {listed}; none holds sharing now")


def gpu_check(readings: Readings) -> Check:
    """What the GPUs read, and what the ledger can make of it: energy per request only
    where a card says its draw (never an estimate from a model's size)."""
    if readings.power_w is not None:
        return Check(Level.INFO, "GPU", f"{readings.words()}; the ledger records each "
                     "request's share of the energy drawn")
    said = (f"{readings.words()}; no card says its power draw" if readings.gpus
            else readings.words())
    return Check(Level.INFO, "GPU", f"{said}: the ledger leaves each request's energy empty", (
                     "Energy is measured on NVIDIA cards through the driver's NVML and on AMD "
                     "cards through Linux's hwmon files.",))


def _guard_parts(settings: Settings, on: frozenset[Rule], gpus: Readings) -> list[str]:
    """The hardware guards and budgets that are on: limit, reading now and its source."""
    parts = []
    now = {Rule.GPU_HEAT: (gpus.hottest_c, "°C"), Rule.GPU_POWER: (gpus.power_w, "W")}
    for rule, (limit, resume) in limits_of(settings).items():
        if rule not in on:
            continue
        reading, unit = now[rule]
        name = texts.RULE_NAMES[rule.value]
        if reading is None:
            parts.append(f"{name} (max {limit:g} {unit}; not available on this computer: "
                         f"{gpus.words()})")
        else:
            parts.append(f"{name} (max {limit:g} {unit}, resumes at {resume:g} {unit}; now "
                         f"{reading:.0f} {unit} from {gpus.source})")
    if Rule.ENERGY_BUDGET in on:
        parts.append(f"{texts.RULE_NAMES[Rule.ENERGY_BUDGET.value]} "
                     f"({settings.daily_energy_kwh:g} kWh a day)")
    if Rule.GPU_TIME_BUDGET in on:
        parts.append(f"{texts.RULE_NAMES[Rule.GPU_TIME_BUDGET.value]} "
                     f"({settings.daily_gpu_hours:g} h a day)")
    return parts


async def run_checks(settings: Settings, token: str | None = None,
                     readings: DesktopReadings | None = None,
                     gpus: Readings | None = None) -> list[Check]:
    """Every check; ``token``, when given, is tested instead of the stored one."""
    if token is not None:
        add_secret(token)
        checks = [Check(Level.OK, "token", "the one just entered")]  # judged below
    else:
        token_line, source = token_check(settings)
        add_secret(source.token if source else None)
        token = source.token if source else None
        checks = [config_check(settings), token_line, limits_check(settings)]
    ollama, models = await ollama_check(settings)
    checks.append(ollama)
    if (sharing := sharing_check(settings, models)) is not None:
        checks.append(sharing)
    gpus = gpus if gpus is not None else GpuSensors().read()
    checks.append(rules_check(settings, readings or DesktopSignals(), gpus=gpus))
    checks.append(gpu_check(gpus))
    hub, failure = await hub_check(settings, token)
    checks = [judged_token(c, token, failure) if c.name == "token" else c for c in checks]
    if isinstance(failure, AuthRejected) and any(c.name == "token" and c.level is Level.FAIL
                                                 for c in checks):
        # one problem, said once: the token line says what to do (a refused token was
        # counted twice, "2 problems to fix: token, hub")
        hub = Check(Level.INFO, "hub", f"{hub.detail}: see the token line", hub.more)
    checks.append(hub)
    checks.append(tls_check(settings, failure))
    return checks


def judged_token(found: Check, token: str | None, failure: HubError | None) -> Check:
    """The token line as the hub judged it: "ok" only once the hub accepted it.

    Before, the line said "ok" because a token was found, just above the hub's
    refusal of it."""
    if found.level is not Level.OK or token is None:
        if failure is None and token is None and found.level is Level.WARN:
            return Check(Level.OK, "token", "none set, and this hub needs none")
        if isinstance(failure, TokenNeeded) and token is None and found.level is Level.WARN:
            return Check(Level.FAIL, "token", "none is set, and this hub needs one", found.more)
        return found
    if failure is None:
        return Check(Level.OK, "token", f"{found.detail}; the hub accepted it", found.more)
    if isinstance(failure, TokenNeeded):  # ours was withheld from a redirect's address
        return Check(Level.INFO, "token", f"{found.detail}; not verified, since it was not "
                     "sent to the address the hub redirected to", found.more)
    if isinstance(failure, AuthRejected):
        return Check(Level.FAIL, "token", f"{found.detail}; the hub refused it: replace it "
                     "(Settings, or 'ghubai-tray token set')", found.more)
    return Check(Level.INFO, "token", f"{found.detail}; not verified, since the hub could "
                 "not be reached", found.more)


def connection_report(settings: Settings, token: str | None) -> tuple[str, bool]:
    """The Settings window's Test connection: the verdict first, then the failing checks
    with their hints (the fix a probe found: http://, the /gridhub path), then the rest,
    one line each, and whether all is well. The failing line once sat below the fold of
    a box without a scrollbar."""
    checks = asyncio.run(run_checks(settings, token))
    ordered = sorted(checks, key=lambda c: c.level is not Level.FAIL)
    text = "\n".join(line for c in ordered for line in c.lines()
                     if c.level is Level.FAIL or not line.startswith("       "))
    said, code = verdict(checks)
    return f"{said}\n{text}", code == 0


def verdict(checks: list[Check]) -> tuple[str, int]:
    failed = [c for c in checks if c.level is Level.FAIL]
    if not failed:
        return "All is well: this machine is ready to share its models.", 0
    if [c.name for c in failed] == [PAUSED]:
        return "Ready, but paused: nothing is shared until the pause ends.", 1
    names = ", ".join(c.name for c in failed)
    return f"{texts.counted(len(failed), 'problem')} to fix: {names}.", 1

"""The tray icon and its tooltip, as pure functions of the worker's snapshot.

Seven looks, told apart by shape as well as colour (a badge in the corner of
the GhubAi mark), so that they read at 16 px and for colour-blind people:

- contributing: a green disc with a check mark;
- serving (a request in flight): a blue disc with a "play" triangle;
- finishing (paused, requests still running): an amber disc with the triangle;
- connecting / reconnecting: the mark greyed, a grey disc with three dots;
- paused: the mark greyed, an amber disc with two bars;
- quitting (requests finishing before the app ends): the mark greyed, a grey
  disc with a square, "stop";
- needs attention: a red triangle with an exclamation mark.
"""

from __future__ import annotations

import enum
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from PIL import Image, ImageDraw, ImageOps

from ghubai_tray.core import texts
from ghubai_tray.core.server_kinds import SHORT
from ghubai_tray.core.state import OllamaStatus, Snapshot, State
from ghubai_tray.desktop.resources import mark

TITLE_LIMIT = 127  # Windows truncates tray tooltips at 127 characters


class IconKind(enum.Enum):
    CONTRIBUTING = "contributing"
    SERVING = "serving"
    CONNECTING = "connecting"
    PAUSED = "paused"
    FINISHING = "finishing"
    QUITTING = "quitting"
    ATTENTION = "needs attention"


def hub_host(snap: Snapshot) -> str:
    parts = urlsplit(snap.hub_url)
    host = parts.hostname or snap.hub_url
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{host}:{parts.port}" if parts.port and parts.port != default else host


def attention(snap: Snapshot) -> str | None:
    """Why the owner should look, in a few words; None when nothing needs them."""
    if snap.state is State.NOT_CONFIGURED:
        return texts.NOT_SET_UP
    if snap.state is State.AUTH_REJECTED:
        return texts.TOKEN_REFUSED
    if snap.state is State.TOKEN_NEEDED:
        return texts.TOKEN_NEEDED
    if snap.state is State.TOKEN_UNREADABLE:
        return texts.TOKEN_UNREADABLE
    if snap.state is State.PAUSED or snap.state is State.STOPPED:
        return None
    if snap.ollama is OllamaStatus.UNREACHABLE:
        return texts.OLLAMA_NOT_RUNNING
    if snap.ollama is OllamaStatus.BAD_ANSWER:
        return texts.OLLAMA_ODD
    if snap.state is State.REGISTERED and not snap.shared_models:
        return texts.NOTHING_SHARED
    if snap.insecure_tls and snap.state is State.REGISTERED:
        return texts.CERTS_NOT_CHECKED
    return None


def busy(snap: Snapshot) -> int:
    """Requests running or waiting: what a pause or a Quit still lets finish."""
    return snap.active + snap.queued


def quitting(snap: Snapshot) -> bool:
    return snap.stopping and snap.state is not State.STOPPED


def finishing(snap: Snapshot) -> bool:
    """Sharing is held, but requests that came before still run."""
    return snap.state is State.PAUSED and bool(busy(snap))


def icon_kind(snap: Snapshot) -> IconKind:
    if quitting(snap):
        return IconKind.QUITTING
    if finishing(snap):
        return IconKind.FINISHING
    if attention(snap) is not None:
        return IconKind.ATTENTION
    if snap.state is State.PAUSED:
        return IconKind.PAUSED
    if snap.state is State.REGISTERED and not snap.waiting_for_tray:
        return IconKind.SERVING if snap.active else IconKind.CONTRIBUTING
    return IconKind.CONNECTING


def status_line(snap: Snapshot, now: datetime | None = None) -> str:
    """The state and why, in one line, without the app's name (times have their day
    when it is not ``now``'s)."""
    now = now or datetime.now().astimezone()
    host = hub_host(snap)
    if quitting(snap):
        running = busy(snap)
        return (texts.QUITTING.format(requests=texts.counted(running, "request")) if running
                else texts.QUITTING_NOW)
    if finishing(snap):
        return texts.FINISHING.format(requests=texts.counted(busy(snap), "request"))
    if snap.waiting_for_tray and snap.state in (State.CONNECTED, State.REGISTERED):
        return texts.WAITING_FOR_TRAY
    reason = attention(snap)
    if reason is not None:
        return reason
    if snap.state is State.PAUSED and not snap.paused and snap.held_by:
        held = snap.held_until
        return texts.held(snap.held_by, texts.moment(held, now) if held else None,
                          SHORT[snap.server_kind], snap.held_detail)
    if snap.state is State.PAUSED:
        until = snap.paused_until
        return (texts.PAUSED_UNTIL.format(until=texts.moment(until, now)) if until
                else texts.PAUSED)
    if snap.state is State.REGISTERED:
        if snap.active:
            return texts.SERVING.format(requests=texts.counted(snap.active, "request"),
                                        host=host)
        count = len(snap.shared_models)
        return texts.SHARING.format(models=texts.counted(count, "model"), host=host)
    if snap.state is State.RECONNECTING:
        when = f" at {snap.next_attempt:%H:%M:%S}" if snap.next_attempt else ""
        return texts.RECONNECTING.format(host=host, when=when)
    if snap.state is State.STOPPED:
        return texts.STOPPED
    return texts.CONNECTING.format(host=host)


def title_for(snap: Snapshot, now: datetime | None = None) -> str:
    """The tooltip: ``GhubAi — <state and why>``, within Windows' length limit."""
    title = f"GhubAi — {status_line(snap, now)}"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def icon_for(snap: Snapshot, size: int = 64) -> Image.Image:
    return icon_image(icon_kind(snap), size)


# -- drawing -----------------------------------------------------------------

GREEN = (46, 160, 67, 255)
BLUE = (31, 111, 235, 255)
GREY = (120, 124, 130, 255)
AMBER = (227, 160, 8, 255)
RED = (218, 54, 51, 255)
WHITE = (255, 255, 255, 255)


@cache
def icon_image(kind: IconKind, size: int = 64) -> Image.Image:
    """The icon for ``kind``, drawn at 4x and scaled down (cached: pure and small)."""
    big = 4 * size
    base = mark().resize((big, big), Image.Resampling.LANCZOS)
    if kind in (IconKind.CONNECTING, IconKind.PAUSED, IconKind.QUITTING):
        grey = ImageOps.grayscale(base.convert("RGB")).convert("RGBA")
        grey.putalpha(base.getchannel("A").point(lambda a: a * 3 // 4))
        base = grey
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    image.alpha_composite(base)
    _badge(ImageDraw.Draw(image), kind, big)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _badge(d: ImageDraw.ImageDraw, kind: IconKind, big: int) -> None:
    r = big * 0.27  # badge radius: large enough to read at 16 px
    cx = cy = big - r - big * 0.01
    outline = big * 0.04
    if kind is IconKind.ATTENTION:
        cx, cy = big - r * 1.1 - outline * 1.5, big - r * 0.95 - outline * 1.5
        top, left, right, bottom = cy - r * 1.05, cx - r * 1.1, cx + r * 1.1, cy + r * 0.95
        d.polygon([(cx, top - outline), (left - outline, bottom + outline),
                   (right + outline, bottom + outline)], fill=WHITE)
        d.polygon([(cx, top), (left, bottom), (right, bottom)], fill=RED)
        w = r * 0.22
        d.rectangle([cx - w / 2, cy - r * 0.5, cx + w / 2, cy + r * 0.25], fill=WHITE)
        d.ellipse([cx - w / 2, cy + r * 0.42, cx + w / 2, cy + r * 0.42 + w], fill=WHITE)
        return
    colour = {IconKind.CONTRIBUTING: GREEN, IconKind.SERVING: BLUE, IconKind.CONNECTING: GREY,
              IconKind.PAUSED: AMBER, IconKind.FINISHING: AMBER, IconKind.QUITTING: GREY}[kind]
    d.ellipse([cx - r - outline, cy - r - outline, cx + r + outline, cy + r + outline],
              fill=WHITE)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    stroke = max(1, int(r * 0.28))
    if kind is IconKind.CONTRIBUTING:
        d.line([(cx - r * 0.5, cy + r * 0.02), (cx - r * 0.12, cy + r * 0.42),
                (cx + r * 0.55, cy - r * 0.38)], fill=WHITE, width=stroke, joint="curve")
    elif kind in (IconKind.SERVING, IconKind.FINISHING):
        d.polygon([(cx - r * 0.32, cy - r * 0.5), (cx - r * 0.32, cy + r * 0.5),
                   (cx + r * 0.55, cy)], fill=WHITE)
    elif kind is IconKind.QUITTING:
        side = r * 0.44
        d.rectangle([cx - side, cy - side, cx + side, cy + side], fill=WHITE)
    elif kind is IconKind.PAUSED:
        w = r * 0.26
        for x in (cx - r * 0.3, cx + r * 0.3):
            d.rectangle([x - w / 2, cy - r * 0.5, x + w / 2, cy + r * 0.5], fill=WHITE)
    else:
        dot = r * 0.2
        for x in (cx - r * 0.5, cx, cx + r * 0.5):
            d.ellipse([x - dot / 2 * 1.2, cy - dot / 2 * 1.2, x + dot / 2 * 1.2,
                       cy + dot / 2 * 1.2], fill=WHITE)

"""The ledger of what the donor gave: one row per hub request, never its words.

A row says when, for which hub, on which model and endpoint, served by which kind of
server, how it ended (and why, as one of a few fixed words), the server's own token
counts where it gave them, the time to the first token, the duration, the speed, and
what the owner's limits changed (field names only). It never holds the prompt, the
answer, the token or anything of the client: the failure reasons the client reads
can quote what a server said of a request, so the ledger keeps only the category.

Pure: the rows, the CSV's columns and lines, and the tallies the menu shows, which
are computed from the same rows (:func:`tally_of`) so that the menu, ``status`` and
the ledger cannot disagree. :mod:`ghubai_tray.adapters.ledger_db` keeps them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from ghubai_tray.core.activity import Tally

# The CSV's header, as the owner's tools read it (docs: README, "What I gave").
COLUMNS = ("time", "hub", "model", "endpoint", "server", "outcome", "prompt_tokens",
           "output_tokens", "ttft_ms", "duration_ms", "tokens_per_s", "energy_wh")
OUTCOMES = ("served", "failed", "cancelled", "abandoned", "refused")
# Why a request did not end served, in the ledger's own words (never the client's text).
WHY = ("", "the model server", "a limit of this machine", "paused", "a rule", "stopping",
       "the hub connection", "refused")


@dataclass(frozen=True)
class Entry:
    """One hub request, as the ledger keeps it."""

    at: str  # ISO 8601 with the offset, to the millisecond
    day: str  # the local date (YYYY-MM-DD) the menu's "today" counts it on
    hub: str  # the hub's host
    model: str
    endpoint: str
    server: str  # the kind of model server (core.server_kinds.ServerKind's value)
    outcome: str  # one of OUTCOMES
    why: str = ""  # one of WHY
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    chunks: int = 0  # pieces relayed (the count used where the server gave none)
    ttft_ms: float | None = None
    duration_ms: float | None = None
    limits: str = ""  # what the owner's limits changed: "max_tokens capped; n_probs left out"
    energy_wh: float | None = None

    @property
    def tokens(self) -> int:
        """The output tokens by the server's count, else the pieces relayed."""
        return self.output_tokens if self.output_tokens is not None else self.chunks

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of generation (after the first token)."""
        if self.output_tokens is None or self.duration_ms is None or self.ttft_ms is None:
            return None
        seconds = (self.duration_ms - self.ttft_ms) / 1000
        return round(self.output_tokens / seconds, 2) if seconds > 0 else None


Days = tuple[float | None, ...]  # one value per day shown; None: nothing that day


@dataclass(frozen=True)
class ActivityCharts:
    """What the Activity window draws, one value per day of ``days``."""

    days: tuple[str, ...]
    tokens_by_model: tuple[tuple[str, Days], ...]  # the top models, then "other models"
    served: Days
    not_served: Days
    hours: dict[str, Days]  # standing -> hours per day
    held_by: tuple[tuple[str, float], ...]  # (rule, hours) over the days shown
    ttft_ms: Days  # the served requests' average time to the first token
    tokens_per_s: Days  # output tokens per second of generation, all served requests
    energy_wh: Days  # None where no request that day had an energy reading
    lifetime_requests: int
    lifetime_tokens: int
    lifetime_hours: dict[str, float]

    @property
    def empty(self) -> bool:
        return not any(self.served) and not any(self.not_served) and not any(
            v for values in self.hours.values() for v in values)


def tally_of(entry: Entry) -> Tally:
    """What one row adds to the menu's tallies (as core.activity always counted)."""
    served = entry.outcome == "served"
    return Tally(requests=int(served), failed=int(not served), tokens=entry.tokens,
                 limited=int(bool(entry.limits)))


def limits_text(capped: tuple[str, ...], dropped: tuple[str, ...]) -> str:
    """The names of what the owner's limits changed, without the values asked (a value
    is the client's: ``max_tokens 100000 -> 4096`` is kept as ``max_tokens capped``)."""
    names = [f"{change.split(' ', 1)[0]} capped" for change in capped]
    names += [f"{name} left out" for name in dropped]
    return "; ".join(names)[:500]


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def csv_header() -> str:
    return _csv_text(COLUMNS)


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (a model's name is the
    server's to choose)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_line(entry: Entry) -> str:
    return _csv_text((entry.at, _cell(entry.hub), _cell(entry.model), entry.endpoint,
                      entry.server, entry.outcome, _number(entry.prompt_tokens),
                      _number(entry.output_tokens), _number(entry.ttft_ms),
                      _number(entry.duration_ms), _number(entry.tokens_per_s),
                      _number(entry.energy_wh)))


def _csv_text(values: tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)  # RFC 4180: CR and LF quoted
    return out.getvalue()


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """``ghubai-tray activity``'s text: the totals, then the days, then the models."""
    today, lifetime = summary["today"], summary["lifetime"]
    lines = [f"Today: {today['requests']:,} request(s) served, {today['tokens']:,} tokens, "
             f"{today['failed']:,} not served",
             f"Since install: {lifetime['requests']:,} request(s) served, "
             f"{lifetime['tokens']:,} tokens, {lifetime['failed']:,} not served", ""]
    days = summary["days"]
    lines.append(f"By day since {summary['since']}:" if days
                 else f"Nothing since {summary['since']}.")
    lines += [f"  {d['day']}  {d['served']:>6,} served  {d['failed']:>5,} not  "
              f"{d['tokens']:>9,} tokens" + (f"  {d['energy_wh']:.1f} Wh" if d['energy_wh']
                                             else "") for d in days]
    lines += _hours_lines(summary)
    if summary["models"]:
        lines += ["", "By model:"]
        lines += [f"  {m['model']}: {m['served']:,} served, {m['tokens']:,} tokens"
                  for m in summary["models"]]
    return lines


def _hours_lines(summary: dict[str, Any]) -> list[str]:
    """The hours of the days shown: shared, paused, held (by which rule), not sharing."""
    days = summary.get("hours_by_day") or []
    if not days:
        return []
    total = {k: sum(d[k] for d in days) for k in ("shared", "paused", "held", "not sharing")}
    held = ", ".join(f"{r['rule']} {r['hours']:.1f} h" for r in summary.get("held_by", []))
    return ["", f"Hours since {summary['since']}: shared {total['shared']:.1f}, paused "
            f"{total['paused']:.1f}, held by a rule {total['held']:.1f}"
            + (f" ({held})" if held else "") + f", not sharing {total['not sharing']:.1f}"]

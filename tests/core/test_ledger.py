"""The ledger's rows, its CSV and the tallies computed from them: pure."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.activity import Tally
from ghubai_tray.core.ledger import (
    COLUMNS,
    Entry,
    csv_header,
    csv_line,
    limits_text,
    summary_lines,
    tally_of,
)

ROW = Entry(at="2026-12-05T10:00:00.000+01:00", day="2026-12-05", hub="hub.example.com",
            model="llama3.2:1b", endpoint="/api/chat", server="ollama", outcome="served",
            prompt_tokens=9, output_tokens=40, chunks=41, ttft_ms=100.0, duration_ms=2100.0)


def test_a_row_adds_to_the_tallies_as_the_menu_always_counted() -> None:
    assert tally_of(ROW) == Tally(requests=1, tokens=40)
    assert tally_of(replace(ROW, output_tokens=None)) == Tally(requests=1, tokens=41)
    assert tally_of(replace(ROW, outcome="refused", chunks=0, output_tokens=None,
                            limits="n_probs left out")) == Tally(failed=1, limited=1)
    assert ROW.tokens_per_s == 20.0
    assert replace(ROW, ttft_ms=None).tokens_per_s is None
    assert replace(ROW, ttft_ms=2100.0).tokens_per_s is None


def test_what_the_limits_changed_is_named_without_the_values_asked() -> None:
    assert limits_text(("num_ctx 1048576 -> 8192", "max_tokens 99999 -> 4096"),
                       ("template", "options.num_gpu")) == (
        "num_ctx capped; max_tokens capped; template left out; options.num_gpu left out")


@given(st.text(), st.text())
def test_any_model_or_hub_name_reads_back_as_one_cell_and_never_as_a_formula(
        model: str, hub: str) -> None:
    text = csv_header() + csv_line(replace(ROW, model=model, hub=hub))
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    assert header == list(COLUMNS)
    assert len(row) == len(COLUMNS)
    def shown(text: str) -> str:
        return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

    assert (row[2], row[1]) == (shown(model), shown(hub))


def test_the_summary_reads_as_a_donor_would_say_it() -> None:
    lines = summary_lines({
        "since": "2026-11-06", "today": {"requests": 3, "tokens": 120, "failed": 1},
        "lifetime": {"requests": 1200, "tokens": 45000, "failed": 7},
        "days": [{"day": "2026-12-05", "served": 3, "failed": 1, "tokens": 120,
                  "energy_wh": 0}],
        "models": [{"model": "llama3.2:1b", "served": 3, "tokens": 120}]})
    assert lines[0] == "Today: 3 request(s) served, 120 tokens, 1 not served"
    assert lines[1] == "Since install: 1,200 request(s) served, 45,000 tokens, 7 not served"
    assert "By day since 2026-11-06:" in lines
    assert "  llama3.2:1b: 3 served, 120 tokens" in lines

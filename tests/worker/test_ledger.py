"""The ledger through the real worker: 200 hub requests of every outcome, one row each,
with the server's own counts, and never a word of the prompts anywhere on disk."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections import Counter
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ghubai_tray.adapters import ledger_db
from ghubai_tray.core.ledger import summary_lines
from ghubai_tray.core.state import Pause, PauseMode, Resume
from tests.testbed import fake_nvidia
from tests.testbed.hub import HubRequest
from tests.testbed.ollama import Fault, OllamaStandIn
from tests.worker_bed import Bed, running_bed, with_settings

CANARY = "CANARY-5e1f0b7d-prompt-words"
MODEL = "llama3.2:1b"


def _chat(number: int) -> dict[str, Any]:
    return {"model": MODEL, "stream": True,
            "messages": [{"role": "user", "content": f"{CANARY} question {number}"}]}


async def _batch(bed: Bed, count: int, start: int, endpoint: str = "/api/chat"
                 ) -> list[HubRequest]:
    return [await bed.request(endpoint, _chat(start + i)) for i in range(count)]


async def _served_all(requests: list[HubRequest]) -> None:
    await asyncio.gather(*(r.wait(60) for r in requests))


async def _until_running(bed: Bed, count: int) -> None:
    await bed.worker.wait_for(lambda s: s.active + s.queued == count and s.active > 0, 30,
                              f"{count} requests to run or wait")


async def test_two_hundred_requests_of_every_outcome_make_two_hundred_rows(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "ledger.sqlite3"
    ollama = OllamaStandIn()
    sent: list[HubRequest] = []
    async with running_bed(ollama=ollama, ledger_path=path,  # 4 run, 8 wait: 12 at once
                           settings=with_settings(max_concurrent_requests=4)) as bed:
        await bed.registered(MODEL, "mistral:7b")
        for _ in range(15):  # 120 served, 8 at a time
            batch = await _batch(bed, 8, len(sent))
            await _served_all(batch)
            sent += batch
        ollama.fault = Fault.INTERNAL  # 30 failed by the server
        for _ in range(5):
            batch = await _batch(bed, 6, len(sent))
            await _served_all(batch)
            sent += batch
        ollama.fault = Fault.NONE
        refused = await _batch(bed, 20, len(sent), endpoint="/api/pull")  # 20 refused
        await _served_all(refused)
        sent += refused
        ollama.token_delay = 0.5  # slow streams from here on
        for _ in range(2):  # 20 cancelled by a pause
            batch = await _batch(bed, 10, len(sent))
            await _until_running(bed, 10)
            bed.worker.submit(Pause(PauseMode.NOW))
            await _served_all(batch)
            sent += batch
            await bed.registered()  # the pause has reached the hub
            bed.worker.submit(Resume())
            await bed.registered(MODEL, "mistral:7b")
        for _ in range(5):  # 10 abandoned by a hub connection that drops mid-answer (2 run)
            batch = await _batch(bed, 2, len(sent))
            await bed.hub.wait_until(partial(_under_way, batch), 30,
                                     "both answers to be under way")
            await bed.hub.drop_connections()
            await bed.registered(MODEL, "mistral:7b", timeout=30)
            await _served_all(batch)  # the final owed goes out on the next connection
            sent += batch
        snap = bed.worker.snapshot
        while_running = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert CANARY.encode() not in while_running  # the database, its WAL and shared memory
    assert len(sent) == 200
    rows = list(_entries(path))
    assert len(rows) == 200
    assert Counter(r.outcome for r in rows) == {"served": 120, "failed": 30, "refused": 20,
                                                 "cancelled": 20, "abandoned": 10}
    served = [r for r in rows if r.outcome == "served"]
    lines = [json.loads(f) for f in sent[0].fragments]
    assert all(r.output_tokens == lines[-1]["eval_count"] for r in served)  # the server's
    assert all(r.prompt_tokens == lines[-1]["prompt_eval_count"] for r in served)
    assert all(0 <= r.ttft_ms <= r.duration_ms for r in served if r.ttft_ms is not None)
    assert {r.why for r in rows if r.outcome == "cancelled"} == {"paused"}
    assert {r.why for r in rows if r.outcome == "failed"} == {"the model server"}
    # the menu's tallies are the ledger's
    with contextlib.closing(ledger_db.read_only(path)) as db:
        assert ledger_db.activity_in(db, date.fromisoformat(snap.activity.day)) == snap.activity
        csv = io.StringIO()
        ledger_db.write_csv(db, csv)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert CANARY.encode() not in stored
    assert CANARY not in csv.getvalue()
    assert CANARY not in caplog.text


def _under_way(batch: list[HubRequest]) -> bool:
    return all(r.chunks for r in batch)


def _entries(path: Path) -> list[Any]:
    with contextlib.closing(ledger_db.read_only(path)) as db:
        return list(ledger_db.entries(db))


@pytest.mark.parametrize("vendor", ["nvidia", "amd"])
async def test_each_request_carries_its_share_of_the_gpus_energy(
        tmp_path: Path, vendor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A steady 150 W: from NVIDIA's NVML (the fake driver, through pynvml) or from an
    AMD card's hwmon files; the other source is absent, as on a real machine."""
    from ghubai_tray.adapters.gpu_sensors import GpuSensors
    from ghubai_tray.adapters.hwmon import AmdHwmon
    from ghubai_tray.adapters.nvml import Nvml
    from tests.adapters.test_hwmon import card

    if vendor == "nvidia":
        if fake_nvidia.CANNOT:
            pytest.skip(fake_nvidia.WHY)
        fake = fake_nvidia.FakeNvidia(tmp_path, monkeypatch)
        fake.read({"name": "NVIDIA RTX 3060", "power_mw": 150000})
    else:
        card(tmp_path / "drm", "card0", power1_average="150000000")
    sensors = GpuSensors(Nvml(), AmdHwmon(tmp_path / "drm"))
    path = tmp_path / "ledger.sqlite3"
    ollama = OllamaStandIn(token_delay=0.15)  # about 1.4 s per answer
    async with running_bed(ollama=ollama, ledger_path=path, gpus=sensors.read) as bed:
        await bed.registered(MODEL, "mistral:7b")
        alone = await bed.request("/api/chat", _chat(0))
        await alone.wait(60)
        together = await _batch(bed, 2, 1)  # two at once: the draw is shared
        await _served_all(together)
    rows = _entries(path)
    first = rows[0]
    expected = 150 * first.duration_ms / 1000 / 3600
    assert first.energy_wh == pytest.approx(expected, rel=0.02)
    pair = rows[1:]
    union_ms = max(r.duration_ms for r in pair)  # they start within a moment of each other
    assert sum(r.energy_wh for r in pair) == pytest.approx(150 * union_ms / 1000 / 3600,
                                                           rel=0.05)
    assert all(r.energy_wh < 150 * r.duration_ms / 1000 / 3600 * 0.75 for r in pair)


async def test_without_a_power_reading_the_energy_is_left_empty(tmp_path: Path) -> None:
    """No NVIDIA driver (none here, or the fake answering as without one) and no AMD card."""
    from ghubai_tray.adapters.gpu_sensors import GpuSensors
    from ghubai_tray.adapters.hwmon import AmdHwmon

    path = tmp_path / "ledger.sqlite3"
    sensors = GpuSensors(amd=AmdHwmon(tmp_path / "no-cards"))
    async with running_bed(ledger_path=path, gpus=sensors.read) as bed:
        await bed.registered(MODEL, "mistral:7b")
        await (await bed.request("/api/chat", _chat(0))).wait(60)
    assert [r.energy_wh for r in _entries(path)] == [None]


async def test_the_hours_shared_held_and_paused_are_kept_by_day(tmp_path: Path) -> None:
    """An injected wall clock, moved by the test: shared from 23:00 until the schedule
    holds at 23:31, held past midnight, paused at 00:15, stopped at 00:45."""
    from ghubai_tray.core.schedule import parse
    from tests.worker.test_rules import ZONE, Clock

    clock = Clock(datetime(2026, 12, 2, 23, 0, tzinfo=ZONE))  # a Wednesday
    path = tmp_path / "ledger.sqlite3"
    evenings = with_settings(schedule=parse("Mon-Fri 18:00-23:30"))
    async with running_bed(settings=evenings, clock=clock, rules_check=0.05,
                           ledger_path=path) as bed:
        await bed.registered(MODEL, "mistral:7b")
        clock.now = clock.now.replace(minute=31)
        await bed.worker.wait_for(lambda s: s.held_by == "schedule", 10, "the hold")
        clock.now = datetime(2026, 12, 3, 0, 15, tzinfo=ZONE)
        bed.worker.submit(Pause(PauseMode.NOW))
        await bed.worker.wait_for(lambda s: s.paused, 10, "the pause")
        clock.now = clock.now.replace(minute=45)
    with contextlib.closing(ledger_db.read_only(path)) as db:
        summary = ledger_db.summary(db, 30, date(2026, 12, 3))
    assert summary["hours_by_day"] == [
        {"day": "2026-12-02", "shared": round(31 / 60, 3), "paused": 0.0,
         "held": round(29 / 60, 3), "not sharing": 0.0},
        {"day": "2026-12-03", "shared": 0.0, "paused": 0.5, "held": 0.25, "not sharing": 0.0}]
    assert summary["held_by"] == [{"rule": "schedule", "hours": round(44 / 60, 3)}]
    assert summary["lifetime_hours"] == {"shared": round(31 / 60, 3), "paused": 0.5,
                                         "held": round(44 / 60, 3), "not sharing": 0.0}
    assert ("Hours since 2026-11-04: shared 0.5, paused 0.5, held by a rule 0.7 "
            "(schedule 0.7 h), not sharing 0.0") in summary_lines(summary)

"""The Windows build's sizes, and the installed tray's idle memory under Wine.

``make bench-windows`` (after ``make dist-windows``): the bundle's unpacked size, the
setup.exe's size, and the memory of the installed ``ghubai-tray.exe`` once idle in
its tray (Xvfb, trayer), connected to the test hub with the Ollama stand-in, next to
the installed ``ghubai-tray-cli.exe --headless`` as the baseline measured in the same
run. Under Wine, not Windows: a Windows program's process here also maps Wine's own
libraries, so the figures say how the two programs compare, not what Task Manager
would show. ``--write`` keeps the table in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from pathlib import Path

from bench.common import Memory, memory_of
from tests.testbed.desktop import real_desktop, wait_for
from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.testbed.wine import WindowsRun, kill_group, unix_pids, windows_run
from tests.worker_bed import TOKEN

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "### Windows build (under Wine 8.0)"
SETTLE = 30.0  # seconds idle before reading memory


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def unix_pid_of(program: str) -> int | None:
    found = unix_pids(lambda argv: argv[0].decode(errors="replace").lower().endswith(program))
    return found[0] if found else None


async def idle_memory(run: WindowsRun, program: str, *args: str) -> Memory:
    hub, ollama = GridHub(tokens=[TOKEN]), OllamaStandIn()
    await hub.start()
    await ollama.start()
    folder = run.local_appdata / "Programs" / "GhubAi Tray"
    proc = run.popen([str(folder / program), *args], env={
        "HUB_URL": hub.url, "OLLAMA_LOCAL_URL": ollama.url, "PROVIDER_TOKEN": TOKEN})
    try:
        await hub.wait_until(lambda: any(n.models for n in hub.nodes.values()), 120,
                             f"{program} to register")
        await asyncio.sleep(SETTLE)  # a measurement of idleness: idle is the point
        pid = await asyncio.to_thread(wait_for, f"{program}'s process",
                                      lambda: unix_pid_of(program))
        return memory_of(pid)
    finally:
        kill_group(proc)
        await hub.stop()
        await ollama.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="keep the table in RESULTS.md")
    args = parser.parse_args(argv)
    version = re.search(r'__version__ = "([^"]+)"',
                        (ROOT / "ghubai_tray" / "__init__.py").read_text())
    assert version
    setup = ROOT / "dist" / f"ghubai-tray-{version[1]}-setup.exe"
    bundle = ROOT / "build" / "windist" / "ghubai-tray"
    if not setup.exists() or not bundle.exists():
        raise SystemExit("build it first: make dist-windows")
    with real_desktop(ROOT / "artifacts") as desk, windows_run(python=False,
                                                               env=desk.env) as run:
        code, out = run.run([str(setup), "/S"], timeout=300)
        assert code == 0, out
        started = time.monotonic()
        tray = asyncio.run(idle_memory(run, "ghubai-tray.exe"))
        headless = asyncio.run(idle_memory(run, "ghubai-tray-cli.exe", "--headless"))
        elapsed = time.monotonic() - started
    size, installer = folder_size(bundle), setup.stat().st_size
    mib = 1024 * 1024
    lines = [
        HEADING, "",
        f"Measured by `make bench-windows` ({elapsed:.0f} s). Sizes are of the files "
        "`make dist-windows` built; memory is of the installed programs under Wine after "
        f"{SETTLE:.0f} s idle, connected, with 2 models shared: **Wine, not Windows**.", "",
        "| | figure |", "| --- | --- |",
        f"| bundle, unpacked | {size / mib:.1f} MiB ({size / 1e6:.1f} MB) |",
        f"| setup.exe (64-bit NSIS, LZMA) | {installer / mib:.1f} MiB "
        f"({installer / 1e6:.1f} MB) |",
        f"| installed tray `ghubai-tray.exe`, idle: RSS / PSS / private | {tray.rss:.0f} / "
        f"{tray.pss:.0f} / {tray.private:.0f} MiB |",
        f"| installed `ghubai-tray-cli.exe --headless`, idle (baseline) | {headless.rss:.0f} / "
        f"{headless.pss:.0f} / {headless.private:.0f} MiB |",
        f"| tray / headless, private memory | {tray.private / headless.private:.2f}x |", "",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        text = RESULTS.read_text()
        if HEADING in text:
            start = text.index(HEADING)
            after = text.find("\n### ", start + len(HEADING))
            text = text[:start] + table + (text[after + 1:] if after != -1 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + table
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

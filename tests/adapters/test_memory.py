"""Freed large buffers leave the process (glibc's mmap threshold, fixed at start)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A 30 MB block freed, another of the same size, something small allocated after it,
# then the second freed: with glibc's dynamic threshold the second came from the heap
# and stays (a hub's message read twice is this); with the threshold fixed it goes.
PATTERN = """
import re, sys
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
if sys.argv[1] == "fixed":
    from ghubai_tray.adapters.memory import return_large_buffers
    assert return_large_buffers()
base = rss()
x = b"x" * 30_000_000
del x
y = b"y" * 30_000_000
keep = [bytearray(200_000) for _ in range(4)]
del y
print(rss() - base)
"""


def kept_mb(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", PATTERN, mode], capture_output=True,
                          text=True, timeout=60, check=True)
    return float(done.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")
def test_a_freed_large_buffer_is_given_back_once_the_threshold_is_fixed() -> None:
    assert kept_mb("dynamic") > 25, "the pattern no longer shows glibc keeping the block"
    assert kept_mb("fixed") < 5


def test_elsewhere_it_does_nothing_and_says_so() -> None:
    from ghubai_tray.adapters.memory import return_large_buffers

    assert return_large_buffers() is sys.platform.startswith("linux")

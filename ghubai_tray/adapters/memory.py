"""Large buffers go back to the operating system as soon as they are freed (glibc).

A hub may send one message of up to 90 MB (three times the request-body limit); the
worker holds it a few times over while it is read, decoded and refused. glibc serves an
allocation that large with its own ``mmap`` and unmaps it when freed, but each such free
also raises its *dynamic* mmap threshold (up to 32 MB), after which buffers of that size
come from the heap instead and stay in the process's memory after they are freed. With
websockets' reader that took the peak for a 27 MB hostile message from 3.0 to 5.0 MB
per MB (tests/worker/test_hostile_hub.py). Setting the threshold once fixes it at its
default of 128 KiB: glibc documents that setting it turns the dynamic adjustment off.

This is one call of the C library's own ``mallopt``; no library wraps it. Elsewhere
(musl, Windows, macOS) it does nothing: their allocators return large blocks already.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's default, fixed


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold; True if it was set (False where there is no glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt to speak of)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) was refused")
    return done

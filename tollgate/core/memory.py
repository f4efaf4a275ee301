"""Freed memory handed back to the system between stages.

Memory a stage frees stays in the process unless returned: glibc keeps each thread's freed heap in that thread's
arena (four candidates side by side leave four), and Arrow's allocator keeps its freed pages for reuse. The next
stage then starts from the old high-water mark; on 1M churn rows that was ~0.5 GiB after the tournament and
~0.3 GiB after ingest, which the final fit's peak stacked on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache

import psutil


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    return trim


def release_freed_memory() -> None:
    """Return the heap pages freed so far to the system: Arrow's pool (when Arrow is in use) and every malloc arena."""
    arrow = sys.modules.get("pyarrow")  # only if loaded: importing it costs the service time
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def resident_gib() -> float:
    """This process's resident set, in GiB."""
    return float(psutil.Process().memory_info().rss) / 2**30

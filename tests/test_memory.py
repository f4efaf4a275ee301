"""Freed memory handed back to the system between stages (``tollgate.core.memory``). Each case runs in a fresh
interpreter: what other tests left in this one's heaps would decide what a release can return."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tollgate.config.settings import PROJECT_ROOT
from tollgate.core.memory import _malloc_trim


def released_gib(work: str) -> float:
    """Resident GiB that ``release_freed_memory`` returns after ``work`` ran in a fresh interpreter."""
    script = (
        "from tollgate.core.memory import release_freed_memory, resident_gib\n"
        f"{work}\n"
        "before = resident_gib()\n"
        "release_freed_memory()\n"
        "print(before - resident_gib())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


@pytest.mark.skipif(_malloc_trim() is None, reason="the C library has no malloc_trim")
def test_memory_a_thread_freed_goes_back_to_the_system():
    """Check that what a finished thread freed (kept in its malloc arena, as a candidate's was) leaves the resident
    set on release: ~0.3 GiB of 1 KiB blocks allocated and freed there."""
    work = (
        "import threading\n"
        "def allocate_and_free():\n"
        "    blocks = [bytearray(1024) for _ in range(300_000)]\n"
        "    blocks.clear()\n"
        "worker = threading.Thread(target=allocate_and_free)\n"
        "worker.start()\n"
        "worker.join()\n"
    )
    assert released_gib(work) > 0.15


def test_arrows_freed_pages_go_back_to_the_system():
    """Check that the pages Arrow's pool keeps for reuse after a columnar pass (as ingest's and cleaning's) leave
    the resident set on release: ~0.1 GiB of upper-cased text."""
    work = (
        "import pyarrow as pa, pyarrow.compute as pc\n"
        "texts = pa.array([str(i) * 3 for i in range(20_000)])\n"
        "release_freed_memory()  # what building the input left behind is not counted\n"
        "upper = [pc.utf8_upper(texts) for _ in range(100)]\n"
        "del upper\n"
    )
    assert released_gib(work) > 0.05

"""Child processes Tollgate starts (a temporary Prefect server, a bento build) end with their parent.

A parent killed with SIGKILL runs no cleanup, so the child is told by the kernel instead: on Linux,
``PR_SET_PDEATHSIG`` sends it SIGTERM the moment its parent dies (elsewhere the child is only stopped
by the parent's own cleanup).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def ending_with_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that makes the child end when this process ends (None
    where the kernel offers no such thing)."""
    library = ctypes.util.find_library("c")
    if library is None or not hasattr(signal, "SIGTERM") or os.uname().sysname != "Linux":
        return None
    libc = ctypes.CDLL(library, use_errno=True)
    parent = os.getpid()

    def end_with_parent() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return end_with_parent

"""Headless Chromium (Debian's package, installed by `make browser`) with the network off: what an analyst's
browser shows of a page on disk, after its scripts ran."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # no network at all: every host name fails to resolve and every fetch goes to a closed proxy port
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
]


def rendered_dom(url: str, budget_ms: int = 5000) -> str:
    """The page's DOM once its scripts ran for ``budget_ms`` of virtual time; Chromium runs as this call's child
    and is gone when it returns."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("headless Chromium is not installed: `make browser` installs Debian's chromium package")
    with tempfile.TemporaryDirectory(prefix="tollgate-chromium-") as profile:
        command = [chromium, *OFFLINE, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        result = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout

"""Helpers for the real servers the integration tests start: free ports and clean shutdowns."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tollgate.config.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, grace_seconds: float = 20) -> None:
    """SIGINT to the process group (a server and its workers), then SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Server:
    """`bentoml serve` in a subprocess; stopped (SIGINT, then kill) when the test module ends."""

    def __init__(
        self, target: str | None, env: dict[str, str], cwd: Path = PROJECT_ROOT, inherit_tollgate: bool = True
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = Path(env["TOLLGATE_PREDICTION_LOG_DIR"]).parent / f"serve-{self.port}.log"
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.output, "w")  # noqa: SIM115 - open while the server runs, closed in stop()
        # Without inherited settings a server still has the test session's signing key: the machine's key.
        kept = ("TOLLGATE_SIGNING_KEY", "TOLLGATE_SIGNING_KEY_FILE")
        base = {k: v for k, v in os.environ.items() if inherit_tollgate or not k.startswith("TOLLGATE_") or k in kept}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                *([target] if target else []),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=cwd,
            env={**base, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"bentoml serve exited {self.process.returncode}:\n{self.output.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"bentoml serve not ready after {timeout} s:\n{self.output.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_group(self.process)
        self._log.close()

"""A command's temporary Prefect server, started before anything else is imported.

Without ``PREFECT_API_URL`` a flow's command runs on a server of its own (``uvicorn`` on a free loopback port, no
UI), which ends with the command even when the command is killed with SIGKILL (see ``tollgate.store.processes``).
Its start is ~3 s of one core: begun first, before Prefect and the flow's stages are imported on the other core,
it is up about when they are. This module imports nothing but the standard library, so that a command can start
the server as its first line; ``flows.cli.prefect_api`` waits for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from tollgate.store.processes import ending_with_this_process

HELP = frozenset({"-h", "--help"})


class PrefectServerError(RuntimeError):
    """The temporary Prefect server did not start."""


class TemporaryServer:
    """A Prefect server of this command's own (``uvicorn`` on a free loopback port, no UI), ended with it."""

    def __init__(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        print(f"starting a temporary Prefect server on {self.url}", file=sys.stderr, flush=True)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"),
            ],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            },
            preexec_fn=ending_with_this_process(),
        )

    def wait_until_healthy(self, timeout: float) -> None:
        """Wait until it answers, up to ``timeout`` seconds counted from its start (asked at least once)."""
        import httpx

        deadline = self.started + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise PrefectServerError(
                        f"the temporary Prefect server exited {self.process.returncode} while starting"
                    )
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        raise PrefectServerError(
            f"the temporary Prefect server did not answer within {timeout:g} s; raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a loaded machine, or set PREFECT_API_URL to a "
            "running server (prefect server start)"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_early: list[TemporaryServer] = []


def start_prefect_server_early(module: str = "__main__", argv: list[str] | None = None) -> None:
    """Start the command's temporary server now, when ``module`` is the command being run (``__name__`` of the
    caller), it was not asked for help, and ``PREFECT_API_URL`` is not in the environment. A URL Prefect reads from
    elsewhere (a profile, a ``.env`` file) is known only once Prefect is imported: ``flows.cli.prefect_api`` then
    stops this server unused."""
    arguments = sys.argv[1:] if argv is None else argv
    if module != "__main__" or HELP & set(arguments) or os.environ.get("PREFECT_API_URL") or _early:
        return
    _early.append(TemporaryServer())


def early_server() -> TemporaryServer | None:
    """The server ``start_prefect_server_early`` started, handed over once (None if it started none)."""
    return _early.pop() if _early else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""A command's temporary Prefect server, started before anything else is imported.

Without ``PREFECT_API_URL`` a flow's command runs on a server of its own (``uvicorn`` on a free loopback port, no
UI), which ends with the command even when the command is killed with SIGKILL (see ``tollgate.store.processes``).
Its start is ~3 s of one core: begun first, before Prefect and the flow's stages are imported on the other core,
it is up about when they are. A thread asks it for its health from its start (what ``wait_until_healthy`` waits
for) and then three cheap queries, so that its first queries' costs (its database connections, the queries'
compilation: ~0.3 s of its core) are paid while the stages still import, not while the run waits for its first
answers. This module imports nothing but the standard library, so that a command
can start the server as its first line; ``flows.cli.prefect_api`` waits for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

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
        self.answered, self.warmed = threading.Event(), threading.Event()
        threading.Thread(target=self._warm_up, name="prefect-server-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        """Ask it for its health until it answers (``answered``), then the queries a run's first requests would make
        it compile (read-only: nothing is written; ``warmed``); errors are passed over (``wait_until_healthy`` and
        the run report a server's failures)."""
        while self.process.poll() is None and not _answers(f"{self.url}/health"):
            time.sleep(0.1)
        if self.process.poll() is not None:
            return
        self.answered.set()
        for path in WARM_UP:
            if self.process.poll() is not None or not _answers(f"{self.url}{path}", {"limit": 1}):
                return
        self.warmed.set()

    def wait_until_healthy(self, timeout: float) -> None:
        """Wait until it has answered (the warm-up thread asks it from its start), up to ``timeout`` seconds counted
        from its start."""
        deadline = self.started + timeout
        while not self.answered.wait(0.1):
            if self.process.poll() is not None:
                exited = self.process.returncode
                raise PrefectServerError(f"the temporary Prefect server exited {exited} while starting")
            if time.monotonic() >= deadline:
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


WARM_UP = ("/flows/filter", "/flow_runs/filter", "/task_runs/filter")
"""Read-only queries over the tables a run's first requests write (Telco, process start to the flow's first stage:
4.3 s → 4.1 s, medians of seven interleaved runs each)."""
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through an HTTP(S)_PROXY


def _answers(url: str, body: dict | None = None) -> bool:
    """Whether ``url`` answers 200 (a POST of ``body`` as JSON when given)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with _DIRECT.open(request, timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


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

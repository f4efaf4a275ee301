"""What every flow's command line does: run the flow, print one JSON line last, exit 0 or 1.

Without ``PREFECT_API_URL`` a command starts its own temporary Prefect server (as Prefect would), but
one that ends with the command even when the command is killed with SIGKILL (``flows.server``): Prefect's
own stays behind as an orphan. Its start waits up to
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (Prefect's setting; the Makefile sets 90 s, a
loaded machine needs more than Prefect's 20 s default). The JSON line is printed on every way out: the
flow's result, its failure, a server that did not start, SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect import Flow
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    temporary_settings,
)

from flows.server import TemporaryServer, early_server


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so every ``finally`` runs and the JSON line is printed."""


def plain_failure(error: BaseException, label: str) -> dict[str, Any]:
    return {"dataset": label, "status": "failed", "error": f"{type(error).__name__}: {error}"}


def run_and_report(
    flow: Flow,
    label: str,
    failure_summary: Callable[[BaseException, str], dict[str, Any]] = plain_failure,
    shown: Callable[[dict[str, Any]], dict[str, Any]] = lambda result: result,
    preload: tuple[str, ...] = (),
    **parameters: Any,
) -> int:
    """Run ``flow(**parameters)`` on this command's Prefect API; its result (``shown``) or the error
    (``failure_summary``) is the last line on stdout, as JSON, whatever ends the run short of SIGKILL.
    ``preload``: modules the run needs, imported while a temporary server starts."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    summary: dict[str, Any] = plain_failure(RuntimeError("the run ended before it reported"), label)
    code = 1
    try:
        with prefect_api(preload):
            state = flow(**parameters, return_state=True)
        if state.is_completed():
            summary, code = shown(state.result()), 0
        else:
            error = state.result(raise_on_failure=False)
            summary = failure_summary(error if isinstance(error, BaseException) else RuntimeError(str(error)), label)
    except (Exception, KeyboardInterrupt, Terminated) as error:
        stopped = {KeyboardInterrupt: "interrupted (Ctrl-C)", Terminated: "terminated (SIGTERM)"}.get(type(error))
        summary = failure_summary(RuntimeError(stopped) if stopped else error, label)
        code = 130 if isinstance(error, KeyboardInterrupt) else 143 if isinstance(error, Terminated) else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if code:
            print(f"\nrun failed: {summary.get('error')}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        print(json.dumps(summary, default=str), flush=True)
    return code


def exit_now(code: int) -> None:
    """End the command with ``code`` once its output is out: the JSON line and the log flushed, the temporary server
    stopped (``run_and_report`` has returned), nothing is left to do but the interpreter's teardown, which joins
    Prefect's and the libraries' idle background threads and frees every object one by one (~2 s after a retrain)."""
    _stop_process_pools()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def _stop_process_pools() -> None:
    """End joblib's worker processes, if a library started them (the teardown ``os._exit`` skips would have): left
    alone they idle for minutes after the command, holding memory and the command's output pipe open."""
    pools = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(pools, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def prefect_api(preload: tuple[str, ...] = ()) -> Iterator[str]:
    """The Prefect API this command talks to: ``PREFECT_API_URL`` when set, else a temporary server started
    here and stopped (or, if this process is killed, ended by the kernel) with the command. ``preload`` names
    modules the run will need: they are imported while the server starts."""
    configured = PREFECT_API_URL.value()
    server = early_server()
    if configured:
        if server is not None:  # the URL is in a profile or a .env file, not in the environment
            server.stop()
        yield configured
        return
    server = server or TemporaryServer()
    try:
        for module in preload:
            importlib.import_module(module)
        server.wait_until_healthy(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
        # No heartbeats: they tell a server that outlives its runs about crashed ones, and this one ends with the
        # run (the flow's end also waits up to a second for the heartbeat thread to wake).
        with temporary_settings(updates={PREFECT_API_URL: server.url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            try:
                yield server.url
            finally:
                _send_what_is_queued()
    finally:
        server.stop()


def _send_what_is_queued() -> None:
    """Deliver queued logs and events before the server stops (else they retry against a closed port for a
    minute at exit, then are lost)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(RuntimeError):  # never started
            worker.drain_all(timeout=10)

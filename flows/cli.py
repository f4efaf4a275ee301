"""What every flow's command line does: run the flow, print one JSON line last, exit 0 or 1."""

from __future__ import annotations

import json

from prefect import Flow


def run_and_report(flow: Flow, dataset: str, **parameters) -> int:
    """Run ``flow``; its result (or the error) is the last line on stdout, as JSON."""
    state = flow(dataset=dataset, **parameters, return_state=True)
    if state.is_completed():
        print(json.dumps(state.result(), default=str), flush=True)
        return 0
    error = state.result(raise_on_failure=False)
    print(json.dumps({"dataset": dataset, "status": "failed", "error": f"{type(error).__name__}: {error}"}), flush=True)
    return 1

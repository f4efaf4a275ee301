"""Wall time and peak memory of the retrain flow, run as a user runs it (the CLI, in a subprocess).

    .venv/bin/python benchmarks/flow_bench.py                 # churn and security sample data
    .venv/bin/python benchmarks/flow_bench.py --dataset churn --data ../shared/data/telco_churn.csv

Each run starts Prefect's ephemeral server, as `make run` does; its start-up is included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(dataset: str, data: str | None) -> dict:
    command = [sys.executable, "-m", "flows.retrain", "--dataset", dataset] + (["--data", data] if data else [])
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"dataset": dataset, "data": data or f"data/raw/{dataset}", "status": summary["status"],
            "rows_in": summary["rows_in"], "wall_s": round(wall, 1),
            "holdout_roc_auc": (summary.get("holdout") or {}).get("roc_auc")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", help="churn and/or security (default: both)")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    print(f"{'dataset':<10} {'rows in':>9} {'wall s':>8} {'peak RSS MiB':>13} {'ROC-AUC':>8}  data")
    for dataset in args.dataset or ["churn", "security"]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = measure(dataset, args.data)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # ru_maxrss is the largest child so far (KiB on Linux): exact for the first run, an upper bound after.
        print(f"{dataset:<10} {result['rows_in'] or 0:>9,} {result['wall_s']:>8} {max(peak, before) / 1024:>13,.0f} "
              f"{result['holdout_roc_auc'] or float('nan'):>8.4f}  {result['data']} ({result['status']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

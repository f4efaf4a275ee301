"""Wall time and peak memory of the whole retrain flow (ingest → … → report), run as a user runs it.

    .venv/bin/python benchmarks/train_bench.py                  # sample churn months
    .venv/bin/python benchmarks/train_bench.py --rows 1000000   # plus one generated 1,000,000-row batch
    .venv/bin/python benchmarks/train_bench.py --dataset security --data ../shared/data/telco_churn.csv …

Each run is `python -m flows.retrain` in a subprocess (Prefect's ephemeral server start-up
included); peak memory is the largest resident set of that process tree, sampled every 0.2 s.
Targets on a 2-core machine: sample under 90 s; 1M rows under 15 minutes and 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_flow(arguments: list[str], artifacts: Path) -> dict:
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "TOLLGATE_ARTIFACTS_DIR": str(artifacts),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.retrain", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - started
    summary = json.loads(process.stdout.read().strip().splitlines()[-1])
    return {"wall_s": wall, "peak_gib": peak / 2**30, **summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=0, help="also run one generated churn batch of this many rows")
    parser.add_argument("--dataset", action="append", help="sample datasets to run (default: churn)")
    parser.add_argument("--data", action="append", default=[], help="extra churn files to run, e.g. the Telco export")
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    cases = (
        []
        if args.skip_sample
        else [(f"{name} sample (7 months)", ["--dataset", name]) for name in args.dataset or ["churn"]]
    )
    cases += [(f"churn {Path(path).name}", ["--dataset", "churn", "--data", path]) for path in args.data]
    with tempfile.TemporaryDirectory() as scratch:
        if args.rows:
            from tollgate.synth.generate import make_batch

            print(f"generating a {args.rows:,}-row churn batch …", flush=True)
            path = Path(scratch) / "churn_big.csv"
            make_batch("churn", "2026-01", 0, 12, args.rows, seed=11, jitter=False).to_csv(path, index=False)
            cases.append((f"churn {args.rows:,} rows", ["--dataset", "churn", "--data", str(path)]))
        print(f"{'case':<28} {'rows in':>10} {'wall':>9} {'peak RSS':>9}  winner (holdout ROC-AUC)")
        for label, arguments in cases:
            result = run_flow(arguments, Path(scratch) / "artifacts")
            winner = result.get("winner") or {}
            print(
                f"{label:<28} {result['rows_in'] or 0:>10,} {result['wall_s']:>8.1f}s {result['peak_gib']:>7.2f}GiB"
                f"  {winner.get('model', result['status'])} ({winner.get('test_roc_auc', float('nan')):.4f})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

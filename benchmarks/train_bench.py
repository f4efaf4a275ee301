"""Wall time and peak memory of the whole retrain flow (ingest → … → report), run as a user runs it.

    .venv/bin/python benchmarks/train_bench.py                  # sample churn months
    .venv/bin/python benchmarks/train_bench.py --rows 1000000   # plus one generated 1,000,000-row batch
    .venv/bin/python benchmarks/train_bench.py --skip-sample --rows 2500000 --months 6 --keep /tmp/window
                                        # the retention team's window: 6 months of 2.5M customers + a 2.5M holdout
    .venv/bin/python benchmarks/train_bench.py --dataset security --data ../shared/data/telco_churn.csv …

Each run is `python -m flows.retrain` in a subprocess (Prefect's ephemeral server start-up
included); peak memory is the largest resident set of that process tree, sampled every 0.2 s. Each stage's
memory (the flow's own log lines: resident set when it ended, the process's peak so far) is printed after the run.
Targets on a 2-core machine: sample under 90 s; 1M rows under 15 minutes and 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


STAGE_MEMORY = re.compile(r"memory after (\S+): ([\d.]+) GiB resident, peak so far ([\d.]+) GiB")


def run_flow(arguments: list[str], artifacts: Path) -> dict:
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TOLLGATE_ARTIFACTS_DIR": str(artifacts),
    }
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.retrain", *arguments],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        root = psutil.Process(process.pid)
        peak = flow_peak = 0
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
                flow_peak = max(flow_peak, root.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.2)
        wall = time.perf_counter() - started
        log.seek(0)
        stages = [match.groups() for match in STAGE_MEMORY.finditer(log.read())]
    summary = json.loads(process.stdout.read().strip().splitlines()[-1])
    return {"wall_s": wall, "peak_gib": peak / 2**30, "flow_peak_gib": flow_peak / 2**30, "stages": stages, **summary}


def window(folder: Path, months: int, rows: int) -> Path:
    """``months`` training months and a holdout month of ``rows`` generated churn customers each, as the raw CSV
    exports the flow reads (reused when already there)."""
    from tollgate.synth.generate import make_batch, month_names

    folder.mkdir(parents=True, exist_ok=True)
    for index, month in enumerate(month_names("2026-01", months + 1)):
        path = folder / f"{month}.csv"
        if not path.exists():
            print(f"generating {month}: {rows:,} customers …", flush=True)
            partial = path.with_suffix(".partial")
            make_batch("churn", month, index, 12, rows, seed=11, jitter=False).to_csv(partial, index=False)
            partial.rename(path)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=0, help="also run one generated churn batch of this many rows")
    parser.add_argument("--dataset", action="append", help="sample datasets to run (default: churn)")
    parser.add_argument("--data", action="append", default=[], help="extra churn files to run, e.g. the Telco export")
    parser.add_argument(
        "--months", type=int, default=0, help="with --rows: this many training months of --rows each, plus a holdout"
    )
    parser.add_argument("--keep", help="generate into this folder, and reuse what is there (the window is gigabytes)")
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    cases = (
        []
        if args.skip_sample
        else [(f"{name} sample (7 months)", ["--dataset", name]) for name in args.dataset or ["churn"]]
    )
    cases += [(f"churn {Path(path).name}", ["--dataset", "churn", "--data", path]) for path in args.data]
    with tempfile.TemporaryDirectory() as scratch:
        if args.rows and args.months:
            folder = window(Path(args.keep or scratch) / f"window-{args.months}x{args.rows}", args.months, args.rows)
            label = f"churn {args.months}+1 × {args.rows:,}"
            cases.append((label, ["--dataset", "churn", "--data", str(folder)]))
        elif args.rows:
            from tollgate.synth.generate import make_batch

            print(f"generating a {args.rows:,}-row churn batch …", flush=True)
            path = Path(args.keep or scratch) / f"churn_{args.rows}.csv"
            if not path.exists():
                make_batch("churn", "2026-01", 0, 12, args.rows, seed=11, jitter=False).to_csv(path, index=False)
            cases.append((f"churn {args.rows:,} rows", ["--dataset", "churn", "--data", str(path)]))
        print(f"{'case':<28} {'rows in':>10} {'wall':>9} {'peak RSS':>9}  winner (holdout ROC-AUC), gate, promotion")
        for label, arguments in cases:
            result = run_flow(arguments, Path(scratch) / "artifacts")
            winner = result.get("winner") or {}
            decision = (result.get("promotion") or {}).get("decision", result.get("error"))
            gate = "passed" if (result.get("quality") or {}).get("success") else "failed"
            print(
                f"{label:<28} {result['rows_in'] or 0:>10,} {result['wall_s']:>8.1f}s {result['peak_gib']:>7.2f}GiB"
                f"  {winner.get('model', result['status'])} ({winner.get('test_roc_auc', float('nan')):.4f}), "
                f"{result.get('rows_clean') or 0:,} rows clean, gate {gate}, "
                f"{decision}",
                flush=True,
            )
            print(
                f"    the flow's own process: peak {result['flow_peak_gib']:.2f} GiB "
                "(the rest of the tree: its Prefect server, bentoml build)"
            )
            for stage, resident, peak_so_far in result["stages"]:
                print(
                    f"    after {stage:<32} {float(resident):>6.2f} GiB resident, "
                    f"peak so far {float(peak_so_far):.2f} GiB"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

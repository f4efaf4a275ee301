"""The retrain flow against the plain training script a user would otherwise write, timed in one run.

    .venv/bin/python benchmarks/compare_training.py [--data ../shared/data/telco_churn.csv] [--rounds 3]

Each round runs, one after the other and alternating which goes first, ``python -m flows.retrain --dataset churn
--data FILE`` (its own temporary Prefect server, the gate, cleaning, the tournament, threshold, explanations,
report, promotion and the bento of the promoted model; fresh artifacts and BentoML store each time, so every
run promotes and builds; one Prefect home for all runs, whose database the first run creates) and
``benchmarks/baselines/plain_training.py FILE`` (the same candidates, split and folds, nothing else). Wall time
is process start to exit, imports included. Prints the median of each, the ratio flow ÷ script, and both
results, which must agree (the same winner and holdout ROC-AUC).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TELCO = ROOT.parent / "shared" / "data" / "telco_churn.csv"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(TELCO), help="a churn file (default: the IBM Telco export)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {"flow": [], "script": []}
    results: dict[str, dict] = {}
    # One Prefect home for the whole benchmark, as a user has one: its database is created (and migrated) by the
    # first run only; a home of its own also keeps a database another Prefect version migrated out of the way.
    prefect_home = tempfile.TemporaryDirectory()
    for round_number in range(args.rounds):
        order = ("flow", "script") if round_number % 2 == 0 else ("script", "flow")
        for name in order:
            with tempfile.TemporaryDirectory() as scratch:
                env = {
                    **os.environ,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                    "TOLLGATE_ARTIFACTS_DIR": str(Path(scratch) / "artifacts"),
                    "BENTOML_HOME": str(Path(scratch) / "bentoml"),
                    "PREFECT_HOME": prefect_home.name,
                    "BENTOML_DO_NOT_TRACK": "true",
                }
                command = (
                    [sys.executable, "-m", "flows.retrain", "--dataset", "churn", "--data", args.data]
                    if name == "flow"
                    else [sys.executable, str(ROOT / "benchmarks" / "baselines" / "plain_training.py"), args.data]
                )
                wall, result = timed(command, env)
            walls[name].append(wall)
            results[name] = result
            print(f"round {round_number + 1}: {name} {wall:.1f} s", flush=True)

    prefect_home.cleanup()
    flow, script = results["flow"], results["script"]
    flow_winner = (flow.get("winner") or {}).get("model")
    flow_auc = (flow.get("winner") or {}).get("test_roc_auc")
    median = {name: statistics.median(values) for name, values in walls.items()}
    print("\n| | median wall (s) | runs (s) | winner | holdout ROC-AUC |")
    print("|---|---|---|---|---|")
    print(
        f"| flow | {median['flow']:.1f} | {', '.join(f'{w:.1f}' for w in walls['flow'])} | {flow_winner} | {flow_auc} |"
    )
    print(
        f"| plain script | {median['script']:.1f} | {', '.join(f'{w:.1f}' for w in walls['script'])} | "
        f"{script['winner']} | {script['holdout_roc_auc']} |"
    )
    print(f"\nflow ÷ script: {median['flow'] / median['script']:.2f}×")
    same = flow_winner == script["winner"] and flow_auc is not None and abs(flow_auc - script["holdout_roc_auc"]) < 5e-4
    print("same result: " + ("yes" if same else f"NO (flow {flow_winner} {flow_auc}, script {script})"))
    print(json.dumps({"walls": walls, "flow": flow.get("winner"), "script": script}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""The retrain flow against the plain training script a user would otherwise write, timed in one run.

    .venv/bin/python benchmarks/compare_training.py [--data ../shared/data/telco_churn.csv] [--rounds 3]

Each round runs, one after the other and rotating which goes first, ``python -m flows.retrain --dataset churn
--data FILE`` twice (once starting its own temporary Prefect server, as ``make run`` does, and once against a
running ``prefect server start``, as scheduled deployments run; the flow itself: the gate, cleaning, the
tournament, threshold, explanations, report, promotion and the bento of the promoted model; fresh artifacts
and BentoML store each time, so every run promotes and builds; one Prefect home for all runs, whose database
the first run creates) and
``benchmarks/baselines/plain_training.py FILE`` (the same candidates, split and folds, nothing else; the flow runs
the churn spec with ``tournament.ensemble: null``, so it enters no more candidates than the script). Wall time
is process start to exit, imports included. Prints the median of each, the ratios to the script, and the
results, which must agree (the same winner and holdout ROC-AUC).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

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


@contextmanager
def running_prefect_server(env: dict[str, str]) -> Iterator[str]:
    """``prefect server start`` on a free loopback port, as a team that schedules its runs has one; its API URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PREFECT_UI_ENABLED": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            raise SystemExit("prefect server start did not answer within 120 s")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(TELCO), help="a churn file (default: the IBM Telco export)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names = ("flow", "flow, running server", "script")
    walls: dict[str, list[float]] = {name: [] for name in names}
    results: dict[str, dict] = {}
    # One Prefect home for the whole benchmark, as a user has one: its database is created (and migrated) by the
    # first run only; a home of its own also keeps a database another Prefect version migrated out of the way.
    prefect_home = tempfile.TemporaryDirectory()
    base = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_HOME": prefect_home.name,
        "BENTOML_DO_NOT_TRACK": "true",
    }
    base.pop("PREFECT_API_URL", None)
    # The same candidates as the script: the churn spec without the ensemble candidate the flow adds by default.
    spec_file = Path(prefect_home.name) / "churn.yaml"
    specs = ROOT / "data" / "specs"
    spec = yaml.safe_load((specs / "churn.yaml").read_text())
    spec.setdefault("tournament", {})["ensemble"] = None
    spec["quality"]["suite"] = str((specs / spec["quality"]["suite"]).resolve())  # relative to the spec's folder
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    flow_command = [sys.executable, "-m", "flows.retrain", "--spec", str(spec_file), "--data", args.data]
    script_command = [sys.executable, str(ROOT / "benchmarks" / "baselines" / "plain_training.py"), args.data]
    with running_prefect_server(base) as api_url:
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:  # each variant goes first in turn
                with tempfile.TemporaryDirectory() as scratch:
                    env = {
                        **base,
                        "TOLLGATE_ARTIFACTS_DIR": str(Path(scratch) / "artifacts"),
                        "BENTOML_HOME": str(Path(scratch) / "bentoml"),
                        **({"PREFECT_API_URL": api_url} if name == "flow, running server" else {}),
                    }
                    wall, result = timed(script_command if name == "script" else flow_command, env)
                walls[name].append(wall)
                results[name] = result
                print(f"round {round_number + 1}: {name} {wall:.1f} s", flush=True)
    prefect_home.cleanup()

    script = results["script"]
    median = {name: statistics.median(values) for name, values in walls.items()}
    print("\n| | median wall (s) | runs (s) | ÷ script | winner | holdout ROC-AUC |")
    print("|---|---|---|---|---|---|")
    same = True
    for name in names:
        runs = ", ".join(f"{w:.1f}" for w in walls[name])
        ratio = median[name] / median["script"]
        if name == "script":
            winner, auc = script["winner"], script["holdout_roc_auc"]
        else:
            summary = results[name].get("winner") or {}
            winner, auc = summary.get("model"), summary.get("test_roc_auc")
            agrees = winner == script["winner"] and auc is not None and abs(auc - script["holdout_roc_auc"]) < 5e-4
            same = same and agrees
        label = {"flow": "flow (its own temporary Prefect server)", "script": "plain script"}.get(name, name)
        print(f"| {label} | {median[name]:.1f} | {runs} | {ratio:.2f}× | {winner} | {auc} |")
    print("same result: " + ("yes" if same else f"NO: {json.dumps({n: results[n].get('winner') for n in names})}"))
    print(json.dumps({"walls": walls, "script": script}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

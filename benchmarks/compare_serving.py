"""Tollgate's service against what a user would otherwise deploy around the same stored Pipeline: a minimal
BentoML 1.4 service and Flask + gunicorn (2 sync workers), both with a pandas frame per request.

    .venv/bin/pip install -e '.[bench]'            # flask, gunicorn (or: make bench)
    .venv/bin/python benchmarks/compare_serving.py [--tag MODEL] [--rounds 3] [--seconds 10]

All three serve the same model on loopback at once; each scenario (/predict at c=1 and c=32, /predict_batch
with a 5,000-row JSON records body at c=8, so that both workers of each service are kept busy) is measured on
one service at a time, the services interleaved round by round, so a slow moment of the machine falls on all
of them. Tollgate's bulk bodies (the same 5,000 rows as columnar JSON, as an Arrow IPC stream answered in JSON,
and answered as an Arrow stream) run in the same rounds; their ratios are against the baselines' JSON batch,
the body those services take. The load comes from wrk where it is installed
(Debian's package), else from a bounded Python client (aiohttp, keep-alive) in this process, which competes
for the two cores and caps the figures. Prints the median over rounds of each figure and Tollgate ÷ baseline.
Records without missing values are sent, since the baselines' bare Pipeline cannot take a null in a number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_bench import free_port, holdout_records, load, newest_model  # noqa: E402
from tollgate.config.settings import PROJECT_ROOT  # noqa: E402
from tollgate.core.batch import arrow_stream  # noqa: E402
from tollgate.store.models import load_packaged_model  # noqa: E402

BATCH_ROWS = 5000
SERVICES = ("tollgate", "plain BentoML", "Flask + gunicorn")
JSON = {"Content-Type": "application/json"}
ARROW_STREAM = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True)
class Scenario:
    path: str
    bodies: list[bytes]
    concurrency: int
    requests: int  # without wrk
    rows: int = 1
    headers: dict[str, str] = field(default_factory=lambda: JSON)
    services: tuple[str, ...] = SERVICES
    baselines_from: str | None = None  # a Tollgate-only scenario is compared with the baselines' figures there


def start(name: str, tag: str, port: int, log_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "BASELINE_MODEL_TAG": tag,
        "TOLLGATE_DATASET": load_packaged_model(tag).spec.name,
        "TOLLGATE_MODEL_TAG": tag,
        "TOLLGATE_PREDICTION_LOG_DIR": str(log_dir),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    bentoml = [sys.executable, "-m", "bentoml", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command = {
        "tollgate": [*bentoml, "service.service:Tollgate"],
        "plain BentoML": [*bentoml, "benchmarks.baselines.plain_bentoml:Plain"],
        "Flask + gunicorn": [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "benchmarks.baselines.flask_app:app",
        ],
    }[name]
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_answering(url: str, body: bytes, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}) before answering")
        try:
            request = urllib.request.Request(f"{url}/predict", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{name} did not answer /predict in 180 s")


def wrk_figures(url: str, body: bytes, concurrency: int, seconds: int, headers: dict[str, str]) -> dict:
    """wrk's figures for POSTing ``body``: requests/s, p50/p99/max latency (ms), errors."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "body").write_bytes(body)
        script = Path(folder) / "post.lua"
        sent = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())
        script.write_text(
            f'wrk.method = "POST"\n{sent}'
            f'local f = io.open("{Path(folder) / "body"}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
        )
        threads = min(2, concurrency)
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        )
    text = done.stdout

    def milliseconds(value: str) -> float:
        found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
        if found is None:
            raise SystemExit(f"cannot read wrk's latency {value!r} for {url}:\n{text}")
        number, unit = found.groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]

    latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text).group(1)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50_ms": milliseconds(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
        "p99_ms": milliseconds(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
        "max_ms": milliseconds(latency),
        "errors": errors,
    }


def measure(url: str, scenario: Scenario, seconds: int) -> dict:
    if shutil.which("wrk"):
        return wrk_figures(url, scenario.bodies[0], scenario.concurrency, seconds, scenario.headers)
    return asyncio.run(load(url, scenario.bodies, scenario.concurrency, scenario.requests, scenario.headers))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--tag", help="a stored model (default: the dataset's champion)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="per scenario and round, with wrk")
    parser.add_argument("--requests", type=int, default=2000, help="per scenario and round, without wrk")
    parser.add_argument("--only", help="run only the scenarios whose name contains this (and the JSON batch)")
    args = parser.parse_args()

    tag = args.tag or newest_model(args.dataset)
    spec = load_packaged_model(tag).spec
    _, records = holdout_records(spec.name, spec)
    complete = [record for record in records if all(value is not None for value in record.values())]
    single = [json.dumps(record).encode() for record in complete[:500]]
    rows = (complete * (BATCH_ROWS // len(complete) + 1))[:BATCH_ROWS]
    batch = json.dumps(rows).encode()
    columns = json.dumps({"columns": {name: [row[name] for row in rows] for name in rows[0]}}).encode()
    arrow = arrow_stream(rows)
    driver = "wrk" if shutil.which("wrk") else "aiohttp in this process"
    print(f"model {tag}; {len(complete):,} complete holdout records; load from {driver}; {args.rounds} rounds")

    json_batch = f"/predict_batch {BATCH_ROWS:,} JSON records c=8"
    arrow_in = {"Content-Type": ARROW_STREAM}
    scenarios = {
        "/predict c=1": Scenario("/predict", single, 1, args.requests),
        "/predict c=32": Scenario("/predict", single, 32, args.requests * 2),
        json_batch: Scenario("/predict_batch", [batch], 8, 24, rows=BATCH_ROWS),
        f"/predict_batch {BATCH_ROWS:,} rows, columnar JSON c=8": Scenario(
            "/predict_batch", [columns], 8, 24, BATCH_ROWS, services=SERVICES[:1], baselines_from=json_batch
        ),
        f"/predict_batch {BATCH_ROWS:,} rows, Arrow in, JSON out c=8": Scenario(
            "/predict_batch", [arrow], 8, 24, BATCH_ROWS, arrow_in, SERVICES[:1], json_batch
        ),
        f"/predict_batch {BATCH_ROWS:,} rows, Arrow in and out c=8": Scenario(
            "/predict_batch", [arrow], 8, 24, BATCH_ROWS, {**arrow_in, "Accept": ARROW_STREAM}, SERVICES[:1], json_batch
        ),
    }
    if args.only:
        scenarios = {name: scenario for name, scenario in scenarios.items() if args.only in name or name == json_batch}
    figures: dict[str, dict[str, list[dict]]] = {name: {s: [] for s in sc.services} for name, sc in scenarios.items()}
    with tempfile.TemporaryDirectory() as log_dir:
        ports = {name: free_port() for name in SERVICES}
        processes = {name: start(name, tag, ports[name], Path(log_dir)) for name in SERVICES}
        try:
            for name in SERVICES:
                wait_answering(f"http://127.0.0.1:{ports[name]}", single[0], processes[name], name)
                measure(f"http://127.0.0.1:{ports[name]}/predict", Scenario("/predict", single, 4, 300), 2)  # warm up
            for round_number in range(args.rounds):
                for name, scenario in scenarios.items():
                    for service in scenario.services if round_number % 2 == 0 else reversed(scenario.services):
                        url = f"http://127.0.0.1:{ports[service]}{scenario.path}"
                        figures[name][service].append(measure(url, scenario, args.seconds))
                print(f"round {round_number + 1} of {args.rounds} done", flush=True)
        finally:
            for process in processes.values():
                os.killpg(process.pid, signal.SIGINT)
            for process in processes.values():
                process.wait(timeout=30)

    print("\n| scenario | figure | " + " | ".join(SERVICES) + " | Tollgate ÷ BentoML | Tollgate ÷ Flask |")
    print("|---|---|" + "---|" * (len(SERVICES) + 2))
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for name, per_service in figures.items():
        medians[name] = {
            service: {key: statistics.median(r[key] for r in results) for key in results[0]}
            for service, results in per_service.items()
        }
    for name, scenario in scenarios.items():
        compared = {**medians[scenario.baselines_from or name], "tollgate": medians[name]["tollgate"]}
        for key, label, higher_better in (
            ("requests_per_s", "rows/s" if scenario.rows > 1 else "req/s", True),
            ("p50_ms", "p50 ms", False),
            ("p99_ms", "p99 ms", False),
            ("max_ms", "max ms", False),
        ):
            values = {
                service: compared[service][key] * (scenario.rows if key == "requests_per_s" else 1)
                for service in SERVICES
            }
            ratios = [values["tollgate"] / values[other] for other in SERVICES[1:]]
            shown = " | ".join(
                (f"{values[s]:,.0f}" if key == "requests_per_s" else f"{values[s]:.2f}")
                + ("†" if scenario.baselines_from and s != "tollgate" else "")
                for s in SERVICES
            )
            better = "" if higher_better else " (lower is better)"
            print(f"| {name} | {label}{better} | {shown} | " + " | ".join(f"{r:.2f}×" for r in ratios) + " |")
        errors = {
            service: sum(r["errors"] for r in per_service_results)
            for service, per_service_results in figures[name].items()
        }
        if any(errors.values()):
            print(f"| {name} | errors | " + " | ".join(str(errors.get(s, "")) for s in SERVICES) + " | | |")
    if any(scenario.baselines_from for scenario in scenarios.values()):
        print(f"\n† the baseline's figure for {json_batch}: it takes no other body")
    print(json.dumps({"model": tag, "driver": driver, "medians": medians}, default=float))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())

"""Serving latency and throughput against a real `bentoml serve` of the dataset's newest model.

    .venv/bin/python benchmarks/serve_bench.py [--dataset churn] [--workers 1] [--requests 3000] [--tag MODEL]

Prints: in-process single-record latency (fast path vs the sklearn Pipeline), HTTP /predict
p50/p99/max at concurrency 1 and 32 with requests/s and errors, /predict_batch rows/s, and /predict at c=1
while batches arrive on another connection (mixed traffic: a LightGBM model's single records used to slow
from 0.2 ms to 5–7 ms when its OpenMP threads met a batch's). Records are
the newest raw month, cleaned, sent as a client would. Trains a model first if the store has none.
The load generator (aiohttp) runs on the same machine, so it competes with the server for cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tollgate.config.settings import PROJECT_ROOT, Settings  # noqa: E402
from tollgate.core.clean import clean_frame  # noqa: E402
from tollgate.core.fastpath import FastScorer  # noqa: E402
from tollgate.core.schema import request_records  # noqa: E402
from tollgate.store.models import champion_tag, load_packaged_model  # noqa: E402

TARGETS = {"fast_p50_ms": 0.3, "c1_p50_ms": 8.0, "c1_p99_ms": 25.0, "c32_rps": 600.0, "batch_rows_per_s": 50_000.0}


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def newest_model(dataset: str) -> str:
    import bentoml

    tag = champion_tag(dataset, Settings())
    try:
        return str(bentoml.models.get(tag).tag)
    except bentoml.exceptions.NotFound:
        print(
            f"no {dataset} model in the store: training one (python -m flows.retrain --dataset {dataset}) …", flush=True
        )
        subprocess.run(
            [sys.executable, "-m", "flows.retrain", "--dataset", dataset],
            cwd=PROJECT_ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return str(bentoml.models.get(tag).tag)


def holdout_records(dataset: str, spec) -> tuple[pd.DataFrame, list[dict]]:
    newest = sorted((Settings().raw_data_dir / dataset).glob("*.csv"))[-1]
    raw = pd.read_csv(newest, dtype=str, keep_default_na=False).rename(columns=spec.rename)
    frame = clean_frame(raw, spec).frame
    return frame, request_records(frame, spec)


def in_process(packaged, frame: pd.DataFrame, records: int = 1000) -> dict:
    scorer = FastScorer.compile(packaged.pipeline)
    features = frame[packaged.spec.input_columns].head(records)
    rows = features.to_dict(orient="records")
    fast, pipeline = [], []
    for record in rows:
        started = time.perf_counter()
        scorer.predict_proba(record)
        fast.append(time.perf_counter() - started)
    for position in range(len(rows)):
        started = time.perf_counter()
        packaged.pipeline.predict_proba(features.iloc[[position]])
        pipeline.append(time.perf_counter() - started)
    return {
        "fast_p50_ms": percentile_ms(fast, 50),
        "fast_p99_ms": percentile_ms(fast, 99),
        "pipeline_p50_ms": percentile_ms(pipeline, 50),
        "pipeline_p99_ms": percentile_ms(pipeline, 99),
    }


async def load(url: str, bodies: list[bytes], concurrency: int, total: int, headers: dict) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker(session) -> None:
        nonlocal errors
        for index in counter:
            body = bodies[index % len(bodies)]
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": max(latencies) * 1000,
        "requests_per_s": total / elapsed,
        "errors": errors,
        "requests": total,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(dataset: str, tag: str, workers: int, log_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "TOLLGATE_DATASET": dataset,
        "TOLLGATE_MODEL_TAG": tag,
        "TOLLGATE_WORKERS": str(workers),
        "TOLLGATE_PREDICTION_LOG_DIR": str(log_dir),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "service.service:Tollgate",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("bentoml serve did not become ready in 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--workers", type=int, default=Settings().workers)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--tag", help="a stored model to serve (default: the dataset's champion)")
    args = parser.parse_args()

    tag = args.tag or newest_model(args.dataset)
    packaged = load_packaged_model(tag)
    frame, records = holdout_records(args.dataset, packaged.spec)
    print(
        f"model {tag} ({packaged.metadata.get('algorithm')}), {len(records):,} holdout records, "
        f"{args.workers} worker(s), {os.cpu_count()} cores"
    )
    figures = {"in_process": in_process(packaged, frame)}

    bodies = [json.dumps(record).encode() for record in records]
    batch = json.dumps((records * (args.batch_size // len(records) + 1))[: args.batch_size]).encode()
    headers = {"Content-Type": "application/json"}
    with tempfile.TemporaryDirectory() as log_dir:
        process, url = serve(args.dataset, tag, args.workers, Path(log_dir))
        try:
            asyncio.run(load(f"{url}/predict", bodies, 4, 300, headers))  # warm up
            figures["c1"] = asyncio.run(load(f"{url}/predict", bodies, 1, args.requests, headers))
            figures["c32"] = asyncio.run(load(f"{url}/predict", bodies, 32, args.requests * 2, headers))
            batches = asyncio.run(load(f"{url}/predict_batch", [batch], 2, 20, headers))
            figures["batch"] = {**batches, "rows_per_s": batches["requests_per_s"] * args.batch_size}

            async def mixed() -> dict:
                background = asyncio.create_task(load(f"{url}/predict_batch", [batch], 1, 15, headers))
                singles = await load(f"{url}/predict", bodies, 1, args.requests // 3, headers)
                await background
                return singles

            figures["mixed"] = asyncio.run(mixed())
        finally:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=30)

    fast, c1, c32, batch_figures = figures["in_process"], figures["c1"], figures["c32"], figures["batch"]
    mixed_figures = figures["mixed"]
    rows = [
        (
            "in-process fast path p50 / p99",
            f"{fast['fast_p50_ms']:.3f} / {fast['fast_p99_ms']:.3f} ms",
            f"p50 ≤ {TARGETS['fast_p50_ms']} ms",
        ),
        ("in-process Pipeline p50 / p99", f"{fast['pipeline_p50_ms']:.2f} / {fast['pipeline_p99_ms']:.2f} ms", ""),
        (
            "HTTP /predict c=1 p50 / p99",
            f"{c1['p50_ms']:.2f} / {c1['p99_ms']:.2f} ms",
            f"≤ {TARGETS['c1_p50_ms']} / ≤ {TARGETS['c1_p99_ms']} ms",
        ),
        ("HTTP /predict c=1 throughput", f"{c1['requests_per_s']:.0f} req/s, {c1['errors']} errors", ""),
        ("HTTP /predict c=1 max", f"{c1['max_ms']:.1f} ms over {c1['requests']:,} requests", ""),
        (
            "HTTP /predict c=1 while batches arrive: p50 / p99 / max",
            f"{mixed_figures['p50_ms']:.2f} / {mixed_figures['p99_ms']:.2f} / {mixed_figures['max_ms']:.1f} ms",
            "",
        ),
        ("HTTP /predict c=32 p50 / p99", f"{c32['p50_ms']:.2f} / {c32['p99_ms']:.2f} ms", ""),
        (
            "HTTP /predict c=32 throughput",
            f"{c32['requests_per_s']:.0f} req/s, {c32['errors']} errors of {c32['requests']}",
            f"≥ {TARGETS['c32_rps']:.0f} req/s, 0 errors",
        ),
        (
            f"HTTP /predict_batch ({args.batch_size} rows, c=2)",
            f"{batch_figures['rows_per_s']:,.0f} rows/s, p50 {batch_figures['p50_ms']:.0f} ms",
            f"≥ {TARGETS['batch_rows_per_s']:,.0f} rows/s",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'measure':<{width}} | measured | target |\n|{'-' * (width + 2)}|---|---|")
    for name, value, target in rows:
        print(f"| {name:<{width}} | {value} | {target} |")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""In-process single-record latency: the fast path (tasks/fastpath.py) vs the sklearn Pipeline.

    .venv/bin/python benchmarks/fastpath_bench.py

Fits each candidate type on a generated churn month (and the two boosters on security, whose
pipeline adds the IsolationForest score), then scores held-out records one at a time, first all
through the fast path, then all through the Pipeline; prints p50/p99 in milliseconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tollgate.config.settings import Settings  # noqa: E402
from tollgate.config.spec import resolve_spec  # noqa: E402
from tollgate.core.clean import clean_frame  # noqa: E402
from tollgate.core.fastpath import FastScorer  # noqa: E402
from tollgate.core.features import (
    build_pipeline,  # noqa: E402
    features_and_target,  # noqa: E402
)
from tollgate.core.tournament import make_estimator  # noqa: E402
from tollgate.synth.generate import make_batch  # noqa: E402

RECORDS = 300


def percentiles(timings: list[float]) -> tuple[float, float]:
    return float(np.percentile(timings, 50) * 1000), float(np.percentile(timings, 99) * 1000)


def main() -> int:
    print(
        f"{'dataset':<9} {'model':<24} {'fast p50':>9} {'fast p99':>9} {'pipeline p50':>13} {'pipeline p99':>13}  (ms)"
    )
    for dataset, estimators in (
        ("churn", ["logistic_regression", "lightgbm", "hist_gradient_boosting", "random_forest"]),
        ("security", ["hist_gradient_boosting", "lightgbm"]),
    ):
        spec = resolve_spec(dataset, None, Settings())
        frame = clean_frame(make_batch(dataset, "2026-01", 0, 12, 4000, seed=5), spec).frame
        features, target = features_and_target(frame, spec)
        records = features.tail(RECORDS)
        for estimator in estimators:
            candidate = next(c for c in spec.tournament.candidates if c.estimator == estimator)
            pipeline = build_pipeline(spec, make_estimator(candidate, spec.split.seed)).fit(features, target)
            scorer = FastScorer.compile(pipeline)
            fast, slow = [], []
            for record in records.to_dict(orient="records"):
                started = time.perf_counter()
                scorer.predict_proba(record)
                fast.append(time.perf_counter() - started)
            for position in range(len(records)):
                started = time.perf_counter()
                pipeline.predict_proba(records.iloc[[position]])
                slow.append(time.perf_counter() - started)
            print(
                f"{dataset:<9} {estimator:<24} {percentiles(fast)[0]:>9.3f} {percentiles(fast)[1]:>9.3f} "
                f"{percentiles(slow)[0]:>13.3f} {percentiles(slow)[1]:>13.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

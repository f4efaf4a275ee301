"""The monthly retrain flow: ingest → quality gate → clean → split → train → evaluate → save.

    python -m flows.retrain --dataset churn [--month 2026-10]
    python -m flows.retrain --spec my.yaml --data my.csv

Human progress goes to the log; the last line on stdout is one JSON summary of the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prefect import flow

from tasks.clean import clean
from tasks.ingest import ingest
from tasks.quality import quality_gate
from tasks.report import save_run
from tasks.run import start_run
from tasks.settings import Settings
from tasks.spec import load_dataset_spec
from tasks.split import split_train_holdout
from tasks.train import evaluate_holdout, train_model


@flow(name="retrain", log_prints=True)
def retrain(dataset: str | None = "churn", month: str | None = None, data: str | None = None,
            spec: str | None = None) -> dict:
    """Retrain one dataset's model from raw batches; a critical data-quality failure stops it."""
    settings = Settings()
    dataset_spec = load_dataset_spec(dataset, spec, settings)
    run = start_run(dataset_spec, settings)
    raw = ingest(dataset_spec, settings, data, month)
    quality = quality_gate(raw, dataset_spec, settings, run)
    cleaned = clean(raw.frame, dataset_spec)
    split = split_train_holdout(cleaned.frame, dataset_spec, raw.holdout_month)
    model = train_model(split.train, dataset_spec)
    metrics = evaluate_holdout(model, split.holdout, dataset_spec)
    return save_run(run, model, dataset_spec, raw, quality, cleaned.report, split, metrics)


def failure_summary(error: BaseException, dataset: str | None) -> dict:
    """The JSON line for a failed run: what failed and, for the quality gate, which expectations."""
    result = getattr(error, "result", None)
    quality = result.summary() if result is not None else None
    report_dir = getattr(result, "report_dir", None)
    return {
        "dataset": getattr(result, "dataset", dataset),
        "run_id": Path(report_dir).name if report_dir else None,
        "status": "failed",
        "rows_in": None,
        "rows_clean": None,
        "quality": quality,
        "report_dir": report_dir,
        "data_docs": getattr(result, "data_docs", None),
        "error": f"{type(error).__name__}: {error}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, help="a spec under data/specs (default: churn)")
    parser.add_argument("--month", default=None, help="holdout month YYYY-MM (default: the latest batch)")
    parser.add_argument("--data", default=None, help="a CSV/Parquet file or a folder of monthly batches")
    parser.add_argument("--spec", default=None, help="a spec YAML file (instead of --dataset)")
    args = parser.parse_args(argv)
    dataset = args.dataset or (None if args.spec else "churn")
    label = dataset or Path(args.spec).stem

    state = retrain(dataset=dataset, month=args.month, data=args.data, spec=args.spec, return_state=True)
    if state.is_completed():
        summary = state.result()
        code = 0
    else:
        error = state.result(raise_on_failure=False)
        summary = failure_summary(error if isinstance(error, BaseException) else RuntimeError(str(error)), label)
        print(f"\nrun failed: {summary['error']}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    print(json.dumps(summary, default=str), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Run output: every run writes ``artifacts/<dataset>/runs/<run-id>/`` and returns its summary."""

from __future__ import annotations

import platform
from dataclasses import asdict
from datetime import datetime, timezone

import joblib
import lightgbm
import sklearn
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.pipeline import Pipeline

from tasks.clean import CleaningReport
from tasks.features import feature_names
from tasks.ingest import RawData
from tasks.run import RunPaths, write_json_atomic
from tasks.quality import QualityResult
from tasks.spec import DatasetSpec
from tasks.split import TrainHoldout
from tasks.train import HoldoutMetrics

def run_summary(spec: DatasetSpec, run: RunPaths, status: str, raw: RawData | None = None,
                quality: QualityResult | None = None, rows_clean: int | None = None, **extra) -> dict:
    """The one-line JSON the CLI prints last; later stages add keys."""
    return {
        "dataset": spec.name,
        "run_id": run.run_id,
        "status": status,
        "rows_in": raw.rows if raw is not None else None,
        "rows_clean": rows_clean,
        "quality": quality.summary() if quality is not None else None,
        "report_dir": str(run.dir),
        "data_docs": quality.data_docs if quality is not None else None,
        **extra,
    }


@task(name="save-run", cache_policy=NO_CACHE)
def save_run(run: RunPaths, pipeline: Pipeline, spec: DatasetSpec, raw: RawData, quality: QualityResult,
             cleaning: CleaningReport, split: TrainHoldout, metrics: HoldoutMetrics) -> dict:
    """Persist the fitted pipeline with its lineage and metrics; return the run summary."""
    joblib.dump(pipeline, run.model_path)

    metadata = {
        "run_id": run.run_id,
        "dataset": spec.name,
        "trained_at": datetime.now(timezone.utc).isoformat(),
        "spec_path": str(spec.source_path),
        "spec_sha256": spec.content_sha256,
        "input_sha256": raw.sha256,
        "input_files": [asdict(batch) for batch in raw.files],
        "holdout_month": split.holdout_month,
        "split_strategy": split.strategy,
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "algorithm": type(pipeline[-1]).__name__,
        "hyperparameters": {k: v for k, v in pipeline[-1].get_params().items() if v is not None},
        "feature_names": feature_names(pipeline),
        "holdout_metrics": asdict(metrics),
        "quality": quality.summary(),
        "cleaning": asdict(cleaning),
        "model_file": run.model_path.name,
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "lightgbm": lightgbm.__version__},
    }
    write_json_atomic(run.dir / "metadata.json", metadata)
    print(f"saved model and metadata in {run.dir}")
    return run_summary(
        spec, run, "completed", raw=raw, quality=quality, rows_clean=cleaning.rows_out,
        input_sha256=raw.sha256, holdout_month=split.holdout_month,
        holdout={"roc_auc": metrics.roc_auc, "pr_auc": metrics.pr_auc, "rows": metrics.rows},
        cleaning={"rows_dropped": cleaning.rows_dropped, "values_repaired": cleaning.total_repaired},
        model_path=str(run.model_path),
    )

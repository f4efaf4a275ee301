"""The package stage: the winner and its metadata saved (run folder and BentoML store), verified to load to the
same probabilities before the store takes it, and signed. A failed check or a killed run leaves nothing in the
store. Its bento is built only if it is promoted (the promote stage), not for every challenger."""

from __future__ import annotations

import bentoml
import joblib
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import IO_RETRIES, MEASURED, TIMEOUTS
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import CleaningReport
from tollgate.core.drift import reference_profile
from tollgate.core.explain import GlobalExplanation
from tollgate.core.ingest import RawData
from tollgate.core.policy import score_quantiles
from tollgate.core.quality import QualityResult
from tollgate.core.report import run_metadata, threshold_rule
from tollgate.core.schema import record_model, request_records
from tollgate.core.split import TrainHoldout, row_keys
from tollgate.core.tournament import Leaderboard
from tollgate.store.files import write_json_atomic
from tollgate.store.models import (
    MODEL_FILE,
    PackageResult,
    model_name,
    save_model,
    verify_loaded,
    verify_model,
)
from tollgate.store.runs import RunPaths


@task(name="package", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["package"], **IO_RETRIES, **MEASURED)
def package_model(
    run: RunPaths,
    spec: DatasetSpec,
    raw: RawData,
    quality: QualityResult,
    cleaning: CleaningReport,
    split: TrainHoldout,
    leaderboard: Leaderboard,
    explanation: GlobalExplanation,
    settings: Settings,
) -> PackageResult:
    """Save the winner and its metadata (``metadata.json`` in the run folder), and verify the stored copy gives the
    same probabilities."""
    winner = leaderboard.winner
    version = run.run_id.lower()
    print(f"package: saving {winner.name} as {model_name(spec.name)}:{version}, verifying it before the store takes it")
    joblib.dump(winner.pipeline, run.model_path)
    metadata = run_metadata(spec, run, raw, quality, cleaning, split, leaderboard)
    write_json_atomic(run.metadata_path, metadata)
    example = request_records(split.holdout.head(1), spec)
    serving = {
        "run_id": run.run_id,
        "threshold": winner.oof_threshold,
        "threshold_rule": threshold_rule(winner.oof_threshold, spec),
        "score_quantiles": score_quantiles(winner.oof_probability),
        "algorithm": winner.estimator,
        "input_sha256": raw.sha256,
        "holdout_month": split.holdout_month,
        "holdout_metrics": winner.holdout_metrics,
        "cv_metrics": winner.cv,
        "spec": spec.model_dump(mode="json"),
        "input_schema": record_model(spec, example[0] if example else None).model_json_schema(),
    }
    predicted_positive_rate = float((winner.holdout_probability >= winner.oof_threshold).mean())
    tag, verification = save_model(
        f"{model_name(spec.name)}:{version}",
        winner.pipeline,
        explanation.background,
        serving,
        reference_profile(split.train, spec, predicted_positive_rate, spec.split.seed),
        metadata,
        row_keys(split.train, spec),
        labels={"dataset": spec.name, "algorithm": winner.estimator, "run_id": run.run_id},
        summary={
            "dataset": spec.name,
            "run_id": run.run_id,
            "algorithm": winner.estimator,
            "threshold": float(winner.oof_threshold),
            "holdout_roc_auc": float(winner.holdout_metrics["roc_auc"]),
            "holdout_month": str(split.holdout_month or ""),
        },
        check=lambda loaded: verify_loaded(loaded, winner.holdout_probability, split.holdout, spec),
        settings=settings,
    )
    print(
        f"packaged {tag}: reloaded probabilities equal on {verification.holdout_rows_checked:,} holdout rows; "
        f"fast path within {verification.fast_path_max_difference:.1e} on "
        f"{verification.fast_path_rows_checked:,}; signed"
    )
    try:
        checksums = verify_model(tag, settings)  # the committed copy, as anything that serves it will check it
    except Exception:
        bentoml.models.delete(tag)
        raise
    return PackageResult(
        model_tag=tag,
        model_sha256=checksums[MODEL_FILE],
        checksums=checksums,
        model_path=run.model_path,
        verification=verification,
    )

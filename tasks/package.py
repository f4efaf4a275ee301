"""Packaging: the winner goes into the BentoML model store, verified, and a bento is built for it.

The model directory holds the fitted Pipeline, the raw background rows explanations are taken
against, and the run's metadata; each file's SHA-256 is in the model's metadata and checked again
whenever a model is loaded, so the service refuses a model that changed after it was verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import bentoml
import joblib
import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.pipeline import Pipeline

from tasks.fastpath import FastScorer
from tasks.monitor import reference_profile
from tasks.registry import champion_entry, registry_path
from tasks.run import IO_RETRIES, TIMEOUTS, RunPaths, write_json_atomic
from tasks.schema import record_model
from tasks.settings import PROJECT_ROOT, Settings
from tasks.spec import DatasetSpec
from tasks.split import TrainHoldout
from tasks.tournament import Leaderboard, features_and_target

MODEL_FILE = "model.joblib"
BACKGROUND_FILE = "background.joblib"
SERVING_FILE = "serving.json"
REFERENCE_FILE = "reference.json"
BENTOFILE = PROJECT_ROOT / "service/bentofile.yaml"
FAST_PATH_CHECK_ROWS = 2_000
FAST_PATH_TOLERANCE = 1e-9


class PackagingError(RuntimeError):
    """The saved model does not behave like the one that was evaluated; nothing was kept."""


class ModelIntegrityError(RuntimeError):
    """A stored model's files do not match the checksums recorded when it was verified."""


def model_name(dataset: str) -> str:
    return f"tollgate-{dataset}"


def champion_tag(dataset: str, settings: Settings) -> str:
    """The model to serve: ``TOLLGATE_MODEL_TAG`` if set, else the registry's champion, else the
    newest in the store (before any promotion)."""
    if settings.model_tag:
        return settings.model_tag
    champion = champion_entry(registry_path(dataset, settings))
    return champion["tag"] if champion else f"{model_name(dataset)}:latest"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class PackagedModel:
    """A verified model from the store, with what serving it needs."""

    tag: str
    version: str
    pipeline: Pipeline
    spec: DatasetSpec
    threshold: float
    background: pd.DataFrame
    metadata: dict = field(repr=False)


def verify_checksums(tag: str) -> dict[str, str]:
    """Check every file of a stored model against the SHA-256 recorded when it was verified."""
    stored = bentoml.models.get(tag)
    checksums = dict(stored.info.metadata.get("sha256") or {})
    if not checksums:
        raise ModelIntegrityError(f"{stored.tag} has no recorded checksums; it was not packaged by Tollgate")
    for name, expected in checksums.items():
        actual = sha256_file(Path(stored.path_of(name)))
        if actual != expected:
            raise ModelIntegrityError(f"{stored.tag}: {name} has SHA-256 {actual[:12]}…, "
                                      f"recorded {expected[:12]}… when it was verified; refusing to load it")
    return checksums


def load_packaged_model(tag: str) -> PackagedModel:
    """Load a model from the BentoML store after checking every file against its recorded SHA-256."""
    checksums = verify_checksums(tag)
    stored = bentoml.models.get(tag)
    serving = read_serving_record(tag)
    return PackagedModel(
        tag=str(stored.tag),
        version=stored.tag.version or "",
        pipeline=joblib.load(stored.path_of(MODEL_FILE)),
        spec=DatasetSpec(**serving["spec"]),
        threshold=float(serving["threshold"]),
        background=joblib.load(stored.path_of(BACKGROUND_FILE)),
        metadata={**serving, "sha256": checksums},
    )


def read_serving_record(tag: str) -> dict:
    """What serving a stored model needs besides the model: its spec, threshold, metrics, schema."""
    return json.loads(Path(bentoml.models.get(tag).path_of(SERVING_FILE)).read_text(encoding="utf-8"))


def verify_loaded(loaded: Pipeline, expected: np.ndarray, holdout: pd.DataFrame, spec: DatasetSpec) -> dict:
    """The loaded model must give ``expected`` (the evaluated model's holdout probabilities) on the
    whole holdout, and the fast path the same to 1e-9; returns the figures, raises ``PackagingError`` otherwise."""
    features, _ = features_and_target(holdout, spec)
    actual = loaded.predict_proba(features)[:, 1]
    if not np.array_equal(expected, actual):
        raise PackagingError(f"the stored model's holdout probabilities differ from the evaluated model's "
                             f"(max difference {np.max(np.abs(expected - actual)):.3g})")
    scorer = FastScorer.compile(loaded)
    sample = features.head(FAST_PATH_CHECK_ROWS)
    fast = np.array([scorer.predict_proba(record) for record in sample.to_dict(orient="records")])
    fast_difference = float(np.max(np.abs(fast - expected[: len(sample)]))) if len(sample) else 0.0
    if fast_difference > FAST_PATH_TOLERANCE:
        raise PackagingError(f"the fast scoring path differs from the Pipeline by {fast_difference:.3g} "
                             f"(tolerance {FAST_PATH_TOLERANCE:g})")
    return {"holdout_rows_checked": len(features), "fast_path_rows_checked": len(sample),
            "fast_path_max_difference": fast_difference}


def build_bento(spec: DatasetSpec, model_tag: str, version: str) -> str:
    """Build the service's bento for ``model_tag`` in a fresh process (the service module reads its
    model at import time, so each build needs its own interpreter); returns the bento tag."""
    environment = {**os.environ, "TOLLGATE_DATASET": spec.name, "TOLLGATE_MODEL_TAG": model_tag,
                   "BENTOML_DO_NOT_TRACK": "true"}
    command = [sys.executable, "-m", "bentoml", "build", "-f", str(BENTOFILE), "--version", version,
               "--name", model_name(spec.name), "-o", "tag", str(PROJECT_ROOT)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        last_lines = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise PackagingError(f"bentoml build failed (exit {result.returncode}):\n{last_lines}")
    return result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def _json_value(value, rule):
    """A cleaned value as a request would send it: None for missing, integers as integers."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if rule is not None and rule.integer:
        return int(value)
    return value


@task(name="package", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["package"], **IO_RETRIES)
def package_model(run: RunPaths, spec: DatasetSpec, split: TrainHoldout, leaderboard: Leaderboard,
                  background: pd.DataFrame, summary: dict) -> dict:
    """Save the winner in the BentoML store, verify it loads to the same probabilities, build its bento.

    On any failure the stored model is deleted again, so nothing unverified can be served.
    """
    winner = leaderboard.winner
    version = run.run_id.lower()
    run_metadata_path = run.dir / "metadata.json"
    example = features_and_target(split.holdout.head(1), spec)[0].to_dict(orient="records")
    example = [{key: _json_value(value, spec.columns.numeric.get(key)) for key, value in record.items()}
               for record in example]
    schema = record_model(spec, example[0] if example else None).model_json_schema()
    with bentoml.models.create(
        f"{model_name(spec.name)}:{version}",
        labels={"dataset": spec.name, "algorithm": winner.estimator, "run_id": run.run_id},
    ) as stored:
        joblib.dump(winner.pipeline, stored.path_of(MODEL_FILE))
        joblib.dump(background.reset_index(drop=True), stored.path_of(BACKGROUND_FILE))
        Path(stored.path_of("metadata.json")).write_bytes(run_metadata_path.read_bytes())
        write_json_atomic(Path(stored.path_of(SERVING_FILE)), {
            "run_id": run.run_id,
            "threshold": winner.oof_threshold,
            "algorithm": winner.estimator,
            "input_sha256": summary.get("input_sha256"),
            "holdout_month": split.holdout_month,
            "holdout_metrics": winner.holdout_metrics,
            "cv_metrics": winner.cv,
            "spec": spec.model_dump(mode="json"),
            "input_schema": schema,
        })
        write_json_atomic(Path(stored.path_of(REFERENCE_FILE)), reference_profile(
            split.train, spec, float((winner.holdout_probability >= winner.oof_threshold).mean()), spec.split.seed))
        checksums = {name: sha256_file(Path(stored.path_of(name)))
                     for name in (MODEL_FILE, BACKGROUND_FILE, SERVING_FILE, REFERENCE_FILE, "metadata.json")}
        # BentoML metadata takes plain values only (no None); the full record is serving.json.
        stored.info.metadata.update({
            "dataset": spec.name,
            "run_id": run.run_id,
            "algorithm": winner.estimator,
            "threshold": float(winner.oof_threshold),
            "holdout_roc_auc": float(winner.holdout_metrics["roc_auc"]),
            "holdout_month": str(split.holdout_month or ""),
            "sha256": checksums,
        })
    tag = str(stored.tag)
    try:
        loaded = load_packaged_model(tag)
        verification = verify_loaded(loaded.pipeline, winner.holdout_probability, split.holdout, spec)
        print(f"packaged {tag}: reloaded probabilities equal on {verification['holdout_rows_checked']:,} holdout rows; "
              f"fast path within {verification['fast_path_max_difference']:.1e} on {verification['fast_path_rows_checked']:,}")
        bento_tag = build_bento(spec, tag, version)
    except Exception:
        bentoml.models.delete(tag)
        raise
    print(f"bento {bento_tag} built; serve it with: TOLLGATE_DATASET={spec.name} bentoml serve service.service:Tollgate")
    return {**summary, "model_tag": tag, "model_sha256": checksums[MODEL_FILE], "bento_tag": bento_tag,
            "verification": verification}

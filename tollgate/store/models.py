"""The BentoML model store: what a packaged model holds, how it is saved, verified and loaded.

A stored model's directory holds the fitted Pipeline, the raw background rows explanations are taken
against, the training reference for drift, the serving record (spec, threshold, metrics, request
schema) and the run's metadata; each file's SHA-256 is in the model's metadata and checked again
whenever a model is loaded, so nothing that changed after it was verified is ever served.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import joblib
import numpy as np
import pandas as pd
import yaml
from sklearn.pipeline import Pipeline

from tollgate.config.settings import PROJECT_ROOT, Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.fastpath import FastScorer
from tollgate.core.features import features_and_target
from tollgate.store.files import sha256_file, write_json_atomic
from tollgate.store.registry import champion_entry, registry_path

MODEL_FILE = "model.joblib"
BACKGROUND_FILE = "background.joblib"
SERVING_FILE = "serving.json"
REFERENCE_FILE = "reference.json"
METADATA_FILE = "metadata.json"
TRAINED_ROWS_FILE = "trained_rows.npy"  # sorted 64-bit keys of the rows the model trained on (split.row_keys)
STORED_FILES = (MODEL_FILE, BACKGROUND_FILE, SERVING_FILE, REFERENCE_FILE, METADATA_FILE, TRAINED_ROWS_FILE)
BENTOFILE = PROJECT_ROOT / "service/bentofile.yaml"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
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


@dataclass(frozen=True)
class PackagedModel:
    """A verified model from the store, with what serving it needs."""

    tag: str
    version: str
    pipeline: Pipeline
    spec: DatasetSpec
    threshold: float
    background: pd.DataFrame
    metadata: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Verification:
    """How the stored model was checked against the evaluated one before anything could serve it."""

    holdout_rows_checked: int
    fast_path_rows_checked: int
    fast_path_max_difference: float


@dataclass(frozen=True)
class PackageResult:
    """The package stage's result: the verified model in the store and, where built, its bento."""

    model_tag: str
    model_sha256: str
    model_path: Path
    verification: Verification
    bento_tag: str | None


def stored_file(tag: str, name: str) -> Path:
    return Path(bentoml.models.get(tag).path_of(name))


def verify_checksums(tag: str) -> dict[str, str]:
    """Check every file of a stored model against the SHA-256 recorded when it was verified."""
    stored = bentoml.models.get(tag)
    recorded = stored.info.metadata.get("sha256")
    checksums = {str(name): str(value) for name, value in recorded.items()} if isinstance(recorded, dict) else {}
    if not checksums:
        raise ModelIntegrityError(f"{stored.tag} has no recorded checksums; it was not packaged by Tollgate")
    for name, expected in checksums.items():
        actual = sha256_file(Path(stored.path_of(name)))
        if actual != expected:
            raise ModelIntegrityError(
                f"{stored.tag}: {name} has SHA-256 {actual[:12]}…, "
                f"recorded {expected[:12]}… when it was verified; refusing to load it"
            )
    return checksums


def read_serving_record(tag: str) -> dict[str, Any]:
    """What serving a stored model needs besides the model: its spec, threshold, metrics, schema."""
    record: dict[str, Any] = json.loads(stored_file(tag, SERVING_FILE).read_text(encoding="utf-8"))
    return record


def read_reference(tag: str) -> dict[str, Any]:
    """The training reference drift is measured against (see ``tollgate.core.drift.reference_profile``)."""
    reference: dict[str, Any] = json.loads(stored_file(tag, REFERENCE_FILE).read_text(encoding="utf-8"))
    return reference


def read_trained_rows(tag: str) -> np.ndarray | None:
    """The keys of the rows a stored model trained on (checksum verified), or None for a model packaged
    before they were recorded."""
    checksums = verify_checksums(tag)
    if TRAINED_ROWS_FILE not in checksums:
        return None
    keys: np.ndarray = np.load(stored_file(tag, TRAINED_ROWS_FILE), allow_pickle=False)
    return keys


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


def save_model(
    tag: str,
    pipeline: Pipeline,
    background: pd.DataFrame,
    serving: dict[str, Any],
    reference: dict[str, Any],
    run_metadata: dict[str, Any],
    trained_rows: np.ndarray,
    labels: dict[str, str],
    summary: dict[str, Any],
) -> str:
    """Write a model's files into the store and record each file's SHA-256; returns the stored tag.

    ``summary`` goes into BentoML's own metadata, which takes plain values only (no None); the full
    record is ``serving.json``.
    """
    with bentoml.models.create(tag, labels=labels) as stored:
        joblib.dump(pipeline, stored.path_of(MODEL_FILE))
        joblib.dump(background.reset_index(drop=True), stored.path_of(BACKGROUND_FILE))
        for name, payload in ((SERVING_FILE, serving), (REFERENCE_FILE, reference), (METADATA_FILE, run_metadata)):
            write_json_atomic(Path(stored.path_of(name)), payload)
        np.save(stored.path_of(TRAINED_ROWS_FILE), np.unique(np.asarray(trained_rows, dtype=np.uint64)))
        checksums = {name: sha256_file(Path(stored.path_of(name))) for name in STORED_FILES}
        stored.info.metadata.update(summary)
        stored.info.metadata["sha256"] = checksums  # type: ignore[assignment]  # BentoML stores nested dicts too
    return str(stored.tag)


def verify_loaded(loaded: Pipeline, expected: np.ndarray, holdout: pd.DataFrame, spec: DatasetSpec) -> Verification:
    """The loaded model must give ``expected`` (the evaluated model's holdout probabilities) on the
    whole holdout, and the fast path the same to 1e-9; raises ``PackagingError`` otherwise."""
    features, _ = features_and_target(holdout, spec)
    actual = loaded.predict_proba(features)[:, 1]
    if not np.array_equal(expected, actual):
        raise PackagingError(
            f"the stored model's holdout probabilities differ from the evaluated model's "
            f"(max difference {np.max(np.abs(expected - actual)):.3g})"
        )
    scorer = FastScorer.compile(loaded)
    sample = features.head(FAST_PATH_CHECK_ROWS)
    records = [{str(key): value for key, value in row.items()} for row in sample.to_dict(orient="records")]
    fast = np.array([scorer.predict_proba(record) for record in records])
    fast_difference = float(np.max(np.abs(fast - expected[: len(sample)]))) if len(sample) else 0.0
    if fast_difference > FAST_PATH_TOLERANCE:
        raise PackagingError(
            f"the fast scoring path differs from the Pipeline by {fast_difference:.3g} "
            f"(tolerance {FAST_PATH_TOLERANCE:g})"
        )
    return Verification(len(features), len(sample), fast_difference)


def serving_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The service's runtime requirements: pyproject's ``serving`` extra."""
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    return list(extras["serving"])


def build_bento(dataset: str, model_tag: str, version: str) -> str:
    """Build the service's bento for ``model_tag`` in a fresh process (the service module reads its
    model at import time, so each build needs its own interpreter); returns the bento tag.

    The bentofile used is ``service/bentofile.yaml`` with its packages taken from ``serving_requirements``."""
    environment = {
        **os.environ,
        "TOLLGATE_DATASET": dataset,
        "TOLLGATE_MODEL_TAG": model_tag,
        "BENTOML_DO_NOT_TRACK": "true",
    }
    config = yaml.safe_load(BENTOFILE.read_text(encoding="utf-8"))
    config["python"] = {**config.get("python", {}), "packages": serving_requirements()}
    with tempfile.TemporaryDirectory(prefix="tollgate-bentofile-") as folder:
        bentofile = Path(folder) / "bentofile.yaml"
        bentofile.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "bentoml",
            "build",
            "-f",
            str(bentofile),
            "--version",
            version,
            "--name",
            model_name(dataset),
            "-o",
            "tag",
            str(PROJECT_ROOT),
        ]
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        last_lines = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise PackagingError(f"bentoml build failed (exit {result.returncode}):\n{last_lines}")
    return result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def export_bento(bento_tag: str, folder: Path) -> Path:
    """Export the bento to ``folder`` (a file a deployment can copy or ``bentoml import``)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{bento_tag.replace(':', '-')}.bento"
    if not target.is_file():
        partial = folder / f".partial-{os.getpid()}-{target.name}"  # ends in .bento, as export wants
        bentoml.bentos.export_bento(bento_tag, str(partial))
        os.replace(partial, target)  # a killed export never leaves a file that looks complete
    return target


@dataclass(frozen=True)
class ChampionReference:
    """The served champion's spec, version and training reference: what monitoring compares traffic with."""

    spec: DatasetSpec
    tag: str
    version: str
    reference: dict[str, Any]


def champion_reference(dataset: str, settings: Settings) -> ChampionReference:
    """The champion the service serves (resolved as the service resolves it), checksums verified."""
    tag = str(bentoml.models.get(champion_tag(dataset, settings)).tag)
    verify_checksums(tag)
    spec = DatasetSpec(**read_serving_record(tag)["spec"])
    return ChampionReference(spec=spec, tag=tag, version=tag.split(":")[1], reference=read_reference(tag))

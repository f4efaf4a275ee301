"""The BentoML model store: what a packaged model holds, how it is saved, verified and loaded.

A stored model's directory holds the fitted Pipeline, the raw background rows explanations are taken
against, the training reference for drift, the serving record (spec, threshold, metrics, request
schema) and the run's metadata; each file's SHA-256 is in the model's metadata, signed with a key
outside the store (``tollgate.store.signing``), and checked again whenever a model is loaded, so nothing
that changed after it was verified is ever served.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable
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
from tollgate.core.features import features_and_target, positive_probability
from tollgate.store.bento_builder import BentoBuilder
from tollgate.store.files import sha256_file, write_json_atomic
from tollgate.store.registry import champion_entry, read_registry, registry_path
from tollgate.store.requirements import locked_requirements
from tollgate.store.signing import sign, signature_matches, signature_path, signing_key

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


def registry_checksums(dataset: str, tag: str, settings: Settings) -> dict[str, str] | None:
    """The file checksums the registry recorded for ``tag`` when it was promoted (champion or previous),
    or None when the registry holds no record of them."""
    registry = read_registry(registry_path(dataset, settings))
    for entry in [registry.get("champion"), *registry.get("previous", [])]:
        if entry and entry.get("tag") == tag and isinstance(entry.get("sha256"), dict):
            return dict(entry["sha256"])
    return None


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
    """The package stage's result: the verified model in the store (its bento is built if it is promoted)."""

    model_tag: str
    model_sha256: str
    checksums: dict[str, str]  # every stored file's SHA-256, as signed
    model_path: Path
    verification: Verification


def stored_file(tag: str, name: str) -> Path:
    return Path(bentoml.models.get(tag).path_of(name))


def verify_model(tag: str, settings: Settings | None = None, recorded: dict[str, str] | None = None) -> dict[str, str]:
    """Check a stored model before any pickle in it is loaded; returns its files' SHA-256s.

    Its recorded checksums must carry a valid signature (so they were written by Tollgate's packaging,
    with the key outside the store), every file must match them, and, when the registry recorded the
    checksums it promoted (``recorded``), they must be those. Raises ``ModelIntegrityError`` naming what
    differs."""
    stored = bentoml.models.get(tag)
    metadata = stored.info.metadata
    written = metadata.get("sha256")
    checksums = {str(name): str(value) for name, value in written.items()} if isinstance(written, dict) else {}
    if not checksums:
        raise ModelIntegrityError(f"{stored.tag} has no recorded checksums; it was not packaged by Tollgate")
    signature = metadata.get("signature")
    if not isinstance(signature, str):
        raise ModelIntegrityError(
            f"{stored.tag} is not signed (packaged before models were signed, or not by Tollgate); "
            "refusing to load it: retrain to replace it"
        )
    if not signature_matches(signing_key(settings or Settings()), str(stored.tag), checksums, signature):
        raise ModelIntegrityError(
            f"{stored.tag}: its recorded checksums do not match their signature (changed after packaging, or "
            "signed with another key than TOLLGATE_SIGNING_KEY / TOLLGATE_SIGNING_KEY_FILE); refusing to load it"
        )
    if recorded is not None and recorded != checksums:
        changed = sorted(name for name in {*recorded, *checksums} if recorded.get(name) != checksums.get(name))
        raise ModelIntegrityError(
            f"{stored.tag}: {', '.join(changed)} differ from the checksums the registry recorded when it was "
            "promoted; refusing to load it"
        )
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


def read_trained_rows(tag: str, settings: Settings | None = None) -> np.ndarray | None:
    """The keys of the rows a stored model trained on (verified), or None for a model packaged before they
    were recorded."""
    checksums = verify_model(tag, settings)
    if TRAINED_ROWS_FILE not in checksums:
        return None
    keys: np.ndarray = np.load(stored_file(tag, TRAINED_ROWS_FILE), allow_pickle=False)
    return keys


def load_packaged_model(
    tag: str, settings: Settings | None = None, recorded: dict[str, str] | None = None
) -> PackagedModel:
    """Load a model from the BentoML store after ``verify_model`` (signature, every file's SHA-256, and the
    registry's record of them when given)."""
    checksums = verify_model(tag, settings, recorded)
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
    check: Callable[[Pipeline], Verification],
    settings: Settings,
) -> tuple[str, Verification]:
    """Write a model's files, record and sign their SHA-256s, and ``check`` the pipeline loaded back from
    the written file; only a model that passes enters the store (BentoML commits it when this block
    ends, so a failed check or a killed process leaves nothing, and ``:latest`` never names it).

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
        stored.info.metadata["signature"] = sign(signing_key(settings), str(stored.tag), checksums)
        verification = check(joblib.load(stored.path_of(MODEL_FILE)))
    return str(stored.tag), verification


def verify_loaded(loaded: Pipeline, expected: np.ndarray, holdout: pd.DataFrame, spec: DatasetSpec) -> Verification:
    """The loaded model must give ``expected`` (the evaluated model's holdout probabilities) on the
    whole holdout, and the fast path the same to 1e-9; raises ``PackagingError`` otherwise."""
    features, _ = features_and_target(holdout, spec)
    actual = positive_probability(loaded, features)
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


def build_bento(
    dataset: str, model_tag: str, version: str, settings: Settings, builder: BentoBuilder | None = None
) -> str:
    """Build the service's bento for ``model_tag`` in a process of its own (the service module reads its model at
    import time, so each build needs its own interpreter): ``builder``, started earlier so that its imports are
    done (``BentoBuilder``), or one started now; returns the bento tag.

    The bentofile used is ``service/bentofile.yaml`` with its packages the ``serving`` extra's closure pinned
    to the versions installed here (``locked_requirements``). The build's context is a copy of the folders the
    bentofile's ``include`` names, nothing else: BentoML walks its whole context to match ``include``, and the
    project's holds ``.venv``, data and artifacts (tens of thousands of files: 0.6 s of every build)."""
    environment = {
        "TOLLGATE_DATASET": dataset,
        "TOLLGATE_MODEL_TAG": model_tag,
        # The service the build imports reads the registry and the signing key where this run does
        "TOLLGATE_ARTIFACTS_DIR": str(settings.artifacts_dir.resolve()),
        "TOLLGATE_SPECS_DIR": str(settings.specs_dir.resolve()),
    }
    config = yaml.safe_load(BENTOFILE.read_text(encoding="utf-8"))
    config["python"] = {**config.get("python", {}), "packages": locked_requirements(serving_requirements())}
    # One started here is ended however the build goes, as the promote stage ends the one it was given
    with (
        builder or BentoBuilder.start() as running,
        tempfile.TemporaryDirectory(prefix="tollgate-bentofile-") as folder,
    ):
        context = Path(folder) / "context"
        for folder_name in dict.fromkeys(pattern.split("/")[0] for pattern in config["include"]):
            shutil.copytree(
                PROJECT_ROOT / folder_name, context / folder_name, ignore=shutil.ignore_patterns("__pycache__")
            )
        bentofile = Path(folder) / "bentofile.yaml"
        bentofile.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        arguments = ["build", "-f", str(bentofile), "--version", version, "--name", model_name(dataset)]
        code, stdout, stderr = running.build(environment, [*arguments, "-o", "tag", str(context)], timeout=600)
    if code != 0:
        last_lines = "\n".join(stderr.strip().splitlines()[-8:])
        raise PackagingError(f"bentoml build failed (exit {code}):\n{last_lines}")
    return stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def export_bento(bento_tag: str, folder: Path, settings: Settings) -> tuple[Path, str]:
    """Export the bento to ``folder`` (a file a deployment can copy and import with ``import_bento``),
    signed: ``<file>.sig`` beside it holds the file's SHA-256 and its signature. Returns the file and
    that SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{bento_tag.replace(':', '-')}.bento"
    if not target.is_file():
        partial = folder / f".partial-{os.getpid()}-{target.name}"  # ends in .bento, as export wants
        bentoml.bentos.export_bento(bento_tag, str(partial))
        os.replace(partial, target)  # a killed export never leaves a file that looks complete
    checksum = sha256_file(target)
    write_json_atomic(
        signature_path(target),
        {
            "bento_tag": bento_tag,
            "sha256": checksum,
            "signature": sign(signing_key(settings), f"bento {bento_tag}", {target.name: checksum}),
        },
    )
    return target, checksum


def discard_bento(bento_tag: str, exported: Path | None) -> None:
    """Delete a bento nothing points at (its run failed after the build): from the store, and its exported file and
    signature."""
    bentoml.bentos.delete(bento_tag)
    if exported is not None:
        exported.unlink(missing_ok=True)
        signature_path(exported).unlink(missing_ok=True)


def import_bento(path: Path, settings: Settings) -> str:
    """Import an exported bento only if it is the file Tollgate signed and its model verifies; returns the
    bento tag. Raises ``ModelIntegrityError`` naming what does not match (nothing is imported then)."""
    signature_file = signature_path(path)
    try:
        record = json.loads(signature_file.read_text(encoding="utf-8"))
        bento_tag, recorded, signature = str(record["bento_tag"]), str(record["sha256"]), str(record["signature"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelIntegrityError(
            f"{path}: no readable signature at {signature_file} ({error}); not importing it"
        ) from None
    actual = sha256_file(path)
    if actual != recorded:
        raise ModelIntegrityError(f"{path} has SHA-256 {actual[:12]}…, signed as {recorded[:12]}…; not importing it")
    if not signature_matches(signing_key(settings), f"bento {bento_tag}", {path.name: actual}, signature):
        raise ModelIntegrityError(f"{signature_file} does not match {path} (changed, or another signing key)")
    bento = bentoml.bentos.import_bento(str(path))
    for model in bento.info.all_models:
        verify_model(str(model.tag), settings)
    return str(bento.tag)


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
    verify_model(tag, settings, registry_checksums(dataset, tag, settings))
    spec = DatasetSpec(**read_serving_record(tag)["spec"])
    return ChampionReference(spec=spec, tag=tag, version=tag.split(":")[1], reference=read_reference(tag))

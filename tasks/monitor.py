"""Monitoring: drift of what the service sees against what the champion was trained on.

``reference_profile`` is computed at packaging time from the training rows and stored with the
model. ``drift_report`` compares the prediction log with it: PSI per input (numeric inputs binned at
the training deciles, categorical inputs by category) and a two-sample KS test for numeric inputs,
the predicted-positive rate against the holdout's, and latency percentiles.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from scipy.stats import ks_2samp

from tasks.clean import clean_frame
from tasks.run import artifact_key, retry_on_io_error, write_json_atomic
from tasks.settings import Settings
from tasks.spec import DatasetSpec

REFERENCE_SAMPLE = 2_000
PSI_FLOOR = 1e-4
MISSING = "(missing)"
OTHER = "(other)"


def reference_profile(train: pd.DataFrame, spec: DatasetSpec, holdout_positive_rate: float, seed: int) -> dict:
    """What the champion was trained on, per input: decile edges and bin shares (numeric), category
    shares (categorical), a sample of values for KS; plus the holdout's predicted-positive rate."""
    profile = {"rows": len(train), "positive_rate": holdout_positive_rate, "numeric": {}, "categorical": {}}
    for column in spec.columns.numeric:
        values = train[column].astype(float)
        present = values.dropna()
        edges = np.unique(np.quantile(present, np.linspace(0, 1, 11))) if len(present) else np.array([0.0])
        profile["numeric"][column] = {
            "edges": edges.tolist(),
            "shares": _numeric_shares(values, edges).tolist(),
            "sample": present.sample(min(REFERENCE_SAMPLE, len(present)), random_state=seed).tolist(),
        }
    for column in spec.columns.categorical:
        shares = train[column].fillna(MISSING).value_counts(normalize=True)
        profile["categorical"][column] = {str(k): float(v) for k, v in shares.items()}
    return profile


def _numeric_shares(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    """Shares per bin: below the first edge, the inner bins, above the last edge, then missing."""
    numbers = values.to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    bins = np.searchsorted(edges[1:-1], present, side="right") if len(edges) > 1 else np.zeros(len(present), int)
    counts = np.bincount(bins, minlength=max(len(edges) - 1, 1)).astype(float)
    counts = np.append(counts, np.isnan(numbers).sum())
    return counts / max(len(numbers), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index; shares are floored so empty bins stay finite."""
    expected = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    actual = np.maximum(np.asarray(actual, dtype=float), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass
class FeatureDrift:
    feature: str
    kind: str
    psi: float
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    drifted: bool = False


@dataclass
class DriftReport:
    dataset: str
    model_version: str | None
    predictions: int
    features: list[FeatureDrift] = field(default_factory=list)
    positive_rate: float | None = None
    reference_positive_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    drifted: bool = False
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        worst = sorted(self.features, key=lambda f: -f.psi)[:5]
        return {"dataset": self.dataset, "model_version": self.model_version, "predictions": self.predictions,
                "drifted": self.drifted, "reasons": self.reasons, "positive_rate": self.positive_rate,
                "reference_positive_rate": self.reference_positive_rate, "latency_p50_ms": self.latency_p50_ms,
                "latency_p99_ms": self.latency_p99_ms, "top_psi": {f.feature: round(f.psi, 4) for f in worst}}


def read_prediction_log(directory: Path, model_version: str | None = None) -> pd.DataFrame:
    """Every logged prediction (all workers, rotated files included), optionally for one model version."""
    rows = []
    for path in sorted(directory.glob("predictions-w*.jsonl*")):
        with open(path, encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    frame = pd.DataFrame(rows)
    if model_version is not None and len(frame):
        frame = frame[frame["model_version"] == model_version]
    return frame.reset_index(drop=True)


def drift_report(log: pd.DataFrame, reference: dict, spec: DatasetSpec, model_version: str | None) -> DriftReport:
    """Compare logged traffic with the champion's training reference, by the spec's thresholds."""
    rule = spec.monitoring
    report = DriftReport(dataset=spec.name, model_version=model_version, predictions=len(log))
    if len(log) < rule.min_predictions:
        report.reasons.append(f"only {len(log)} predictions logged (monitoring needs {rule.min_predictions})")
        return report
    inputs = clean_frame(pd.DataFrame(list(log["inputs"]))[spec.input_columns], spec, require_target=False).frame
    for column, profile in reference["numeric"].items():
        values = inputs[column].astype(float)
        edges = np.asarray(profile["edges"])
        score = psi(profile["shares"], _numeric_shares(values, edges))
        present = values.dropna()
        test = ks_2samp(present, profile["sample"]) if len(present) and profile["sample"] else None
        drifted = score > rule.psi_threshold
        report.features.append(FeatureDrift(column, "numeric", score, float(test.statistic) if test else None,
                                            float(test.pvalue) if test else None, drifted))
    for column, shares in reference["categorical"].items():
        observed = inputs[column].fillna(MISSING).map(lambda v: v if v in shares else OTHER)
        actual = observed.value_counts(normalize=True)
        categories = sorted(set(shares) | set(actual.index))
        score = psi([shares.get(c, 0.0) for c in categories], [float(actual.get(c, 0.0)) for c in categories])
        report.features.append(FeatureDrift(column, "categorical", score, drifted=score > rule.psi_threshold))
    report.positive_rate = float((log["decision"] == spec.target.positive).mean())
    report.reference_positive_rate = reference.get("positive_rate")
    latency = log["latency_ms"].astype(float)
    report.latency_p50_ms, report.latency_p99_ms = float(latency.quantile(0.5)), float(latency.quantile(0.99))
    drifted = [f for f in report.features if f.drifted]
    if drifted:
        report.reasons.append("PSI above " + f"{rule.psi_threshold:g}: " +
                              ", ".join(f"{f.feature} {f.psi:.3f}" for f in sorted(drifted, key=lambda f: -f.psi)))
    if report.reference_positive_rate is not None:
        change = abs(report.positive_rate - report.reference_positive_rate)
        if change > rule.positive_rate_change:
            report.reasons.append(f"predicted-positive rate {report.positive_rate:.3f} vs {report.reference_positive_rate:.3f} "
                                  f"at training (change {change:.3f} > {rule.positive_rate_change:g})")
    report.drifted = bool(report.reasons)
    return report


def drift_markdown(report: DriftReport) -> str:
    verdict = "DRIFT — retrain triggered" if report.drifted else "no drift"
    lines = [f"# {report.dataset} monitoring: {verdict}", "",
             f"{report.predictions:,} predictions of model {report.model_version}.", ""]
    lines += [f"- {reason}" for reason in report.reasons] or ["- every input within its PSI threshold"]
    if report.positive_rate is not None:
        lines += ["", f"Predicted-positive rate {report.positive_rate:.3f} (training holdout "
                  f"{report.reference_positive_rate:.3f}); latency p50 {report.latency_p50_ms:.2f} ms, "
                  f"p99 {report.latency_p99_ms:.2f} ms.", "", "| feature | kind | PSI | KS statistic | KS p-value | drifted |",
                  "|---|---|---|---|---|---|"]
        for feature in sorted(report.features, key=lambda f: -f.psi):
            ks = (f"{feature.ks_statistic:.3f} | {feature.ks_pvalue:.2g}" if feature.ks_statistic is not None else "— | —")
            lines.append(f"| {feature.feature} | {feature.kind} | {feature.psi:.4f} | {ks} | {'yes' if feature.drifted else ''} |")
    return "\n".join(lines)


def as_json(report: DriftReport) -> dict:
    return asdict(report)


@dataclass
class ChampionReference:
    """The served champion's spec, version and training reference."""

    spec: DatasetSpec
    tag: str
    version: str
    reference: dict


@task(name="load-champion-reference", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5],
      retry_condition_fn=retry_on_io_error)
def load_champion_reference(dataset: str, settings: Settings) -> ChampionReference:
    """The registry's champion (as the service resolves it), checksums verified."""
    from tasks.package import REFERENCE_FILE, champion_tag, read_serving_record, verify_checksums

    import bentoml

    tag = str(bentoml.models.get(champion_tag(dataset, settings)).tag)
    verify_checksums(tag)
    reference = json.loads(Path(bentoml.models.get(tag).path_of(REFERENCE_FILE)).read_text(encoding="utf-8"))
    spec = DatasetSpec(**read_serving_record(tag)["spec"])
    print(f"monitoring {dataset} champion {tag}")
    return ChampionReference(spec=spec, tag=tag, version=tag.split(":")[1], reference=reference)


@task(name="read-prediction-log", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5],
      retry_condition_fn=retry_on_io_error)
def load_prediction_log(champion: ChampionReference, settings: Settings, log_dir: str | None = None) -> pd.DataFrame:
    """The champion's logged predictions: from ``log_dir``, else the service's log folder."""
    directory = Path(log_dir) if log_dir else (settings.prediction_log_dir
                                               or settings.dataset_artifacts(champion.spec.name) / "predictions")
    log = read_prediction_log(directory, champion.version)
    print(f"{len(log):,} logged predictions of {champion.tag} in {directory}")
    return log


@task(name="check-drift", cache_policy=NO_CACHE, timeout_seconds=1800)
def check_drift(log: pd.DataFrame, champion: ChampionReference, settings: Settings) -> dict:
    """Drift verdict with its report: drift.md/.json/.html under artifacts/<dataset>/monitoring/<time>/."""
    from tasks import plots
    from tasks.report import html_report

    report = drift_report(log, champion.reference, champion.spec, champion.version)
    folder = settings.dataset_artifacts(champion.spec.name) / "monitoring" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    markdown_text = drift_markdown(report)
    (folder / "drift.md").write_text(markdown_text, encoding="utf-8")
    write_json_atomic(folder / "drift.json", as_json(report))
    figures = {}
    if report.features:
        figures["PSI by input"] = plots.drift_bars(report.features, champion.spec.monitoring.psi_threshold,
                                                   folder / "psi.png")
    (folder / "drift.html").write_text(html_report(f"Tollgate {champion.spec.name} drift", markdown_text, {}, figures),
                                       encoding="utf-8")
    create_markdown_artifact(key=artifact_key(champion.spec.name, "drift"), markdown=markdown_text,
                             description=f"{champion.spec.name} drift of logged traffic vs {champion.tag}")
    print(("DRIFT: " + "; ".join(report.reasons)) if report.drifted else "no drift: " + "; ".join(report.reasons or ["all inputs stable"]))
    return {**report.summary(), "report": str(folder / "drift.html")}


@task(name="trigger-retrain", cache_policy=NO_CACHE)
def trigger_retrain(dataset: str) -> dict | None:
    """Start the dataset's retrain deployment on the Prefect server; None when there is none
    (no server configured, or the deployment was never created), so the flow retrains itself."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    name = f"retrain/{dataset}-monthly-retrain"
    if not PREFECT_API_URL.value():
        print("no Prefect server configured: running the retrain flow here")
        return None
    try:
        flow_run = run_deployment(name=name, timeout=0, tags=["drift"])
    except ObjectNotFound:
        print(f"no deployment '{name}' on the server: running the retrain flow here")
        return None
    print(f"drift: started deployment {name}, flow run {flow_run.id}")
    return {"how": "deployment", "deployment": name, "flow_run_id": str(flow_run.id)}

"""Drift: what the service sees against what the champion was trained on.

``reference_profile`` is computed at packaging time from the training rows and stored with the
model. ``drift_report`` compares the prediction log with it: PSI per input (numeric inputs binned at
the training deciles, categorical inputs by category) and a two-sample KS test for numeric inputs,
the predicted-positive rate against the holdout's, and latency percentiles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import ks_2samp

from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import clean_frame, missing_as

REFERENCE_SAMPLE = 2_000
PSI_FLOOR = 1e-4
MISSING = "(missing)"
OTHER = "(other)"


def reference_profile(
    train: pd.DataFrame, spec: DatasetSpec, holdout_positive_rate: float, seed: int
) -> dict[str, Any]:
    """What the champion was trained on, per input: decile edges and bin shares (numeric), category
    shares (categorical), a sample of values for KS; plus the holdout's predicted-positive rate."""
    numeric: dict[str, dict[str, list[float]]] = {}
    categorical: dict[str, dict[str, float]] = {}
    profile = {
        "rows": len(train),
        "positive_rate": holdout_positive_rate,
        "numeric": numeric,
        "categorical": categorical,
    }
    for column in spec.columns.numeric:
        values = train[column].astype(float)
        present = values.dropna()
        edges = np.unique(np.quantile(present, np.linspace(0, 1, 11))) if len(present) else np.array([0.0])
        numeric[column] = {
            "edges": edges.tolist(),
            "shares": _numeric_shares(values, edges).tolist(),
            "sample": present.sample(min(REFERENCE_SAMPLE, len(present)), random_state=seed).tolist(),
        }
    for column in spec.columns.categorical:
        shares = missing_as(train[column], MISSING).value_counts(normalize=True)
        categorical[column] = {str(k): float(v) for k, v in shares.items() if v > 0}  # a categorical's unseen: none
    return profile


def _numeric_shares(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    """Shares per bin: below the first edge, the inner bins, above the last edge, then missing."""
    numbers = values.to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    bins = np.searchsorted(edges[1:-1], present, side="right") if len(edges) > 1 else np.zeros(len(present), int)
    counts = np.bincount(bins, minlength=max(len(edges) - 1, 1)).astype(float)
    counts = np.append(counts, np.isnan(numbers).sum())
    return counts / max(len(numbers), 1)


def psi(expected: ArrayLike, actual: ArrayLike) -> float:
    """Population stability index; shares are floored so empty bins stay finite."""
    reference = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    observed = np.maximum(np.asarray(actual, dtype=float), PSI_FLOOR)
    return float(np.sum((observed - reference) * np.log(observed / reference)))


@dataclass(frozen=True)
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
    window_since: str | None = None  # predictions logged after this time (the last verdict); None: since promotion

    def summary(self) -> dict[str, Any]:
        worst = sorted(self.features, key=lambda f: -f.psi)[:5]
        return {
            "dataset": self.dataset,
            "model_version": self.model_version,
            "predictions": self.predictions,
            "window_since": self.window_since,
            "drifted": self.drifted,
            "reasons": self.reasons,
            "positive_rate": self.positive_rate,
            "reference_positive_rate": self.reference_positive_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "top_psi": {f.feature: round(f.psi, 4) for f in worst},
        }


def since(log: pd.DataFrame, checked_until: str | None) -> pd.DataFrame:
    """The log lines written after ``checked_until`` (an ISO time; None: all of them)."""
    if not checked_until or log.empty:
        return log
    return log[pd.to_datetime(log["time"], utc=True, format="ISO8601") > pd.Timestamp(checked_until)]


def newest_time(log: pd.DataFrame) -> str | None:
    """The time of the newest log line, as written (ISO, UTC)."""
    return None if log.empty else pd.to_datetime(log["time"], utc=True, format="ISO8601").max().isoformat()


def drift_report(
    log: pd.DataFrame,
    reference: dict[str, Any],
    spec: DatasetSpec,
    model_version: str | None,
    window_since: str | None = None,
) -> DriftReport:
    """Compare logged traffic (the window since the last verdict) with the champion's training reference, by
    the spec's thresholds; too few predictions is no verdict (the next check's window then starts earlier)."""
    rule = spec.monitoring
    report = DriftReport(
        dataset=spec.name, model_version=model_version, predictions=len(log), window_since=window_since
    )
    if len(log) < rule.min_predictions:
        when = f"since the last check ({window_since})" if window_since else "since the champion's promotion"
        report.reasons.append(f"no verdict: {len(log)} predictions {when}, monitoring needs {rule.min_predictions}")
        return report
    inputs = clean_frame(pd.DataFrame(list(log["inputs"]))[spec.input_columns], spec, require_target=False).frame
    for column, profile in reference["numeric"].items():
        values = inputs[column].astype(float)
        edges = np.asarray(profile["edges"])
        score = psi(profile["shares"], _numeric_shares(values, edges))
        present = values.dropna()
        test = ks_2samp(present, profile["sample"]) if len(present) and profile["sample"] else None
        drifted = score > rule.psi_threshold
        report.features.append(
            FeatureDrift(
                column,
                "numeric",
                score,
                float(test.statistic) if test else None,
                float(test.pvalue) if test else None,
                drifted,
            )
        )
    for column, shares in reference["categorical"].items():
        observed = inputs[column].fillna(MISSING).map(lambda v, shares=shares: v if v in shares else OTHER)
        actual = observed.value_counts(normalize=True)
        categories = sorted(set(shares) | set(actual.index))
        score = psi([shares.get(c, 0.0) for c in categories], [float(actual.get(c, 0.0)) for c in categories])
        report.features.append(FeatureDrift(column, "categorical", score, drifted=score > rule.psi_threshold))
    report.positive_rate = float((log["decision"] == spec.target.positive).mean())
    report.reference_positive_rate = reference.get("positive_rate")
    latency = log["latency_ms"].astype(float)
    report.latency_p50_ms, report.latency_p99_ms = float(latency.quantile(0.5)), float(latency.quantile(0.99))
    drifted_inputs = [f for f in report.features if f.drifted]
    if drifted_inputs:
        report.reasons.append(
            "PSI above "
            + f"{rule.psi_threshold:g}: "
            + ", ".join(f"{f.feature} {f.psi:.3f}" for f in sorted(drifted_inputs, key=lambda f: -f.psi))
        )
    if report.reference_positive_rate is not None:
        change = abs(report.positive_rate - report.reference_positive_rate)
        if change > rule.positive_rate_change:
            report.reasons.append(
                f"predicted-positive rate {report.positive_rate:.3f} vs {report.reference_positive_rate:.3f} "
                f"at training (change {change:.3f} > {rule.positive_rate_change:g})"
            )
    report.drifted = bool(report.reasons)
    return report


def drift_markdown(report: DriftReport, decision: str | None = None) -> str:
    """The monitoring report: the verdict on the window, what monitoring decided about a retrain, the table."""
    verdict = "DRIFT" if report.drifted else "no drift"
    when = f"logged since the last check ({report.window_since})" if report.window_since else "since its promotion"
    lines = [
        f"# {report.dataset} monitoring: {verdict}",
        "",
        f"{report.predictions:,} predictions of model {report.model_version} {when}.",
        "",
    ]
    if decision:
        lines += [f"**Retrain:** {decision}", ""]
    lines += [f"- {reason}" for reason in report.reasons] or ["- every input within its PSI threshold"]
    if report.positive_rate is not None:
        lines += [
            "",
            f"Predicted-positive rate {report.positive_rate:.3f} (training holdout "
            f"{report.reference_positive_rate:.3f}); latency p50 {report.latency_p50_ms:.2f} ms, "
            f"p99 {report.latency_p99_ms:.2f} ms.",
            "",
            "| feature | kind | PSI | KS statistic | KS p-value | drifted |",
            "|---|---|---|---|---|---|",
        ]
        for feature in sorted(report.features, key=lambda f: -f.psi):
            ks = (
                f"{feature.ks_statistic:.3f} | {feature.ks_pvalue:.2g}" if feature.ks_statistic is not None else "— | —"
            )
            lines.append(
                f"| {feature.feature} | {feature.kind} | {feature.psi:.4f} | {ks} "
                f"| {'yes' if feature.drifted else ''} |"
            )
    return "\n".join(lines)


def as_json(report: DriftReport) -> dict[str, Any]:
    return asdict(report)

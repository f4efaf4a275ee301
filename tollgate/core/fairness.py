"""The winner's decisions on the holdout, slice by slice, and how they treat the spec's protected groups.

Slices: every value of the spec's segment columns (``quality.segment_columns``) and protected attributes
(``fairness.protected``): rows, ROC-AUC, the operating point's precision, recall and value (or cost), and
calibration (mean predicted probability beside the observed rate). The operating point is the decision policy's
(the highest expected values, none below zero, at most capacity) when the spec has one, else the cost-tuned
threshold.

Gaps, per protected attribute: demographic parity (the share of each group acted on) and equal opportunity (the
share of each group's positives acted on), each the highest group's share minus the lowest's, with a bootstrap
interval. Both depend on the rows only through the counts of (group, acted, positive) cells, so resampling rows
is drawing those counts from a multinomial: exact, and as cheap on 2.5M rows as on 2,000.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tollgate.config.spec import BucketFeature, DatasetSpec
from tollgate.core.clean import missing_as
from tollgate.core.features import derive
from tollgate.core.metrics import cost_of
from tollgate.core.policy import act_on

RESAMPLES = 2000
MOST_VALUES = 20
"""A numeric column with more distinct values than this is sliced by quintile, not by value."""
MISSING = "(missing)"
MEASURE_NAMES = {"demographic_parity": "share acted on", "equal_opportunity": "share of positives acted on"}


@dataclass(frozen=True)
class SliceRow:
    """One value of one column: how the winner scores and decides there."""

    column: str
    value: str
    rows: int
    positives: int
    positive_rate: float  # observed
    mean_probability: float  # predicted: calibration beside the observed rate
    acted: int
    acted_share: float
    precision: float | None
    recall: float | None
    roc_auc: float | None  # None with one class only
    value_or_cost: float  # the policy's net value in the slice (decision specs), else the expected cost


@dataclass(frozen=True)
class GroupGap:
    """One protected attribute, one measure: each group's share, the gap and its interval, against the bound."""

    attribute: str
    measure: str  # demographic_parity | equal_opportunity
    shares: dict[str, float]  # the compared groups' shares
    too_small: list[str]  # groups shown but not compared (below min_group_rows)
    gap: float | None  # highest minus lowest share; None with fewer than two compared groups
    ci_low: float | None
    ci_high: float | None
    bound: float | None  # the spec's max_gap, if any

    @property
    def exceeded(self) -> bool:
        return self.bound is not None and self.gap is not None and self.gap > self.bound

    def describe(self, confidence: float) -> str:
        if self.gap is None:
            return f"{self.measure.replace('_', ' ')} across {self.attribute}: fewer than two groups large enough"
        highest = max(self.shares, key=lambda group: self.shares[group])
        lowest = min(self.shares, key=lambda group: self.shares[group])
        return (
            f"the {self.measure.replace('_', '-')} gap across {self.attribute} is {self.gap:.3f} "
            f"({confidence:.0%} interval {self.ci_low:.3f}–{self.ci_high:.3f}): {MEASURE_NAMES[self.measure]} "
            f"{self.shares[highest]:.1%} for {highest}, {self.shares[lowest]:.1%} for {lowest}"
        )


@dataclass(frozen=True)
class FairnessReport:
    operating_point: str
    slices: list[SliceRow]
    gaps: list[GroupGap]
    confidence: float
    resamples: int

    @property
    def violations(self) -> list[GroupGap]:
        return [gap for gap in self.gaps if gap.exceeded]

    def refusal(self) -> str | None:
        """Why the gate refuses this model's decisions, or None."""
        if not self.violations:
            return None
        return "; ".join(
            f"{gap.describe(self.confidence)}, beyond the spec's bound {gap.bound:g}" for gap in self.violations
        )

    def slice_rows(self) -> list[dict[str, Any]]:
        return [{key: _rounded(value) for key, value in asdict(row).items()} for row in self.slices]

    def gap_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "attribute": gap.attribute,
                "measure": gap.measure,
                "gap": _rounded(gap.gap),
                "ci_low": _rounded(gap.ci_low),
                "ci_high": _rounded(gap.ci_high),
                "bound": gap.bound,
                "within": None if gap.bound is None or gap.gap is None else not gap.exceeded,
                "groups": ", ".join(f"{group} {share:.1%}" for group, share in gap.shares.items()),
                "not compared (too few)": ", ".join(gap.too_small),
            }
            for gap in self.gaps
        ]

    def summary(self) -> dict[str, Any]:
        """The run's JSON line ``fairness`` object."""
        return {
            "gaps": {f"{gap.attribute}.{gap.measure}": _rounded(gap.gap) for gap in self.gaps},
            "violations": [f"{gap.attribute}.{gap.measure}" for gap in self.violations],
        }


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def acted_rows(probability: np.ndarray, threshold: float, spec: DatasetSpec) -> np.ndarray:
    """Whom the model acts on: the decision policy's choice, else every record at or above ``threshold``."""
    if spec.decision is not None:
        return act_on(probability, spec.decision)
    result: np.ndarray = probability >= threshold
    return result


def group_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """Each row's group in ``column`` as text: its value, or its quintile for a many-valued number."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MOST_VALUES:
        bins = pd.qcut(values, 5, duplicates="drop")
        return missing_as(bins.astype(str).where(values.notna()), MISSING).astype(str)
    if pd.api.types.is_numeric_dtype(values):
        text = values.map(lambda number: f"{number:g}", na_action="ignore")
        return missing_as(text, MISSING).astype(str)
    return missing_as(values, MISSING).astype(str)


def evaluate_fairness(
    holdout: pd.DataFrame, y_true: np.ndarray, probability: np.ndarray, threshold: float, spec: DatasetSpec
) -> FairnessReport:
    """Slices and gaps of one model's holdout predictions (see the module's docstring)."""
    columns = list(dict.fromkeys([*spec.quality.segment_columns, *spec.fairness.protected]))
    frame = _with_derived(holdout, columns, spec)
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(probability, dtype=float)
    acted = acted_rows(p, threshold, spec)
    slices = [row for column in columns for row in _slices(column, group_labels(frame, column), y, p, acted, spec)]
    rng = np.random.default_rng(spec.split.seed)
    gaps = [
        _gap(attribute, measure, group_labels(frame, attribute), y, acted, spec, rng)
        for attribute in spec.fairness.protected
        for measure in ("demographic_parity", "equal_opportunity")
    ]
    point = (
        f"the decision policy (capacity {spec.decision.capacity.describe()})"
        if spec.decision is not None
        else f"the cost-tuned threshold {threshold:.3f}"
    )
    return FairnessReport(point, slices, gaps, spec.fairness.confidence, RESAMPLES)


def _with_derived(holdout: pd.DataFrame, columns: list[str], spec: DatasetSpec) -> pd.DataFrame:
    """The holdout's columns plus the spec's derived ones that ``columns`` name (a tenure bucket, say)."""
    frame = holdout
    for feature in spec.features:  # in the spec's order: a feature may read one derived before it
        if feature.name in columns and feature.name not in frame:
            frame = frame.assign(**{feature.name: derive(frame, feature)})
    return frame


def _slices(
    column: str, groups: pd.Series, y: np.ndarray, p: np.ndarray, acted: np.ndarray, spec: DatasetSpec
) -> list[SliceRow]:
    rows = []
    labels = groups.to_numpy()
    for value in _in_order(column, set(labels), spec):
        inside = labels == value
        ys, ps, acts = y[inside], p[inside], acted[inside]
        positives, count, caught = int(ys.sum()), int(acts.sum()), int((acts & ys).sum())
        if spec.decision is not None:
            worth = caught * spec.decision.saved_value - count * spec.decision.action_cost
        else:
            worth = cost_of({"tp": caught, "fp": count - caught, "fn": positives - caught}, spec.costs)
        rows.append(
            SliceRow(
                column=column,
                value=str(value),
                rows=int(inside.sum()),
                positives=positives,
                positive_rate=positives / len(ys),
                mean_probability=float(ps.mean()),
                acted=count,
                acted_share=count / len(ys),
                precision=caught / count if count else None,
                recall=caught / positives if positives else None,
                roc_auc=float(roc_auc_score(ys, ps)) if 0 < positives < len(ys) else None,
                value_or_cost=float(worth),
            )
        )
    return rows


def _in_order(column: str, values: set[str], spec: DatasetSpec) -> list[str]:
    """A column's values in the spec's order (its categories, a bucket's labels), numbers by size, then the rest."""
    declared = {feature.name: feature.labels for feature in spec.features if isinstance(feature, BucketFeature)}
    order = [str(value) for value in {**spec.columns.categorical, **declared}.get(column, [])]

    def key(value: str) -> tuple[int, float, str]:
        if value in order:
            return (0, order.index(value), value)
        try:
            return (1, float(value), value)
        except ValueError:
            return (2, 0.0, value)

    return sorted(values, key=key)


def _gap(
    attribute: str,
    measure: str,
    groups: pd.Series,
    y: np.ndarray,
    acted: np.ndarray,
    spec: DatasetSpec,
    rng: np.random.Generator,
) -> GroupGap:
    """One measure's shares per group, their spread and its bootstrap interval."""
    bound = spec.fairness.max_gap.get(measure)  # type: ignore[call-overload]  # a Literal key
    among = y if measure == "equal_opportunity" else np.ones(len(y), dtype=bool)  # whose share is measured
    labels = groups.to_numpy()[among]
    chosen = acted[among]
    names, codes = np.unique(labels, return_inverse=True)
    base = np.bincount(codes, minlength=len(names))
    hits = np.bincount(codes, weights=chosen, minlength=len(names))
    compared = base >= spec.fairness.min_group_rows
    too_small = [str(name) for name in names[~compared]]
    shares = {str(name): float(hits[i] / base[i]) for i, name in enumerate(names) if compared[i]}
    if compared.sum() < 2:
        return GroupGap(attribute, measure, shares, too_small, None, None, None, bound)
    gap = max(shares.values()) - min(shares.values())
    # Rows resampled with replacement = the (group, acted) cells' counts drawn from a multinomial over them.
    cells = np.concatenate([hits[compared], (base - hits)[compared]])
    draws = rng.multinomial(int(cells.sum()), cells / cells.sum(), size=RESAMPLES)
    k = int(compared.sum())
    drawn_hits, drawn_base = draws[:, :k], draws[:, :k] + draws[:, k:]
    with np.errstate(invalid="ignore", divide="ignore"):
        drawn_shares = drawn_hits / drawn_base
    spread = np.nanmax(drawn_shares, axis=1) - np.nanmin(drawn_shares, axis=1)
    tail = (1 - spec.fairness.confidence) / 2
    low, high = np.quantile(spread, [tail, 1 - tail])
    return GroupGap(attribute, measure, shares, too_small, gap, float(low), float(high), bound)

"""Threshold tuning on business costs, from out-of-fold training predictions only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.spec import Costs, DatasetSpec

GRID = np.round(np.linspace(0.0, 1.0, 1001), 4)


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    expected_cost: float
    cost_at_0_5: float


def cost_curve(y_true, probability, costs: Costs, thresholds: np.ndarray = GRID) -> np.ndarray:
    """Expected cost at every threshold, vectorised: acting on rows with probability >= t."""
    y_true = np.asarray(y_true).astype(bool)
    probability = np.asarray(probability, dtype=float)
    positives = np.sort(probability[y_true])
    negatives = np.sort(probability[~y_true])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    fn = len(positives) - tp
    return fn * costs.false_negative + fp * costs.false_positive + tp * costs.true_positive


def tune_threshold(y_true, probability, costs: Costs) -> ThresholdChoice:
    """The threshold on the grid with the lowest expected cost (0.5 is on the grid, so never worse)."""
    curve = cost_curve(y_true, probability, costs)
    best = int(np.argmin(curve))
    at_half = float(curve[int(np.flatnonzero(GRID == 0.5)[0])])
    return ThresholdChoice(threshold=float(GRID[best]), expected_cost=float(curve[best]), cost_at_0_5=at_half)


@dataclass(frozen=True)
class Decision:
    """What the service answers for one probability: the label, how risky, and what to do."""

    prediction: str | int
    act: bool
    risk_level: str
    recommendation: str


def decide(probability: float, threshold: float, spec: DatasetSpec) -> Decision:
    """Act at or above the cost-tuned threshold; 'High' also needs the spec's high-risk probability."""
    act = probability >= threshold
    if act and probability >= spec.serving.high_risk_probability:
        level, advice = "High", spec.serving.recommendations.high
    elif act:
        level, advice = "Medium", spec.serving.recommendations.medium
    else:
        level, advice = "Low", spec.serving.recommendations.low
    label = spec.target.positive if act else spec.target.negative
    return Decision(prediction=label, act=act, risk_level=level, recommendation=advice)


def decide_many(probabilities: np.ndarray, threshold: float, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``decide`` for many probabilities at once: (labels, risk levels, recommendations) arrays."""
    act = probabilities >= threshold
    high = act & (probabilities >= spec.serving.high_risk_probability)
    advice = spec.serving.recommendations
    levels = np.where(high, "High", np.where(act, "Medium", "Low")).astype(object)
    recommendations = np.where(high, advice.high, np.where(act, advice.medium, advice.low)).astype(object)
    labels = np.where(act, spec.target.positive, spec.target.negative).astype(object)
    return labels, levels, recommendations

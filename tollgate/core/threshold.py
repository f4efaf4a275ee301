"""Threshold tuning on business costs, from out-of-fold training predictions only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from tollgate.config.spec import Costs

GRID = np.round(np.linspace(0.0, 1.0, 1001), 4)


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    expected_cost: float
    cost_at_0_5: float


def cost_curve(y_true: ArrayLike, probability: ArrayLike, costs: Costs, thresholds: np.ndarray = GRID) -> np.ndarray:
    """Expected cost at every threshold, vectorised: acting on rows with probability >= t."""
    y_true = np.asarray(y_true).astype(bool)
    probability = np.asarray(probability, dtype=float)
    positives = np.sort(probability[y_true])
    negatives = np.sort(probability[~y_true])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    fn = len(positives) - tp
    curve: np.ndarray = fn * costs.false_negative + fp * costs.false_positive + tp * costs.true_positive
    return curve


def tune_threshold(y_true: ArrayLike, probability: ArrayLike, costs: Costs) -> ThresholdChoice:
    """The threshold on the grid with the lowest expected cost (0.5 is on the grid, so never worse)."""
    curve = cost_curve(y_true, probability, costs)
    best = int(np.argmin(curve))
    at_half = float(curve[int(np.flatnonzero(GRID == 0.5)[0])])
    return ThresholdChoice(threshold=float(GRID[best]), expected_cost=float(curve[best]), cost_at_0_5=at_half)

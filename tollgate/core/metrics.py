"""Classification metrics and business cost, shared by the tournament, threshold and report."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from tollgate.config.spec import Costs


def confusion(y_true: ArrayLike, probability: ArrayLike, threshold: float) -> dict[str, int]:
    """TP/FP/FN/TN when acting on every row with probability >= threshold."""
    y_true = np.asarray(y_true).astype(bool)
    act = np.asarray(probability) >= threshold
    return {
        "tp": int(np.sum(act & y_true)),
        "fp": int(np.sum(act & ~y_true)),
        "fn": int(np.sum(~act & y_true)),
        "tn": int(np.sum(~act & ~y_true)),
    }


def cost_of(counts: dict[str, int], costs: Costs) -> float:
    """Dollars: missed positives, false alarms, and the cost of acting on true positives."""
    return float(
        counts["fn"] * costs.false_negative + counts["fp"] * costs.false_positive + counts["tp"] * costs.true_positive
    )


def expected_cost(y_true: ArrayLike, probability: ArrayLike, threshold: float, costs: Costs) -> float:
    return cost_of(confusion(y_true, probability, threshold), costs)


def cost_of_doing_nothing(y_true: ArrayLike, costs: Costs) -> float:
    """Acting on nobody: every positive is missed."""
    return float(np.sum(np.asarray(y_true) == 1) * costs.false_negative)


def classification_metrics(y_true: ArrayLike, probability: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """Ranking, decision and calibration metrics at one threshold."""
    y_true = np.asarray(y_true)
    decision = (np.asarray(probability) >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, probability)),
        "pr_auc": float(average_precision_score(y_true, probability)),
        "accuracy": float(accuracy_score(y_true, decision)),
        "precision": float(precision_score(y_true, decision, zero_division=0)),
        "recall": float(recall_score(y_true, decision, zero_division=0)),
        "f1": float(f1_score(y_true, decision, zero_division=0)),
        "brier": float(brier_score_loss(y_true, probability)),
    }


def decision_report(y_true: ArrayLike, probability: ArrayLike, threshold: float, costs: Costs) -> dict[str, Any]:
    """What acting at ``threshold`` means on these rows: counts, rates, dollars, value vs nothing."""
    counts = confusion(y_true, probability, threshold)
    cost = cost_of(counts, costs)
    nothing = cost_of_doing_nothing(y_true, costs)
    acted = counts["tp"] + counts["fp"]
    return {
        "threshold": round(float(threshold), 4),
        **counts,
        "precision": counts["tp"] / acted if acted else 0.0,
        "recall": counts["tp"] / (counts["tp"] + counts["fn"]) if counts["tp"] + counts["fn"] else 0.0,
        "accuracy": (counts["tp"] + counts["tn"]) / max(sum(counts.values()), 1),
        "expected_cost": cost,
        "cost_of_doing_nothing": nothing,
        "value_vs_nothing": nothing - cost,
    }


def calibration_error(y_true: ArrayLike, probability: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between predicted and observed rates."""
    y_true = np.asarray(y_true, dtype=float)
    probability = np.asarray(probability, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(probability[in_bin].mean() - y_true[in_bin].mean())
    return float(error)

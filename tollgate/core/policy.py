"""The decision policy: whom to act on, and what that is worth against the obvious alternatives.

Records are acted on in order of expected value ``p × success_rate × value − action_cost`` (the same order as
the probability), never one whose expected value is below zero and never more than capacity. Net value is
measured against acting on nobody: each positive acted on is worth ``success_rate × value``, each action
costs ``action_cost``. The alternatives are acting on nobody (0), on a random draw of the same size (its
expected value: the draw's size × the value of acting on an average record) and on everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from tollgate.config.spec import Costs, DecisionPolicy

BOOTSTRAP_CHUNK = 50
BOOTSTRAP_CELLS = 5_000_000
MOST_ACTED_SHARE = 0.5  # acting on more than this share of the records is worth a warning


def expected_value(probability: ArrayLike, costs: Costs) -> np.ndarray:
    """Expected dollars of acting on each record rather than not: ``p × (FN − TP) − (1 − p) × FP``.

    With a decision policy's costs this is exactly ``p × success_rate × value − action_cost``."""
    p = np.asarray(probability, dtype=float)
    ev: np.ndarray = p * (costs.false_negative - costs.true_positive) - (1.0 - p) * costs.false_positive
    return ev


def _worth_acting(probability: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    """Records whose expected value of acting is above zero."""
    result: np.ndarray = probability * policy.saved_value - policy.action_cost > 0
    return result


def act_on(probability: ArrayLike, policy: DecisionPolicy, capacity: int | None = None) -> np.ndarray:
    """Which records the policy acts on: the highest expected values, none below zero, at most capacity
    (``capacity`` defaults to the policy's share of these records)."""
    p = np.asarray(probability, dtype=float)
    limit = policy.capacity.for_sample(len(p)) if capacity is None else capacity
    worth_it = _worth_acting(p, policy)
    order = np.argsort(-p, kind="stable")[:limit]
    acted = np.zeros(len(p), dtype=bool)
    acted[order[worth_it[order]]] = True
    return acted


def serving_threshold(training_probability: ArrayLike, policy: DecisionPolicy) -> float:
    """For one record at a time: the larger of the break-even probability and the score at the capacity
    quantile of the training (out-of-fold) predictions."""
    p = np.asarray(training_probability, dtype=float)
    at_capacity = float(np.quantile(p, 1.0 - policy.capacity.as_share)) if len(p) else 1.0
    return round(max(policy.break_even, at_capacity), 6)


QUANTILES = 1001


def score_quantiles(training_probability: ArrayLike) -> list[float]:
    """The training (out-of-fold) scores at 0.0 %, 0.1 %, … 100 %: what a record's percentile is read from."""
    p = np.asarray(training_probability, dtype=float)
    return [round(float(q), 8) for q in np.quantile(p, np.linspace(0, 1, QUANTILES))]


def percentiles(probability: ArrayLike, quantiles: np.ndarray) -> np.ndarray:
    """The share of training records scored below each probability, in percent (from ``score_quantiles``)."""
    below = np.searchsorted(quantiles, np.asarray(probability, dtype=float), side="right")
    result: np.ndarray = np.round(100.0 * np.maximum(below - 1, 0) / (len(quantiles) - 1), 1)
    return result


@dataclass(frozen=True)
class PolicyOutcome:
    """What acting by the policy does on labelled records, beside acting on nobody, a random draw, everyone."""

    rows: int
    capacity: int
    acted: int
    acted_share: float
    positives: int
    caught: int
    precision: float
    recall: float
    f1: float
    lift: float
    net_value: float
    net_value_random: float
    net_value_everyone: float
    net_value_nobody: float
    cutoff: float | None  # the lowest probability acted on

    def summary(self) -> dict[str, Any]:
        """The run's JSON line ``decision`` object."""
        return {
            "capacity": self.capacity,
            "acted": self.acted,
            "acted_share": round(self.acted_share, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "lift": round(self.lift, 3),
            "net_value": round(self.net_value, 2),
            "net_value_random": round(self.net_value_random, 2),
            "net_value_everyone": round(self.net_value_everyone, 2),
        }


def evaluate_policy(
    y_true: ArrayLike, probability: ArrayLike, policy: DecisionPolicy, capacity: int | None = None
) -> PolicyOutcome:
    """The policy's operating point on labelled records and the three alternatives' net values."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(probability, dtype=float)
    limit = policy.capacity.for_sample(len(p)) if capacity is None else capacity
    acted = act_on(p, policy, limit)
    n, positives, count, caught = len(y), int(y.sum()), int(acted.sum()), int((acted & y).sum())
    base_rate = positives / n if n else 0.0
    precision = caught / count if count else 0.0
    recall = caught / positives if positives else 0.0
    per_action = base_rate * policy.saved_value - policy.action_cost  # an average record's expected value
    return PolicyOutcome(
        rows=n,
        capacity=limit,
        acted=count,
        acted_share=count / n if n else 0.0,
        positives=positives,
        caught=caught,
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        lift=precision / base_rate if base_rate else 0.0,
        net_value=caught * policy.saved_value - count * policy.action_cost,
        net_value_random=count * per_action,
        net_value_everyone=n * per_action,
        net_value_nobody=0.0,
        cutoff=float(p[acted].min()) if count else None,
    )


def value_curve(y_true: ArrayLike, probability: ArrayLike, policy: DecisionPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Net value of acting on the top k records by probability, for k = 0 … n: (k, net value)."""
    gains = row_values(np.asarray(y_true), policy)[np.argsort(-np.asarray(probability, dtype=float), kind="stable")]
    return np.arange(len(gains) + 1), np.concatenate([[0.0], np.cumsum(gains)])


@dataclass(frozen=True)
class TargetCheck:
    metric: str
    target: float
    value: float
    met: bool


def check_targets(outcome: PolicyOutcome, roc_auc: float, policy: DecisionPolicy) -> list[TargetCheck]:
    """The team's targets at the operating point (ROC-AUC over all records): met or not."""
    values = {"recall": outcome.recall, "precision": outcome.precision, "f1": outcome.f1, "roc_auc": roc_auc}
    return [
        TargetCheck(metric, target, values[metric], values[metric] >= target)
        for metric, target in policy.targets.items()
    ]


def holdout_roc_auc(y_true: ArrayLike, probability: ArrayLike) -> float:
    y = np.asarray(y_true)
    return float(roc_auc_score(y, probability)) if len(np.unique(y)) == 2 else float("nan")


def row_values(y_true: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    """What acting on each record is worth once its label is known."""
    return np.where(np.asarray(y_true).astype(bool), policy.saved_value, 0.0) - policy.action_cost


def _acting_order(probability: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    """The records the policy may act on, most probable first (the walk every resample repeats)."""
    order = np.argsort(-probability, kind="stable")
    acting: np.ndarray = order[_worth_acting(probability[order], policy)]
    return acting


def _resampled_values(order: np.ndarray, values: np.ndarray, weights: np.ndarray, capacity: int) -> np.ndarray:
    """Net value of the policy on each resample (rows of ``weights``: how often each record was drawn),
    the capacity cut recomputed inside each resample: walk the records in ``order``, act until full."""
    drawn = weights[:, order]
    before = np.cumsum(drawn, axis=1) - drawn
    acted = np.clip(capacity - before, 0, drawn)
    result: np.ndarray = acted @ values[order]
    return result


def bootstrap_chunk(rows: int) -> int:
    """Resamples drawn at once: ``BOOTSTRAP_CHUNK``, fewer on a large holdout so one chunk's arrays stay within
    ``BOOTSTRAP_CELLS`` values (50 resamples of 2.5M records would be a gigabyte per array). The draws are the
    same whatever the chunk: the generator's stream is read in the same order."""
    return max(1, min(BOOTSTRAP_CHUNK, BOOTSTRAP_CELLS // max(rows, 1)))


def net_value_bootstrap(
    y_true: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    policy: DecisionPolicy,
    seed: int,
    resamples: int,
) -> tuple[float, np.ndarray]:
    """The challenger's net value per record minus the champion's, and its paired bootstrap draws.

    Both models are cut at capacity on the same resampled records, so a challenger wins only by ranking
    better where the team acts."""
    n = len(y_true)
    values = row_values(y_true, policy)
    capacity = policy.capacity.for_sample(n)
    delta = float(
        (values[act_on(challenger, policy, capacity)].sum() - values[act_on(champion, policy, capacity)].sum()) / n
    )
    rng = np.random.default_rng(seed)
    orders = _acting_order(challenger, policy), _acting_order(champion, policy)
    chunk = bootstrap_chunk(n)
    draws = []
    for done in range(0, resamples, chunk):
        size = min(chunk, resamples - done)
        rows = rng.integers(0, n, size=(size, n))
        flat = (np.arange(size)[:, None] * n + rows).ravel()
        weights = np.bincount(flat, minlength=size * n).reshape(size, n).astype(float)
        draws.append(
            (
                _resampled_values(orders[0], values, weights, capacity)
                - _resampled_values(orders[1], values, weights, capacity)
            )
            / n
        )
    return delta, np.concatenate(draws)

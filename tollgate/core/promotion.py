"""Champion/challenger promotion on the same fresh holdout: the rule, as pure functions.

The challenger (this run's winner) and the serving champion are scored on the holdout rows neither trained
on: the challenger never sees the holdout, and the rows the champion trained on (recorded with it as row
keys) are left out, so a re-exported file cannot flatter the champion with rows it memorised.

``should_promote`` is a pure rule: floors first, then the spec's metric must improve by at least
``min_gain`` with a paired bootstrap's one-sided lower bound above zero at the spec's confidence. The
promote stage applies it under the registry lock and re-points the registry last, in one atomic write, so a
run that fails or is killed leaves the champion exactly as it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from tollgate.config.spec import Costs, DatasetSpec, Promotion
from tollgate.core.policy import bootstrap_chunk, evaluate_policy, net_value_bootstrap

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class HoldoutScore:
    """One model's figures on the comparison holdout (expected cost at its own threshold)."""

    tag: str
    threshold: float
    roc_auc: float
    pr_auc: float
    expected_cost: float
    expected_cost_per_row: float
    net_value: float | None = None  # the decision policy's, cut at capacity on these rows
    net_value_per_row: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Paired bootstrap of the challenger's improvement over the champion (positive = better)."""

    metric: str
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int


@dataclass(frozen=True)
class PromotionDecision:
    """Promote or reject, and why, with the improvement's figures when there was a champion to beat."""

    decision: Literal["promoted", "rejected"]
    reason: str
    champion: str | None
    challenger: str
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    compared_rows: int | None = None  # holdout rows both models were scored on
    excluded_rows: int | None = None  # holdout rows left out because the champion trained on them


def row_costs(y_true: np.ndarray, probability: np.ndarray, threshold: float, costs: Costs) -> np.ndarray:
    """What each holdout row costs when acting at ``threshold`` (FN, FP and acting on a TP)."""
    act = probability >= threshold
    positive = y_true.astype(bool)
    return np.where(
        positive & ~act,
        costs.false_negative,
        np.where(act & ~positive, costs.false_positive, np.where(act & positive, costs.true_positive, 0.0)),
    )


def holdout_score(
    tag: str, y_true: np.ndarray, probability: np.ndarray, threshold: float, spec: DatasetSpec
) -> HoldoutScore:
    cost = row_costs(y_true, probability, threshold, spec.costs)
    policy = evaluate_policy(y_true, probability, spec.decision) if spec.decision is not None else None
    return HoldoutScore(
        tag=tag,
        threshold=threshold,
        roc_auc=float(roc_auc_score(y_true, probability)),
        pr_auc=float(average_precision_score(y_true, probability)),
        expected_cost=float(cost.sum()),
        expected_cost_per_row=float(cost.mean()),
        net_value=policy.net_value if policy else None,
        net_value_per_row=policy.net_value / max(policy.rows, 1) if policy else None,
    )


def paired_bootstrap(
    y_true: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    thresholds: tuple[float, float],
    spec: DatasetSpec,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Comparison:
    """Resample holdout rows (the same rows for both models, seeded) and measure the improvement.

    For ``net_value`` the challenger's net value per row minus the champion's, both cut at capacity inside
    each resample; for ``expected_cost`` the champion's cost per row minus the challenger's; for
    ``roc_auc``/``pr_auc`` the challenger's score minus the champion's.
    """
    rule = spec.promotion
    rng = np.random.default_rng(spec.split.seed)
    n = len(y_true)
    if rule.metric == "net_value":
        assert spec.decision is not None  # the spec refuses net_value without a decision policy
        delta, draws = net_value_bootstrap(y_true, challenger, champion, spec.decision, spec.split.seed, resamples)
    elif rule.metric == "expected_cost":
        saving = row_costs(y_true, champion, thresholds[1], spec.costs) - row_costs(
            y_true, challenger, thresholds[0], spec.costs
        )
        delta = float(saving.mean())
        chunk = bootstrap_chunk(n)
        draws = np.concatenate(
            [
                saving[rng.integers(0, n, size=(min(chunk, resamples - done), n))].mean(axis=1)
                for done in range(0, resamples, chunk)
            ]
        )
    else:
        score = roc_auc_score if rule.metric == "roc_auc" else average_precision_score
        delta = float(score(y_true, challenger) - score(y_true, champion))
        scores: list[float] = []
        while len(scores) < resamples:
            rows = rng.integers(0, n, size=n)
            if y_true[rows].min() != y_true[rows].max():  # both classes drawn
                scores.append(score(y_true[rows], challenger[rows]) - score(y_true[rows], champion[rows]))
        draws = np.asarray(scores)
    low, high = np.quantile(draws, [1 - rule.confidence, rule.confidence])
    return Comparison(
        metric=rule.metric,
        delta=delta,
        ci_low=float(low),
        ci_high=float(high),
        confidence=rule.confidence,
        resamples=resamples,
    )


def unseen_rows(holdout_keys: np.ndarray, champion_trained: np.ndarray | None) -> np.ndarray:
    """Which holdout rows the champion did not train on (all, when its training rows were not recorded)."""
    if champion_trained is None:
        return np.ones(len(holdout_keys), dtype=bool)
    return ~np.isin(holdout_keys, champion_trained)


def too_few_rows(y_true: np.ndarray, rule: Promotion) -> str | None:
    """Why the rows left for a comparison cannot decide anything, or None when they can."""
    if len(y_true) < rule.min_compared_rows:
        return f"{len(y_true):,} holdout rows are left, fewer than min_compared_rows ({rule.min_compared_rows:,})"
    if len(np.unique(y_true)) < 2:
        return "the rows left hold only one class"
    return None


def should_promote(
    challenger: HoldoutScore,
    champion: HoldoutScore | None,
    comparison: Comparison | None,
    rule: Promotion,
    unfair: str | None = None,
) -> PromotionDecision:
    """Floors and the spec's fairness bounds first (``unfair``: why the challenger's decisions exceed them; every
    reason to refuse is given, not just the first); then a real, significant improvement over the champion on the
    spec's metric."""
    refusals = [
        f"challenger {metric} {value:.4f} is below the floor {floor:g}"
        for metric, floor in sorted(rule.floors.items())
        if (value := getattr(challenger, metric, None)) is not None and value < floor
    ]
    if unfair is not None:
        refusals.append(f"unfair to a protected group: {unfair}")
    if refusals:
        return PromotionDecision("rejected", "; ".join(refusals), champion.tag if champion else None, challenger.tag)
    if champion is None or comparison is None:
        floors = ", ".join(f"{m} ≥ {f:g}" for m, f in sorted(rule.floors.items())) or "none set"
        return PromotionDecision("promoted", f"first champion: floors met ({floors})", None, challenger.tag)
    figures: dict[str, Any] = dict(delta=comparison.delta, ci_low=comparison.ci_low, ci_high=comparison.ci_high)
    unit = " per holdout row" if comparison.metric in ("expected_cost", "net_value") else ""
    if comparison.delta < rule.min_gain or comparison.delta <= 0:
        return PromotionDecision(
            "rejected",
            f"no real improvement: {comparison.metric} {comparison.delta:+.4f}{unit} "
            f"(needs > 0 and ≥ min_gain {rule.min_gain:g})",
            champion.tag,
            challenger.tag,
            **figures,
        )
    if comparison.ci_low <= 0:
        return PromotionDecision(
            "rejected",
            f"{comparison.metric} improvement {comparison.delta:+.4f}{unit} is not significant: "
            f"the bootstrap's {comparison.confidence:.0%} lower bound {comparison.ci_low:+.4f} is not above 0",
            champion.tag,
            challenger.tag,
            **figures,
        )
    return PromotionDecision(
        "promoted",
        f"{comparison.metric} improves by {comparison.delta:+.4f}{unit} (one-sided "
        f"{comparison.confidence:.0%} lower bound {comparison.ci_low:+.4f} > 0, required gain {rule.min_gain:g})",
        champion.tag,
        challenger.tag,
        **figures,
    )


def promotion_markdown(
    spec: DatasetSpec,
    decision: PromotionDecision,
    challenger: HoldoutScore,
    champion: HoldoutScore | None,
    holdout_month: str | None,
) -> str:
    rows = ["| | challenger | champion |", "|---|---|---|"]
    fields = ("tag", "threshold", "roc_auc", "pr_auc", "expected_cost") + (("net_value",) if spec.decision else ())
    for field in fields:
        values = [getattr(score, field) if score else "—" for score in (challenger, champion)]
        rows.append(
            f"| {field} | " + " | ".join(f"{v:,.4f}" if isinstance(v, float) else str(v) for v in values) + " |"
        )
    interval = (
        f"\n\nImprovement {decision.delta:+.4f}, bootstrap interval [{decision.ci_low:+.4f}, {decision.ci_high:+.4f}]"
        if decision.delta is not None
        else ""
    )
    where = f"month {holdout_month}" if holdout_month else "the holdout"
    compared = decision.compared_rows
    if not decision.excluded_rows:
        rows_line = (
            f"Both models scored on {where}"
            + (f" ({compared:,} rows)" if compared else "")
            + (", which neither trained on." if champion or compared else ", which the challenger never trained on.")
        )
    else:
        rows_line = (
            f"Both models scored on the {compared:,} rows of {where} that neither trained on: "
            f"{decision.excluded_rows:,} rows the champion trained on were left out."
        )
    return (
        f"# {spec.name}: challenger {decision.decision.upper()}\n\n{decision.reason}.\n\n"
        f"{rows_line}{interval}\n\n" + "\n".join(rows)
    )


@dataclass(frozen=True)
class PromotionResult:
    """The promote stage's result: the decision, what was recorded, and the registry it was recorded in."""

    decision: PromotionDecision
    record: dict[str, Any]
    registry: str
    bento_tag: str | None = None  # built for a promoted model only

    def summary(self) -> dict[str, Any]:
        """The decision's fields for the run's JSON line."""
        return asdict(self.decision)

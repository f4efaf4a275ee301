"""Promotion: the pure rule branch by branch, the paired bootstrap, and the registry's writes."""

import json

import numpy as np
import pytest

from tollgate.config.spec import Costs, Promotion
from tollgate.core.promotion import Comparison, HoldoutScore, paired_bootstrap, row_costs, should_promote
from tollgate.store.registry import RegistryError, locked_registry, read_registry, rollback


def _score(tag="challenger", roc_auc=0.85, cost=100.0) -> HoldoutScore:
    return HoldoutScore(
        tag=tag, threshold=0.3, roc_auc=roc_auc, pr_auc=0.6, expected_cost=cost * 10, expected_cost_per_row=cost
    )


def _comparison(delta, low, high) -> Comparison:
    return Comparison(metric="expected_cost", delta=delta, ci_low=low, ci_high=high, confidence=0.95, resamples=1000)


RULE = Promotion(metric="expected_cost", min_gain=1.0, confidence=0.95, floors={"roc_auc": 0.70})


def test_first_champion_is_promoted_when_floors_are_met():
    """Check a challenger with no champion is promoted if it clears the floors, and says so."""
    decision = should_promote(_score(), None, None, RULE)
    assert decision.decision == "promoted" and "first champion" in decision.reason and decision.champion is None


def test_a_challenger_below_a_floor_is_rejected_even_without_champion():
    """Check the absolute floor applies: ROC-AUC 0.65 < 0.70 is never served."""
    decision = should_promote(_score(roc_auc=0.65), None, None, RULE)
    assert decision.decision == "rejected" and "roc_auc 0.6500 is below the floor 0.7" in decision.reason


@pytest.mark.parametrize(
    "comparison, verdict, words",
    [
        (_comparison(5.0, 2.0, 8.0), "promoted", "improves by +5.0000"),
        (_comparison(0.5, 0.1, 0.9), "rejected", "needs > 0 and ≥ min_gain 1"),
        (_comparison(-3.0, -6.0, -1.0), "rejected", "no real improvement: expected_cost -3.0000"),
        (_comparison(4.0, -0.5, 8.0), "rejected", "not significant"),
    ],
)
def test_the_rule_against_a_champion(comparison, verdict, words):
    """Check promotion needs the minimum gain AND a bootstrap lower bound above zero."""
    decision = should_promote(_score(), _score("champion"), comparison, RULE)
    assert decision.decision == verdict and words in decision.reason
    assert (decision.champion, decision.challenger, decision.ci_low) == ("champion", "challenger", comparison.ci_low)


def test_row_costs_follow_the_spec():
    """Check each holdout row's cost: missed positive, false alarm, acting on a positive, nothing."""
    costs = Costs(false_negative=100, false_positive=10, true_positive=1)
    y = np.array([1, 0, 1, 0])
    p = np.array([0.1, 0.9, 0.9, 0.1])
    assert row_costs(y, p, 0.5, costs).tolist() == [100, 10, 1, 0]


def test_paired_bootstrap_sees_a_better_model_and_not_a_copy(churn_spec):
    """Check the bootstrap is seeded, credits a clearly better model, and puts zero inside for a copy."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = np.clip(y * 0.6 + rng.normal(0.2, 0.15, 2000), 0, 1)
    noisy = np.clip(y * 0.2 + rng.normal(0.4, 0.3, 2000), 0, 1)
    better = paired_bootstrap(y, good, noisy, (0.5, 0.5), churn_spec)
    assert better.delta > 0 and better.ci_low > 0 and better.resamples == 1000
    assert paired_bootstrap(y, good, noisy, (0.5, 0.5), churn_spec) == better  # seeded
    same = paired_bootstrap(y, good, good, (0.5, 0.5), churn_spec)
    assert same.delta == 0 and same.ci_low <= 0 <= same.ci_high


def test_paired_bootstrap_on_roc_auc(churn_spec):
    """Check the AUC variant measures the challenger's AUC minus the champion's."""
    spec = churn_spec.model_copy(update={"promotion": Promotion(metric="roc_auc")})
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    strong, weak = y + rng.normal(0, 0.5, 1000), y + rng.normal(0, 2.0, 1000)
    comparison = paired_bootstrap(y, strong, weak, (0.5, 0.5), spec, resamples=200)
    assert comparison.metric == "roc_auc" and comparison.ci_low > 0


def test_a_failed_registry_update_leaves_the_file_as_it_was(tmp_path):
    """Check an exception inside the lock writes nothing: the champion stays."""
    path = tmp_path / "registry.json"
    with locked_registry(path) as registry:
        registry["champion"] = {"tag": "m:1"}
    before = path.read_bytes()
    with pytest.raises(RuntimeError), locked_registry(path) as registry:
        registry["champion"] = {"tag": "m:2"}
        raise RuntimeError("killed mid-promotion")
    assert path.read_bytes() == before and not list(tmp_path.glob(".registry.json.*.tmp"))


def test_rollback_restores_the_previous_champion_and_records_it(tmp_path):
    """Check rollback re-points to the last replaced champion and appends to the history."""
    path = tmp_path / "registry.json"
    with locked_registry(path) as registry:
        registry["champion"] = {"tag": "m:2"}
        registry["previous"] = [{"tag": "m:1"}]
    assert rollback(path, "bad month")["tag"] == "m:1"
    saved = json.loads(path.read_text())
    assert saved["champion"]["tag"] == "m:1" and saved["previous"] == []
    assert saved["history"][-1] | {"at": None} == {
        "at": None,
        "decision": "rolled_back",
        "reason": "bad month",
        "champion": "m:1",
        "replaced": "m:2",
    }
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(path)
    assert read_registry(tmp_path / "absent.json") == {"champion": None, "previous": [], "history": []}

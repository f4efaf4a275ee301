"""The decision policy: whom it acts on, what that is worth, and a bootstrap that recomputes capacity."""

import numpy as np
import pandas as pd
import pytest

from tollgate.config.spec import Capacity, DecisionPolicy
from tollgate.core.calllist import CallListError, _words, build_call_list, realised_outcome
from tollgate.core.ingest import BATCH_COLUMN
from tollgate.core.policy import (
    _acting_order,
    _resampled_values,
    act_on,
    check_targets,
    evaluate_policy,
    expected_value,
    net_value_bootstrap,
    row_values,
    serving_threshold,
    value_curve,
)
from tollgate.core.promotion import unseen_rows
from tollgate.core.split import row_keys


def policy(share: float = 0.1) -> DecisionPolicy:
    return DecisionPolicy(value=1000, success_rate=0.5, action_cost=100, capacity=Capacity(share=share))


def test_acts_on_the_highest_expected_values_never_below_zero_never_above_capacity():
    """Check against a hand count: 10 records, capacity 3, break-even p = 0.2."""
    p = np.array([0.9, 0.1, 0.5, 0.15, 0.3, 0.8, 0.05, 0.25, 0.19, 0.6])
    acted = act_on(p, policy(0.3))
    assert acted.tolist() == [True, False, False, False, False, True, False, False, False, True]
    # with room for everyone, only records above break-even
    assert act_on(p, policy(1.0)).sum() == int((p > 0.2).sum()) == 6
    np.testing.assert_allclose(expected_value(p, policy().costs()), p * 500 - 100)


def test_policy_figures_against_the_three_alternatives():
    """Check precision, recall, lift and the net values of the policy, a random draw and everyone."""
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 1])
    p = np.array([0.9, 0.1, 0.5, 0.15, 0.3, 0.8, 0.05, 0.25, 0.19, 0.6])
    outcome = evaluate_policy(y, p, policy(0.3))
    assert (outcome.capacity, outcome.acted, outcome.caught, outcome.positives) == (3, 3, 3, 4)
    assert outcome.precision == 1.0 and outcome.recall == 0.75 and outcome.lift == pytest.approx(2.5)
    assert outcome.net_value == 3 * 500 - 3 * 100
    assert outcome.net_value_random == pytest.approx(3 * (0.4 * 500 - 100))
    assert outcome.net_value_everyone == pytest.approx(10 * (0.4 * 500 - 100))
    assert outcome.net_value_nobody == 0 and outcome.cutoff == 0.6
    k, value = value_curve(y, p, policy(0.3))
    assert value[0] == 0 and value[3] == outcome.net_value and value[-1] == pytest.approx(outcome.net_value_everyone)
    checks = check_targets(outcome, 0.9, policy().model_copy(update={"targets": {"recall": 0.8, "precision": 0.65}}))
    assert [(c.metric, c.met) for c in checks] == [("recall", False), ("precision", True)]


def test_a_count_capacity_cuts_a_batch_at_the_count_and_a_sample_at_its_share():
    capacity = Capacity(count=10, period="day", period_records=200)
    assert capacity.as_share == 0.05 and capacity.for_rows(1000) == 10 and capacity.for_sample(1000) == 50


def test_serving_threshold_is_the_larger_of_break_even_and_the_capacity_quantile():
    scores = np.linspace(0, 1, 1001)
    assert serving_threshold(scores, policy(0.1)) == pytest.approx(0.9)
    assert serving_threshold(scores, policy(0.95)) == pytest.approx(0.2)  # break-even binds


def test_the_bootstrap_prefers_a_better_ranker_at_capacity_and_sees_no_gain_in_a_copy():
    """Two models alike in ROC-AUC over all rows can differ where the team acts: the bootstrap cuts each
    resample at capacity, so only the ranking of the top matters."""
    rng = np.random.default_rng(1)
    n = 3000
    y = (rng.random(n) < 0.2).astype(int)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.15, n), 0, 1)
    poor = np.clip(0.2 * y + rng.normal(0.3, 0.15, n), 0, 1)
    delta, draws = net_value_bootstrap(y, good, poor, policy(0.08), seed=7, resamples=200)
    assert delta > 0 and np.quantile(draws, 0.05) > 0 and len(draws) == 200
    same, same_draws = net_value_bootstrap(y, good, good, policy(0.08), seed=7, resamples=100)
    assert same == 0 and np.all(same_draws == 0)
    again = net_value_bootstrap(y, good, poor, policy(0.08), seed=7, resamples=200)
    np.testing.assert_array_equal(again[1], draws)  # seeded
    # one resample by hand: its capacity cut recomputed on the drawn rows
    weights = np.bincount(np.random.default_rng(0).integers(0, n, n), minlength=n)
    drawn = np.repeat(np.arange(n), weights)
    expected = evaluate_policy(y[drawn], good[drawn], policy(0.08)).net_value
    got = _resampled_values(
        _acting_order(good, policy(0.08)), row_values(y, policy(0.08)), weights[None, :].astype(float), int(0.08 * n)
    )
    assert got[0] == pytest.approx(expected)


def test_a_large_holdout_draws_the_same_resamples_in_smaller_chunks(monkeypatch):
    """Check that bounding a chunk's arrays (a 2.5M-record holdout) changes the bootstrap's memory, not its draws."""
    import tollgate.core.policy as policy_module

    rng = np.random.default_rng(3)
    n = 2000
    y = (rng.random(n) < 0.2).astype(int)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.15, n), 0, 1)
    poor = np.clip(0.2 * y + rng.normal(0.3, 0.15, n), 0, 1)
    whole = net_value_bootstrap(y, good, poor, policy(0.08), seed=7, resamples=120)
    monkeypatch.setattr(policy_module, "BOOTSTRAP_CELLS", 3 * n)  # three resamples a chunk instead of fifty
    assert policy_module.bootstrap_chunk(n) == 3
    chunked = net_value_bootstrap(y, good, poor, policy(0.08), seed=7, resamples=120)
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_row_keys_name_rows_whatever_their_order_and_months_tell_snapshots_apart(churn_spec):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            **{column: [1, 2, 3] for column in churn_spec.columns.numeric},
            **{column: [values[0]] * 3 for column, values in churn_spec.columns.categorical.items()},
            "churn": ["Yes", "No", "No"],
            BATCH_COLUMN: ["2026-01", "2026-01", "export"],
        }
    )
    keys = row_keys(frame, churn_spec)
    shuffled = row_keys(frame.iloc[[2, 0, 1]].reset_index(drop=True), churn_spec)
    assert sorted(keys.tolist()) == sorted(shuffled.tolist())
    next_month = row_keys(frame.assign(**{BATCH_COLUMN: "2026-02"}), churn_spec)
    assert not set(next_month[:2].tolist()) & set(keys.tolist())  # another month's snapshot is another row
    renamed_file = row_keys(frame.assign(**{BATCH_COLUMN: ["2026-01", "2026-01", "re-export"]}), churn_spec)
    assert renamed_file.tolist() == keys.tolist()  # a file that is not a month: the id alone
    no_id = churn_spec.model_copy(update={"id_column": None})
    assert row_keys(frame, no_id)[0] != row_keys(frame.assign(churn="No"), no_id)[0]  # content, target included
    assert unseen_rows(keys, np.sort(keys[:1])).tolist() == [False, True, True]
    assert unseen_rows(keys, None).all()


def test_a_call_list_is_ranked_by_expected_value_cut_at_capacity_and_realised_by_id(churn_spec):
    """Check the list's order, cut and words, and the realised outcome's join on ids (as text)."""
    rng = np.random.default_rng(3)
    p = rng.random(500)
    ids = pd.Series([f"C{i:03d}" for i in range(500)])
    call_list = build_call_list(ids, p, churn_spec, "2026-10", "tollgate-churn:x")
    assert call_list.capacity == 40 == call_list.listed and call_list.worth_acting == int((p > 50 / 720).sum())
    assert call_list.table["probability"].tolist() == sorted(np.round(p, 4), reverse=True)[:40]
    assert call_list.predicted_net_value == pytest.approx((p[call_list.positions] * 720 - 50).sum(), abs=0.01)
    assert call_list.predicted_net_value > call_list.random_draw_value
    labels = pd.DataFrame({"customer_id": ids, "churn": (rng.random(500) < p).astype(int)})
    outcome = realised_outcome(call_list.table, labels, churn_spec, "2026-10", call_list.model_tag)
    caught = int(labels["churn"].to_numpy()[call_list.positions].sum())
    assert (outcome.labelled, outcome.caught) == (40, caught)
    assert outcome.net_value == caught * 720 - 40 * 50 and outcome.positives == labels["churn"].sum()
    everyone_lost = labels.assign(churn=0)
    assert realised_outcome(call_list.table, everyone_lost, churn_spec, "2026-10", "x").shortfall
    with pytest.raises(CallListError, match="id_column"):
        build_call_list(ids, p, churn_spec.model_copy(update={"id_column": None}), "p", "x")


def test_reasons_name_the_records_own_values():
    words = _words("contract", "Month-to-month", 0.61)
    assert words == "contract is Month-to-month (+0.61)"
    assert _words("tenure_months", 2.0, 0.5) == "tenure_months = 2 (+0.50)"
    assert _words("monthly_charges", float("nan"), 0.2) == "monthly_charges unknown (+0.20)"

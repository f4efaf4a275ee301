"""Time-budgeted hyperparameter search per candidate family (``tollgate.core.search``)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import log_loss

from tollgate.config.spec import ParamRange, Search, SpecError
from tollgate.core.search import FoldClock, entrant, search_candidate, space_for
from tollgate.core.tournament import rank_candidates

TRIALS = 6


def searching(spec, **search):
    tournament = spec.tournament.model_copy(update={"cv_folds": 3, "search": Search(**search)})
    return spec.model_copy(update={"tournament": tournament})


@pytest.fixture(scope="module")
def spec(churn_spec):
    return searching(churn_spec, budget_seconds=600, trials=TRIALS)


@pytest.fixture(scope="module")
def searched(churn_split, spec):
    return [entrant(candidate, churn_split, spec) for candidate in spec.tournament.candidates]


def test_every_family_searches_and_its_best_enters_the_leaderboard(searched, churn_split, spec):
    """Check each family ran its trials (the first one the spec's own params), the leaderboard entry is the best
    trial's configuration with that trial's objective, and no family ends worse than its spec's configuration."""
    for result in searched:
        trace = result.search
        assert len(trace.trials) == TRIALS and trace.stopped_by == "the trial limit"
        assert trace.trials[0].params == next(c.params for c in spec.tournament.candidates if c.name == result.name)
        completed = [trial.value for trial in trace.trials if trial.value is not None]
        assert trace.best_value == max(completed) >= trace.trials[0].value
        assert trace.objective == "minus OOF log loss"
        assert trace.best_value == pytest.approx(-log_loss(result.oof_target, result.oof_probability))
        best = next(trial for trial in trace.trials if trial.number == trace.best_number)
        assert all(result.params[name] == value for name, value in best.params.items())
        curve = trace.best_so_far()
        assert [value for _, value in curve] == sorted(value for _, value in curve)


@pytest.mark.parametrize(
    ("objective", "figure"),
    [
        ("selection", lambda result: result.oof_policy.net_value),
        ("roc_auc", lambda result: result.cv["roc_auc"]["mean"]),
    ],
)
def test_a_search_can_compare_trials_on_the_selection_rules_figure_or_roc_auc(
    churn_split, churn_spec, objective, figure
):
    """Check ``objective: selection`` tunes on the decision policy's out-of-fold net value (the selection rule's
    figure) and ``roc_auc`` on the mean CV ROC-AUC: the best trial's value is that figure of the entry."""
    spec = searching(churn_spec, budget_seconds=600, trials=TRIALS, objective=objective)
    candidate = next(c for c in spec.tournament.candidates if c.estimator == "lightgbm")
    result = search_candidate(candidate, churn_split, spec)
    values = [trial.value for trial in result.search.trials if trial.value is not None]
    assert result.search.best_value == pytest.approx(figure(result)) == max(values)


def test_the_same_seed_and_trials_give_the_same_leaderboard(searched, churn_split, spec):
    """Check a second search with the same seed and trial limit chooses the same configurations and ranks the
    families the same way, to the same figures."""
    again = [entrant(candidate, churn_split, spec) for candidate in spec.tournament.candidates]
    first, second = rank_candidates(searched, spec).rows(), rank_candidates(again, spec).rows()
    drop = {"fit_seconds"}
    assert [{k: v for k, v in row.items() if k not in drop} for row in first] == [
        {k: v for k, v in row.items() if k not in drop} for row in second
    ]
    assert [r.params for r in searched] == [r.params for r in again]


def test_the_budget_stops_the_search(churn_split, churn_spec):
    """Check a budget of a second stops each family's search after few trials, said in its trace."""
    spec = searching(churn_spec, budget_seconds=1.0)
    candidate = next(c for c in spec.tournament.candidates if c.estimator == "lightgbm")
    result = search_candidate(candidate, churn_split, spec)
    assert result.search.stopped_by == "the time budget"
    assert 1 <= len(result.search.trials) < 50
    assert np.isfinite(result.oof_policy.net_value)


def test_the_specs_configuration_completes_even_past_the_budget_and_no_fold_starts_that_cannot_end(
    churn_split, churn_spec
):
    """Check a budget shorter than one fold still gives the family its spec's configuration (the baseline, whole),
    and no other trial completes: a fold is begun only when one of the family's typical length still fits."""
    spec = searching(churn_spec, budget_seconds=0.001)
    candidate = next(c for c in spec.tournament.candidates if c.estimator == "logistic_regression")
    result = search_candidate(candidate, churn_split, spec)
    assert [trial.state for trial in result.search.trials][:1] == ["complete"]
    assert all(trial.state == "pruned" for trial in result.search.trials[1:]) and len(result.search.trials) <= 2
    assert result.params == candidate.params and len(result.fold_metrics) == spec.tournament.cv_folds


def test_the_fold_clock_starts_only_a_fold_the_budget_has_time_for():
    """Check the clock predicts a fold by the median of the family's folds so far (none yet: any budget left)."""
    clock = FoldClock()
    now = time.monotonic()
    assert clock.one_more_fits(now + 1.0) and not clock.one_more_fits(now - 1.0)
    clock.seconds = [5.0, 60.0, 6.0]  # one slow fold (a loaded machine) does not move the median
    assert clock.one_more_fits(time.monotonic() + 7.0) and not clock.one_more_fits(time.monotonic() + 5.5)


def test_a_space_naming_an_unknown_parameter_is_refused_with_its_name(churn_spec):
    """Check a misspelt parameter in a search space is named with the estimator's real parameters."""
    search = Search(budget_seconds=10, spaces={"lightgbm": {"num_leafs": ParamRange(low=4, high=64)}})
    candidate = next(c for c in churn_spec.tournament.candidates if c.name == "lightgbm")
    with pytest.raises(SpecError, match=r"tournament.search.spaces.lightgbm: \['num_leafs'\] are not lightgbm"):
        space_for(candidate, search)

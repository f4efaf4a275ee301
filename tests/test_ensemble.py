"""The ensemble candidate: judged on its members' out-of-fold predictions, scored exactly, explained additively."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit

from tollgate.core.ensemble import ensemble_candidate, rank_with_ensemble
from tollgate.core.explain import Explainer
from tollgate.core.fastpath import FastScorer
from tollgate.core.features import features_and_target
from tollgate.core.logodds import LogOddsAverage, average_log_odds, log_odds
from tollgate.core.policy import evaluate_policy
from tollgate.core.search import selection_figure
from tollgate.core.tournament import FINAL_FIT_MAX_ROWS, evaluate_candidate, fit_winner, rank_candidates, settle_ties


@pytest.fixture(scope="module")
def spec(churn_spec):
    """The churn spec with 3 folds, for speed."""
    return churn_spec.model_copy(update={"tournament": churn_spec.tournament.model_copy(update={"cv_folds": 3})})


@pytest.fixture(scope="module")
def results(churn_split, spec):
    return [evaluate_candidate(candidate, churn_split, spec) for candidate in spec.tournament.candidates]


@pytest.fixture(scope="module")
def ensemble(results, churn_split, spec):
    made = ensemble_candidate(rank_candidates(results, spec), churn_split, spec)
    assert made is not None
    return made


def test_the_ensemble_averages_the_best_log_odds_families_out_of_fold(results, ensemble, spec):
    """Check the ensemble's members are the best-ranked families that speak log-odds (never the forest), that its
    out-of-fold probabilities are their log-odds averaged, and that it is judged like any candidate."""
    ranked = [r for r in rank_candidates(results, spec).results if r.estimator != "random_forest"]
    assert [m.name for m in ensemble.members] == [r.name for r in ranked[: len(ensemble.members)]]
    target = ranked[0].oof_target
    pair, triple = (
        selection_figure(target, average_log_odds([r.oof_probability for r in ranked[:k]]), [], spec) for k in (2, 3)
    )
    assert len(ensemble.members) == (3 if triple > pair else 2)  # the third joins only when it pays out of fold
    by_name = {r.name: r for r in results}
    margins = [
        np.log(by_name[m.name].oof_probability / (1 - by_name[m.name].oof_probability)) for m in ensemble.members
    ]
    np.testing.assert_allclose(ensemble.oof_probability, expit(np.mean(margins, axis=0)), rtol=0, atol=1e-12)
    assert ensemble.fit_note.startswith("the average log-odds of " + ", ".join(m.name for m in ensemble.members))
    assert len(ensemble.fold_metrics) == spec.tournament.cv_folds and ensemble.oof_policy is not None
    row = ensemble.leaderboard_row()
    assert row["model"] == "ensemble" and 0.5 < row["test_roc_auc"] <= 1
    assert all(f"{m.name}." in " ".join(ensemble.params) for m in ensemble.members)


def test_the_ensembles_model_is_its_members_fits_averaged_in_log_odds(results, ensemble, churn_split, spec):
    """Check the ensemble's model (the members' own fits, no new fit) scores the holdout as the mean of their
    log-odds, and that the out-of-fold rule (log-odds recovered from probabilities) agrees with it."""
    holdout, _ = features_and_target(churn_split.holdout, spec)
    by_name = {r.name: r for r in results}
    pipelines = [by_name[m.name].pipeline for m in ensemble.members]
    encoded = pipelines[0][:-1].transform(holdout)
    expected = expit(np.mean([log_odds(p[-1], encoded) for p in pipelines], axis=0))
    np.testing.assert_allclose(ensemble.holdout_probability, expected, rtol=0, atol=1e-12)
    recovered = average_log_odds([p.predict_proba(holdout)[:, 1] for p in pipelines])
    np.testing.assert_allclose(recovered, expected, rtol=0, atol=1e-9)


def test_the_ensemble_enters_the_leaderboard_unless_the_spec_says_not(results, churn_split, spec):
    """Check the ensemble is one more leaderboard row, ranked by the same rule, and absent with ``ensemble: null``
    or with fewer than two log-odds families."""
    board = rank_with_ensemble(results, churn_split, spec)
    assert [row["model"] for row in board.rows()].count("ensemble") == 1 and len(board.results) == len(results) + 1
    assert board.rows() == rank_candidates(board.results, spec).rows()
    off = spec.model_copy(update={"tournament": spec.tournament.model_copy(update={"ensemble": None})})
    assert len(rank_with_ensemble(results, churn_split, off).results) == len(results)
    lonely = [r for r in results if r.estimator in ("random_forest", "lightgbm")]
    assert len(rank_with_ensemble(lonely, churn_split, spec).results) == 2


def test_the_fast_path_scores_the_ensemble_exactly(ensemble, churn_split, spec):
    """Check one record at a time = the Pipeline, to 1e-9, on the whole holdout, and the batch path too."""
    holdout, _ = features_and_target(churn_split.holdout, spec)
    scorer = FastScorer.compile(ensemble.pipeline)
    fast = np.array([scorer.predict_proba(record) for record in holdout.to_dict(orient="records")])
    np.testing.assert_allclose(fast, ensemble.pipeline.predict_proba(holdout)[:, 1], rtol=0, atol=1e-9)


def test_the_ensembles_explanation_adds_up_to_its_log_odds(ensemble, churn_split, spec):
    """Check each record's contributions sum to the ensemble's log-odds less one constant (the members' mean base
    value), as SHAP's additivity asks, and that they are the mean of the members' own."""
    holdout, _ = features_and_target(churn_split.holdout, spec)
    rows = holdout.head(200)
    background = features_and_target(churn_split.train, spec)[0].head(200)
    values = Explainer(ensemble.pipeline, background).values(rows)
    assert values.shape == (len(rows), len(Explainer(ensemble.pipeline, background).names))
    base = ensemble.pipeline.decision_function(rows) - values.sum(axis=1)
    np.testing.assert_allclose(base, base[0], rtol=0, atol=1e-6)
    model = ensemble.pipeline[-1]
    members = [
        Explainer(type(ensemble.pipeline)([*ensemble.pipeline.steps[:-1], ("model", m)]), background).values(rows)
        for m in model.members_
    ]
    np.testing.assert_allclose(values, np.mean(members, axis=0), rtol=0, atol=1e-12)


def test_an_ensemble_winner_is_refitted_member_by_member_on_every_row(
    results, ensemble, churn_split, spec, monkeypatch
):
    """Check the final fit of an ensemble winner fits each member again (on every training row when CV used a
    sample) with the members' own parameters, and scores on one thread afterwards."""
    sampled = spec.model_copy(update={"tournament": spec.tournament.model_copy(update={"cv_max_rows": 1000})})
    train = churn_split.train.sample(1500, replace=True, random_state=0).reset_index(drop=True)
    train[spec.id_column] = [f"id-{i}" for i in range(len(train))]
    big = type(churn_split)(train, churn_split.holdout, churn_split.strategy, None)
    small = [
        evaluate_candidate(c, big, sampled) for c in sampled.tournament.candidates if c.estimator != "random_forest"
    ]
    made = ensemble_candidate(rank_candidates(small, sampled), big, sampled)
    assert made is not None and made.fit_rows == 1000
    final = fit_winner(type(rank_candidates(small, sampled))([made], "test"), big, sampled).winner
    model = final.pipeline[-1]
    width = final.pipeline[:-1].transform(train.head(1)).shape[1]
    assert isinstance(model, LogOddsAverage) and final.fit_rows == 1500 and model.n_features_in_ == width
    assert final.pipeline.named_steps["columns"].named_transformers_["numeric"]["scale"].n_samples_seen_ == 1500
    assert [m.get_params()["n_jobs"] for m in model.members_ if "n_jobs" in m.get_params()] == [1] * sum(
        "n_jobs" in m.get_params() for m in model.members_
    )
    for member, candidate in zip(model.members_, made.members, strict=True):
        assert all(member.get_params()[name] == value for name, value in candidate.params.items())
        assert member.n_features_in_ == width
    assert final.holdout_metrics != made.holdout_metrics and final.fit_note.startswith("the average log-odds of")

    monkeypatch.setitem(FINAL_FIT_MAX_ROWS, "ensemble", 1200)  # on very many rows, a sample of the cap
    capped = fit_winner(type(rank_candidates(small, sampled))([made], "test"), big, sampled).winner
    assert capped.fit_rows == 1200 and "fitted on 1,200 of 1,500 training rows (ensemble is capped at 1,200 rows)" in (
        capped.fit_note
    )


def test_a_statistical_tie_at_the_top_goes_to_the_higher_cv_roc_auc(results, spec):
    """Check a candidate the leader does not beat by one standard error out of fold (here: the leader's own
    predictions, a hair lower) is tied with it and wins on CV ROC-AUC, said in the leaderboard, while a candidate
    clearly worse out of fold stays behind whatever its CV ROC-AUC; a rule on ROC-AUC itself has no such ties."""
    board = rank_candidates(results, spec)
    leader = board.winner
    cv = {**leader.cv, "roc_auc": {"mean": 0.99, "std": 0.0}}
    twin = replace(leader, name="twin", oof_probability=leader.oof_probability * (1 - 1e-9), cv=cv)
    noise = np.random.default_rng(0).random(len(leader.oof_target))
    chance = replace(
        leader,
        name="chance",
        oof_probability=noise,
        cv=cv,
        oof_policy=evaluate_policy(leader.oof_target, noise, spec.decision),
    )

    settled = settle_ties(rank_candidates([*results, twin], spec), spec)
    assert settled.winner.name == "twin" and leader.name in settled.tie and "twin" in settled.tie
    assert [r.name for r in settled.results[1:]] == [
        r.name for r in rank_candidates([*results, twin], spec).results if r.name != "twin"
    ]

    kept = settle_ties(rank_candidates([*results, chance], spec), spec)
    assert kept.winner.name == leader.name and "chance" not in kept.tie

    by_roc = spec.model_copy(update={"promotion": spec.promotion.model_copy(update={"metric": "roc_auc"})})
    assert settle_ties(rank_candidates([*results, twin], by_roc), by_roc).tie == ""

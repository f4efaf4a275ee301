"""The tournament: no leakage from the holdout, reproducible, and cost-tuned thresholds that never lose."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tollgate.config.spec import NumericColumn
from tollgate.core import tournament
from tollgate.core.clean import clean_frame
from tollgate.core.explain import explain_records, shap_values
from tollgate.core.features import build_pipeline, feature_names, features_and_target
from tollgate.core.metrics import expected_cost
from tollgate.core.split import split_rows
from tollgate.core.threshold import GRID, cost_curve, tune_threshold
from tollgate.core.tournament import (
    FINAL_FIT_MAX_ROWS,
    evaluate_candidate,
    fit_winner,
    make_estimator,
    rank_candidates,
)

CANARY = "leakage_canary"


@pytest.fixture(scope="module")
def small_spec(churn_spec):
    """The churn spec with 3 folds, for speed."""
    return churn_spec.model_copy(update={"tournament": churn_spec.tournament.model_copy(update={"cv_folds": 3})})


@pytest.fixture(scope="module")
def split(churn_batch, small_spec):
    frame = clean_frame(churn_batch, small_spec).frame
    return split_rows(frame, small_spec, None)


@pytest.fixture(scope="module")
def results(split, small_spec):
    return [evaluate_candidate(candidate, split, small_spec) for candidate in small_spec.tournament.candidates]


def test_no_holdout_row_reaches_fit_or_threshold(split, small_spec):
    """Check with a canary column, huge on holdout rows only, that no fit ever saw a holdout row,
    and that the threshold and CV results ignore the holdout's labels entirely."""
    numeric = {**small_spec.columns.numeric, CANARY: NumericColumn(min=0, max=1e12)}
    spec = small_spec.model_copy(update={"columns": small_spec.columns.model_copy(update={"numeric": numeric})})
    split.train[CANARY] = 0.0
    split.holdout[CANARY] = 1e9
    try:
        candidate = next(c for c in spec.tournament.candidates if c.estimator == "lightgbm")
        result = evaluate_candidate(candidate, split, spec)
        numeric_steps = result.pipeline.named_steps["columns"].named_transformers_["numeric"]
        position = list(numeric_steps.feature_names_in_).index(CANARY)
        assert numeric_steps.named_steps["impute"].statistics_[position] == 0.0
        assert numeric_steps.named_steps["scale"].mean_[position] == 0.0
        assert len(result.oof_probability) == len(split.train)  # small data: CV uses every training row

        shuffled = split.holdout.copy()
        shuffled[spec.target.column] = np.random.default_rng(0).permutation(shuffled[spec.target.column].to_numpy())
        again = evaluate_candidate(candidate, type(split)(split.train, shuffled, split.strategy, None), spec)
        assert again.oof_threshold == result.oof_threshold
        assert {k: v for k, v in again.cv.items() if k != "fit_seconds"} == {
            k: v for k, v in result.cv.items() if k != "fit_seconds"
        }
        np.testing.assert_array_equal(again.oof_probability, result.oof_probability)
    finally:
        split.train.drop(columns=[CANARY], inplace=True)
        split.holdout.drop(columns=[CANARY], inplace=True)


def test_same_seed_same_leaderboard(split, small_spec, results):
    """Check that the same input and seed give an identical leaderboard."""
    again = [evaluate_candidate(candidate, split, small_spec) for candidate in small_spec.tournament.candidates]

    def scores(board):
        return [{k: v for k, v in row.items() if k != "fit_seconds"} for row in board.rows()]

    assert scores(rank_candidates(results, small_spec)) == scores(rank_candidates(again, small_spec))


def test_the_policy_respects_capacity_and_break_even(results, small_spec):
    """Check every candidate's policy acts on at most capacity, never below break-even, and that the
    single-record threshold is the larger of break-even and the capacity quantile of its OOF scores."""
    policy = small_spec.decision
    for result in results:
        for outcome in (result.oof_policy, result.holdout_policy):
            assert 0 < outcome.acted <= outcome.capacity == int(policy.capacity.as_share * outcome.rows)
            assert outcome.cutoff >= policy.break_even
            assert outcome.net_value == outcome.caught * policy.saved_value - outcome.acted * policy.action_cost
        quantile = np.quantile(result.oof_probability, 1 - policy.capacity.as_share)
        assert result.oof_threshold == pytest.approx(max(policy.break_even, quantile), abs=1e-6)
        assert result.holdout_metrics["policy"]["acted"] == result.holdout_policy.acted


@pytest.mark.parametrize("seed", range(5))
def test_tune_threshold_is_the_minimum_of_the_cost_curve(seed, churn_spec):
    """Check the vectorised cost curve against a direct count, and that tuning picks its minimum."""
    rng = np.random.default_rng(seed)
    target = rng.random(400) < 0.25
    probability = np.clip(target * 0.3 + rng.random(400) * 0.7, 0, 1)
    curve = cost_curve(target, probability, churn_spec.costs)
    for threshold in (0.0, 0.2, 0.5, 0.77, 1.0):
        index = int(np.flatnonzero(threshold == GRID)[0])
        assert curve[index] == expected_cost(target, probability, threshold, churn_spec.costs)
    choice = tune_threshold(target, probability, churn_spec.costs)
    assert choice.expected_cost == curve.min() <= choice.cost_at_0_5


def test_selection_follows_the_rule(results, small_spec, security_spec):
    """Check the winner has the highest out-of-fold net value at capacity and the ranking is sorted by it;
    a spec ranking on expected cost sorts by that instead."""
    board = rank_candidates(results, small_spec)
    values = [result.oof_policy.net_value for result in board.results]
    assert values == sorted(values, reverse=True) and "out-of-fold" in board.rule and "capacity" in board.rule
    by_cost = small_spec.model_copy(
        update={"promotion": small_spec.promotion.model_copy(update={"metric": "expected_cost"})}
    )
    costs = [result.oof_expected_cost for result in rank_candidates(results, by_cost).results]
    assert costs == sorted(costs)


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "lightgbm", "hist_gradient_boosting"])
def test_explain_one_record_for_every_candidate_type(results, split, small_spec, estimator):
    """Check top-k signed contributions with readable names, for every model type that can win."""
    result = next(r for r in results if r.estimator == estimator)
    features = split.holdout[small_spec.input_columns]
    explanation = explain_records(result.pipeline, features.head(2), top_k=4, background=features)
    names = set(feature_names(result.pipeline))
    for record in explanation:
        assert len(record) == 4 and {item["feature"] for item in record} <= names
        magnitudes = [abs(item["contribution"]) for item in record]
        assert magnitudes == sorted(magnitudes, reverse=True) and magnitudes[0] > 0


def test_lightgbm_contributions_add_up_to_its_score(results, split, small_spec):
    """Check SHAP additivity for LightGBM: contributions + expected value = the raw log-odds score."""
    result = next(r for r in results if r.estimator == "lightgbm")
    features = split.holdout[small_spec.input_columns].head(20)
    contributions = shap_values(result.pipeline, features)
    encoded = result.pipeline[:-1].transform(features)
    full = result.pipeline[-1].booster_.predict(encoded, pred_contrib=True)
    raw = result.pipeline[-1].booster_.predict(encoded, raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=1) + full[:, -1], raw, rtol=1e-6, atol=1e-8)


def test_large_training_splits_cross_validate_on_a_shared_sample(split, small_spec, monkeypatch):
    """Check that above cv_max_rows CV uses a stratified sample (the same for every candidate) and each candidate is
    fitted on it; then only the winner is refitted, on every training row (a forest on its capped sample), and
    scored on the holdout again, and the leaderboard says how many rows each model saw."""
    spec = small_spec.model_copy(update={"tournament": small_spec.tournament.model_copy(update={"cv_max_rows": 1000})})
    train = split.train.sample(1500, replace=True, random_state=0).reset_index(drop=True)
    train[spec.id_column] = [f"id-{i}" for i in range(len(train))]
    big = type(split)(train, split.holdout, split.strategy, None)
    results = [
        evaluate_candidate(c, big, spec)
        for c in spec.tournament.candidates
        if c.estimator in ("logistic_regression", "lightgbm", "random_forest")
    ]
    assert [len(r.oof_target) for r in results] == [1000, 1000, 1000]
    np.testing.assert_array_equal(results[0].oof_target, results[1].oof_target)
    assert abs(results[0].oof_target.mean() - train[spec.target.column].mean()) < 0.01

    def seen(result):
        numeric = result.pipeline.named_steps["columns"].named_transformers_["numeric"]
        return numeric.named_steps["scale"].n_samples_seen_

    assert [seen(r) for r in results] == [1000, 1000, 1000]
    assert all(r.fit_note.startswith("fitted on 1,000 of 1,500 training rows") for r in results)
    board = rank_candidates(results, spec)
    final = fit_winner(board, big, spec)
    assert seen(final.winner) == 1500 and final.winner.fit_rows == 1500 and final.winner.fit_note is None
    assert final.rows()[0]["fit_rows"] == 1500 and [row["fit_rows"] for row in final.rows()[1:]] == [1000, 1000]
    assert final.winner.name == board.winner.name and final.results[1:] == board.results[1:]
    assert final.winner.oof_threshold == board.winner.oof_threshold  # tuned on out-of-fold predictions only
    assert final.winner.holdout_metrics != board.winner.holdout_metrics
    assert fit_winner(final, big, spec) is final  # already fitted on every row

    forest = next(r for r in results if r.estimator == "random_forest")
    monkeypatch.setitem(FINAL_FIT_MAX_ROWS, "random_forest", 1200)
    capped = fit_winner(type(board)([forest], board.rule), big, spec).winner
    assert seen(capped) == 1200 and capped.fit_note == (
        "fitted on 1,200 of 1,500 training rows (random_forest is capped at 1,200 rows)"
    )
    assert capped.pipeline[-1].n_jobs == 1  # the packaged model scores on one thread


@pytest.mark.parametrize("estimator", ["logistic_regression", "hist_gradient_boosting", "lightgbm"])
def test_a_final_fit_on_very_many_rows_encodes_in_chunks_and_fits_on_every_row(
    split, small_spec, monkeypatch, estimator
):
    """Check that beyond ENCODING_SAMPLE_ROWS the final fit learns its encoding on a sample, encodes every row in
    chunks and fits the estimator on all of them: the same model as the estimator fitted on the whole encoded
    matrix at once, and the leaderboard note says how the encoding was learnt."""
    import tollgate.core.tournament as tournament

    monkeypatch.setattr(tournament, "ENCODING_SAMPLE_ROWS", 300)
    monkeypatch.setattr(tournament, "ENCODING_CHUNK_ROWS", 128)
    candidate = next(c for c in small_spec.tournament.candidates if c.estimator == estimator)
    features, target = features_and_target(split.train, small_spec)
    assert len(features) > 300
    fitted = tournament.fit_many_rows(
        build_pipeline(small_spec, make_estimator(candidate, 0)), features, target, small_spec.split.seed
    )
    scale = fitted.named_steps["columns"].named_transformers_["numeric"].named_steps["scale"]
    assert scale.n_samples_seen_ == 300  # the encoding's statistics: the sample
    dtype = np.float32 if estimator == "lightgbm" else np.float64  # the others would copy float32 into float64
    assert tournament._needs_float64(fitted[-1]) == (dtype == np.float64)
    direct = make_estimator(candidate, 0).fit(fitted[:-1].transform(features).astype(dtype), target)
    holdout, _ = features_and_target(split.holdout, small_spec)
    np.testing.assert_allclose(
        fitted.predict_proba(holdout)[:, 1], direct.predict_proba(fitted[:-1].transform(holdout))[:, 1], atol=1e-4
    )
    fields = dict.fromkeys(tournament.CandidateResult.__dataclass_fields__)
    result = tournament.CandidateResult(**{**fields, "estimator": estimator, "fit_rows": 400, "training_rows": 400})
    assert result.fit_note == "its encoding (medians, scales, categories) learnt on a 300-row sample"


def test_a_final_fit_encoded_in_chunks_is_the_pipelines_own_fit_up_to_the_sample_size(split, small_spec, monkeypatch):
    """Check that between ENCODING_CHUNK_ROWS and ENCODING_SAMPLE_ROWS the chunked fit (encoding fitted on every
    row, float64) gives exactly the model Pipeline.fit gives: the same probabilities to the bit."""
    import tollgate.core.tournament as tournament

    monkeypatch.setattr(tournament, "ENCODING_CHUNK_ROWS", 128)
    features, target = features_and_target(split.train, small_spec)
    for candidate in small_spec.tournament.candidates:
        chunked = tournament.fit_many_rows(
            build_pipeline(small_spec, make_estimator(candidate, 0)), features, target, small_spec.split.seed
        )
        whole = build_pipeline(small_spec, make_estimator(candidate, 0)).fit(features, target)
        holdout, _ = features_and_target(split.holdout, small_spec)
        np.testing.assert_array_equal(
            chunked.predict_proba(holdout), whole.predict_proba(holdout), err_msg=candidate.name
        )


def test_no_more_candidates_cross_validate_at_once_than_there_are_cores(small_spec, monkeypatch):
    """Candidates mapped on more threads than cores take a core each in turn (more would only queue for the
    interpreter), and every one of them still runs."""
    lock, running, most = threading.Lock(), [0], [0]

    def evaluate(candidate, split, spec):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return candidate.name

    monkeypatch.setattr(tournament, "_evaluate", evaluate)
    candidates = small_spec.tournament.candidates * 3
    with ThreadPoolExecutor(len(candidates)) as pool:
        done = list(pool.map(lambda candidate: evaluate_candidate(candidate, None, small_spec), candidates))
    assert done == [candidate.name for candidate in candidates]
    assert most[0] == min(os.cpu_count() or 1, len(candidates))

"""Model tournament: every candidate is the same preprocessing Pipeline + its estimator.

Each candidate (one task run of the tournament stage, so a Dask runner can spread them over machines):
stratified k-fold cross-validation on the training split only (on a seeded stratified sample of
``cv_max_rows`` when the split is larger), giving per-fold metrics and out-of-fold probabilities; then one
fit on those rows and one scoring of the holdout. Selection and threshold tuning read only the out-of-fold
predictions. When cross-validation used a sample, only the winner is fitted again, on every training row
(``fit_winner``; estimators that do not scale to that many rows on a sample of ``FINAL_FIT_MAX_ROWS``), and
scored on the holdout again: the leaderboard says how many rows each model was fitted on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from tollgate.config.spec import ENSEMBLE_NAME, Candidate, DatasetSpec
from tollgate.core.features import build_pipeline, declared_width, features_and_target, positive_probability
from tollgate.core.logodds import LogOddsAverage
from tollgate.core.metrics import calibration_error, classification_metrics, decision_report, expected_cost
from tollgate.core.partitioned import fit_partitioned, plan_partitions
from tollgate.core.policy import PolicyOutcome, evaluate_policy, serving_threshold
from tollgate.core.promotion import paired_bootstrap
from tollgate.core.split import TrainHoldout
from tollgate.core.threshold import ThresholdChoice, tune_threshold

ESTIMATORS: dict[str, type[BaseEstimator]] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "lightgbm": LGBMClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}
THREADED = frozenset({"random_forest", "lightgbm"})
"""Estimators whose ``n_jobs`` are threads, given the machine's cores for the final fit. (LogisticRegression's
are processes, one per class beyond two: for a binary target they start a process pool, copy the rows into it and
fit one model there.)"""
FINAL_FIT_MAX_ROWS: dict[str, int] = {"random_forest": 1_000_000, ENSEMBLE_NAME: 3_000_000}
"""Rows an estimator's final fit may use, beyond which it is fitted on a seeded stratified sample: a forest grows
every tree to full depth over its rows (time and memory grow with the rows, and its model file too); an ensemble
fits each member in turn on one matrix, in float64 when a member needs it (HistGradientBoosting): on the window's
15M rows that matrix was 6.26 GiB, the process 14.7 GiB, and the three fits still running after 9 minutes."""
CV_METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "brier", "fit_seconds")


def make_estimator(candidate: Candidate, seed: int) -> BaseEstimator:
    """The candidate's estimator with the shared seed; one thread each, candidates run side by side."""
    estimator_class = ESTIMATORS[candidate.estimator]
    params = dict(candidate.params)
    defaults = estimator_class().get_params()
    if "random_state" in defaults:
        params.setdefault("random_state", seed)
    if "n_jobs" in defaults:
        params.setdefault("n_jobs", 1)
    if candidate.estimator == "lightgbm":
        params.setdefault("verbose", -1)
    return estimator_class(**params)


def make_model(result: CandidateResult, seed: int) -> BaseEstimator:
    """A fresh, unfitted estimator for a leaderboard entry: its candidate's, or its members' log-odds average."""
    if result.members:
        return LogOddsAverage([make_estimator(member, seed) for member in result.members])
    return make_estimator(Candidate(name=result.name, estimator=result.estimator, params=result.params), seed)


@dataclass(frozen=True)
class CandidateResult:
    name: str
    estimator: str
    params: dict[str, Any]
    fold_metrics: list[dict[str, Any]]
    oof_target: np.ndarray
    oof_probability: np.ndarray
    oof_threshold: float
    oof_expected_cost: float
    oof_cost_at_0_5: float
    pipeline: Pipeline
    holdout_probability: np.ndarray
    holdout_metrics: dict[str, Any]
    fit_seconds: float
    cv: dict[str, dict[str, float]] = field(default_factory=dict)
    oof_policy: PolicyOutcome | None = None  # the decision policy on out-of-fold predictions
    holdout_policy: PolicyOutcome | None = None  # … and on the holdout
    fit_rows: int = 0  # the rows ``pipeline`` was fitted on
    training_rows: int = 0  # the training split's rows
    fit_how: str = ""  # how the final fit ran when not in this process (lightgbm.dask over the workers)
    search: Any = None  # the hyperparameter search that chose ``params`` (tollgate.core.search.SearchTrace), if any
    members: tuple[Candidate, ...] = ()  # an ensemble's members (``params`` then names theirs as member.param)

    @property
    def fit_note(self) -> str | None:
        """Why the model was not fitted on every training row, or how it was fitted on very many; else None."""
        notes = []
        if self.members:
            notes.append("the average log-odds of " + ", ".join(member.name for member in self.members))
        if self.fit_rows < self.training_rows:
            limit = FINAL_FIT_MAX_ROWS.get(self.estimator)
            reason = (
                f"{self.estimator} is capped at {limit:,} rows"
                if limit is not None and self.fit_rows == limit
                else "the cross-validation sample; only the winner is refitted on every row"
            )
            notes.append(f"fitted on {self.fit_rows:,} of {self.training_rows:,} training rows ({reason})")
        if self.fit_rows > ENCODING_SAMPLE_ROWS:
            notes.append(f"its encoding (medians, scales, categories) learnt on a {ENCODING_SAMPLE_ROWS:,}-row sample")
        if self.fit_how:
            notes.append(f"fitted with {self.fit_how}")
        return "; ".join(notes) or None

    def leaderboard_row(self) -> dict[str, Any]:
        policy = (
            {
                "oof_net_value": round(self.oof_policy.net_value, 2),
                "test_net_value": round(self.holdout_policy.net_value, 2),
                "test_precision_at_capacity": round(self.holdout_policy.precision, 4),
            }
            if self.oof_policy is not None and self.holdout_policy is not None
            else {}
        )
        return {
            "model": self.name,
            "cv_roc_auc": round(self.cv["roc_auc"]["mean"], 4),
            "cv_roc_auc_std": round(self.cv["roc_auc"]["std"], 4),
            "cv_pr_auc": round(self.cv["pr_auc"]["mean"], 4),
            "cv_brier": round(self.cv["brier"]["mean"], 4),
            "oof_threshold": self.oof_threshold,
            "oof_expected_cost": round(self.oof_expected_cost, 2),
            **policy,
            "test_roc_auc": round(self.holdout_metrics["roc_auc"], 4),
            "test_pr_auc": round(self.holdout_metrics["pr_auc"], 4),
            "fit_rows": self.fit_rows,
            "fit_seconds": round(self.fit_seconds, 2),
        }


def cv_rows(target: pd.Series, spec: DatasetSpec) -> np.ndarray:
    """Positions of the training rows cross-validation uses: all, or a seeded stratified sample.

    Every candidate gets the same rows, so the comparison stays fair; the winner's final fit uses all rows.
    """
    return sample_rows(target, spec.tournament.cv_max_rows, spec.split.seed)


def sample_rows(target: pd.Series, limit: int, seed: int) -> np.ndarray:
    """Positions of at most ``limit`` rows, a seeded sample stratified on ``target`` (all rows when fewer)."""
    positions = np.arange(len(target))
    if len(target) <= limit:
        return positions
    sample, _ = train_test_split(positions, train_size=limit, stratify=target, random_state=seed)
    return np.sort(sample)


def cv_folds(target: pd.Series, spec: DatasetSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """The shared splitter: every candidate sees exactly the same folds."""
    splitter = StratifiedKFold(n_splits=spec.tournament.cv_folds, shuffle=True, random_state=spec.split.seed)
    return list(splitter.split(np.zeros(len(target)), target))


CANDIDATE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)
"""Candidates cross-validated at once in this process: one a core. More side by side only queue for the
interpreter between their compiled steps (the forest's trees, HistGradientBoosting's splits): on Telco's 5,634
rows four at once took 4.7 s of wall and 7.6 s of CPU, two at a time 3.8 s and 6.6 s (the two longest first; which two
go first is the order the runner starts them in: 4.5–5.0 s in the flow), one after another 6.3 s."""


def evaluate_candidate(candidate: Candidate, split: TrainHoldout, spec: DatasetSpec) -> CandidateResult:
    """k-fold CV on the training split, then one fit on all of it and one look at the holdout.

    Candidates run side by side, a core each (``CANDIDATE_SLOTS``), so each gets its share of the cores for OpenMP
    (LightGBM, HistGradientBoosting): oversubscribed OpenMP threads spin and slow every candidate down.
    """
    with CANDIDATE_SLOTS, candidate_threads(spec):
        return _evaluate(candidate, split, spec)


def candidate_threads(spec: DatasetSpec) -> threadpool_limits:
    """OpenMP threads for one of the candidates running side by side: its share of the cores."""
    share = max(1, (os.cpu_count() or 1) // len(spec.tournament.candidates))
    return threadpool_limits(limits=share, user_api="openmp")


def _evaluate(candidate: Candidate, split: TrainHoldout, spec: DatasetSpec) -> CandidateResult:
    features, target, training_rows = cv_sample(split, spec)
    oof, fold_metrics = cross_validate(candidate, features, target, spec)
    return candidate_result(candidate, oof, fold_metrics, features, target, training_rows, split, spec)


def cv_sample(split: TrainHoldout, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.Series, int]:
    """The rows every candidate cross-validates on (inputs, target) and how many training rows there are."""
    all_target = split.train[spec.target.column]
    features, target = _training_rows(split, cv_rows(all_target, spec), spec)
    return features, target, len(all_target)


FoldCallback = Callable[[int, np.ndarray, np.ndarray], None]
"""Called after each fold with the fold's number and the out-of-fold rows (positions) and probabilities so far."""


def cross_validate(
    candidate: Candidate,
    features: pd.DataFrame,
    target: pd.Series,
    spec: DatasetSpec,
    after_fold: FoldCallback | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Out-of-fold probabilities and each fold's metrics on the shared folds; ``after_fold`` may stop it by raising
    (a search prunes a trial that is doing worse than the others)."""
    oof = np.zeros(len(target))
    seen = np.zeros(len(target), dtype=bool)
    fold_metrics = []
    for fold, (fit_rows, check_rows) in enumerate(cv_folds(target, spec), start=1):
        pipeline = build_pipeline(spec, make_estimator(candidate, spec.split.seed))
        started = time.perf_counter()
        pipeline.fit(features.iloc[fit_rows], target.iloc[fit_rows])
        seconds = time.perf_counter() - started
        oof[check_rows] = pipeline.predict_proba(features.iloc[check_rows])[:, 1]
        seen[check_rows] = True
        fold_metrics.append(
            {"fold": fold, **classification_metrics(target.iloc[check_rows], oof[check_rows]), "fit_seconds": seconds}
        )
        if after_fold is not None:
            after_fold(fold, np.flatnonzero(seen), oof[seen])
    return oof, fold_metrics


def candidate_result(
    candidate: Candidate,
    oof: np.ndarray,
    fold_metrics: list[dict[str, Any]],
    features: pd.DataFrame,
    target: pd.Series,
    training_rows: int,
    split: TrainHoldout,
    spec: DatasetSpec,
    search: Any = None,
) -> CandidateResult:
    """A cross-validated candidate's result: threshold and policy from its out-of-fold predictions, one fit on the
    cross-validation rows, one look at the holdout."""
    started = time.perf_counter()
    fitted = build_pipeline(spec, make_estimator(candidate, spec.split.seed)).fit(features, target)
    entry = Entry(candidate.name, candidate.estimator, dict(candidate.params), fitted, time.perf_counter() - started)
    return scored_result(entry, oof, fold_metrics, target.to_numpy(), training_rows, split, spec, search=search)


@dataclass(frozen=True)
class Entry:
    """What a leaderboard entry is: its name, estimator, parameters, and its model fitted on the CV rows."""

    name: str
    estimator: str
    params: dict[str, Any]
    pipeline: Pipeline
    fit_seconds: float
    members: tuple[Candidate, ...] = ()


def scored_result(
    entry: Entry,
    oof: np.ndarray,
    fold_metrics: list[dict[str, Any]],
    target: np.ndarray,
    training_rows: int,
    split: TrainHoldout,
    spec: DatasetSpec,
    search: Any = None,
) -> CandidateResult:
    """A leaderboard entry's result from its out-of-fold predictions (threshold, policy, CV summary) and its fitted
    model's look at the holdout."""
    tuned = oof_operating_point(target, oof, spec)
    threshold, oof_cost = tuned.threshold, tuned.expected_cost
    oof_policy = evaluate_policy(target, oof, spec.decision) if spec.decision is not None else None
    cv = {
        metric: {
            "mean": float(np.mean([f[metric] for f in fold_metrics])),
            "std": float(np.std([f[metric] for f in fold_metrics])),
        }
        for metric in CV_METRICS
    }
    result = CandidateResult(
        name=entry.name,
        estimator=entry.estimator,
        params=entry.params,
        fold_metrics=fold_metrics,
        oof_target=target,
        oof_probability=oof,
        oof_threshold=threshold,
        oof_expected_cost=oof_cost,
        oof_cost_at_0_5=tuned.cost_at_0_5,
        pipeline=entry.pipeline,
        fit_seconds=entry.fit_seconds,
        cv=cv,
        oof_policy=oof_policy,
        fit_rows=len(target),
        training_rows=training_rows,
        search=search,
        members=entry.members,
        **_holdout_scores(entry.pipeline, threshold, split, spec),
    )
    economics = (
        f"OOF net value ${oof_policy.net_value:,.0f} acting on {oof_policy.acted:,}"
        if oof_policy is not None
        else f"OOF cost ${oof_cost:,.0f} at {threshold:.3f}"
    )
    print(
        f"{entry.name}: CV ROC-AUC {cv['roc_auc']['mean']:.4f} ± {cv['roc_auc']['std']:.4f}, "
        f"{economics}, holdout ROC-AUC {result.holdout_metrics['roc_auc']:.4f}"
        + (f" ({result.fit_note})" if result.fit_note else "")
    )
    return result


def oof_operating_point(target: ArrayLike, oof: np.ndarray, spec: DatasetSpec) -> ThresholdChoice:
    """The threshold for one record at a time, from out-of-fold predictions, with its expected cost (and the cost
    at 0.5): with a decision policy the break-even probability, or the capacity quantile if higher; else the
    cost-minimising threshold on the grid."""
    tuned = tune_threshold(target, oof, spec.costs)
    if spec.decision is None:
        return tuned
    threshold = serving_threshold(oof, spec.decision)
    return replace(tuned, threshold=threshold, expected_cost=expected_cost(target, oof, threshold, spec.costs))


def _training_rows(split: TrainHoldout, rows: np.ndarray, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.Series]:
    """The model's inputs and target on these training rows (positions), the rows taken before the columns so that
    a sample copies only itself (candidates run side by side on 15M-row splits)."""
    return features_and_target(split.train.iloc[rows] if len(rows) < len(split.train) else split.train, spec)


def _holdout_scores(pipeline: Pipeline, threshold: float, split: TrainHoldout, spec: DatasetSpec) -> dict[str, Any]:
    """A fitted model's holdout fields of ``CandidateResult``: probabilities, metrics and policy outcome."""
    holdout_features, holdout_target = features_and_target(split.holdout, spec)
    probability = positive_probability(pipeline, holdout_features)
    metrics = {
        **classification_metrics(holdout_target, probability),
        "calibration_error": calibration_error(holdout_target, probability),
        "at_0_5": decision_report(holdout_target, probability, 0.5, spec.costs),
        "at_threshold": decision_report(holdout_target, probability, threshold, spec.costs),
    }
    policy = None
    if spec.decision is not None:
        policy = evaluate_policy(holdout_target, probability, spec.decision)
        metrics["policy"] = asdict(policy)
    return {"holdout_probability": probability, "holdout_metrics": metrics, "holdout_policy": policy}


def fit_winner(
    leaderboard: Leaderboard, split: TrainHoldout, spec: DatasetSpec, partition_rows: int | None = None
) -> Leaderboard:
    """The leaderboard with its winner fitted on every training row (or on ``FINAL_FIT_MAX_ROWS`` of them) and
    scored on the holdout again; unchanged when cross-validation already used every row. The fit has the
    machine's cores to itself; on a Dask cluster a LightGBM winner too large for one worker is fitted over the
    workers (``partitioned``; ``partition_rows`` forces it above that many rows)."""
    winner = leaderboard.winner
    all_target = split.train[spec.target.column]
    limit = FINAL_FIT_MAX_ROWS.get(winner.estimator, len(all_target))
    rows = sample_rows(all_target, limit, spec.split.seed)
    if len(rows) <= winner.fit_rows:
        return leaderboard
    estimator = make_model(winner, spec.split.seed)
    _threads_of(estimator, winner, os.cpu_count() or 1)
    print(f"{winner.name}: final fit on {len(rows):,} of {len(all_target):,} training rows")
    started = time.perf_counter()
    features, target = _training_rows(split, rows, spec)
    pipeline, how = build_pipeline(spec, estimator), ""
    plan = plan_partitions(winner.estimator, len(features), declared_width(spec), partition_rows)
    if plan is None:
        fitted = fit_many_rows(pipeline, features, target, spec.split.seed)
    else:
        fit_encoding(pipeline, features, target, spec.split.seed)
        print(
            f"{winner.name}: final fit with lightgbm.dask over {plan.partitions} partitions on "
            f"{len(plan.workers)} workers ({plan.reason})"
        )
        fitted = fit_partitioned(pipeline, features, target, plan, estimator.get_params())
        how = f"lightgbm.dask over {plan.partitions} partitions on {len(plan.workers)} Dask workers"
    fit_seconds = time.perf_counter() - started
    _threads_of(estimator, winner, 1)  # the packaged model scores as the candidate's did
    final = replace(
        winner,
        pipeline=fitted,
        fit_seconds=fit_seconds,
        fit_rows=len(rows),
        fit_how=how,
        **_holdout_scores(fitted, winner.oof_threshold, split, spec),
    )
    print(
        f"{winner.name}: holdout ROC-AUC {final.holdout_metrics['roc_auc']:.4f} after the final fit "
        f"({final.fit_seconds:.1f} s)" + (f"; {final.fit_note}" if final.fit_note else "")
    )
    return replace(leaderboard, results=[final, *leaderboard.results[1:]])


def _threads_of(model: BaseEstimator, result: CandidateResult, threads: int) -> None:
    """Give ``threads`` to the estimators (an ensemble's members) whose ``n_jobs`` are threads and whose spec sets
    none: the machine's cores for the final fit, one again for scoring."""
    if isinstance(model, LogOddsAverage):
        parts = list(zip(getattr(model, "members_", model.members), result.members, strict=True))
    else:
        parts = [(model, Candidate(name=result.name, estimator=result.estimator, params=result.params))]
    for estimator, candidate in parts:
        if candidate.estimator in THREADED and "n_jobs" not in candidate.params:
            estimator.set_params(n_jobs=threads)


ENCODING_SAMPLE_ROWS = 250_000
"""Above this many rows a final fit's encoding steps learn their statistics on a sample this large: fitting them
encodes every row it is given at once, pieces and whole (800,000 churn rows: 0.8 GiB in passing, more than the
estimator's own fit on the chunk-encoded matrix)."""
ENCODING_CHUNK_ROWS = 100_000
"""Above this many rows a final fit encodes its rows in chunks of this many (an encoded chunk passes through the
ColumnTransformer's pieces before it is copied in: at 250,000 rows the 1M-row run's final fit peaked 0.1 GiB
higher)."""


def fit_encoding(pipeline: Pipeline, features: pd.DataFrame, target: pd.Series, seed: int) -> bool:
    """Fit ``pipeline``'s encoding steps: on every row up to ``ENCODING_SAMPLE_ROWS``, else on a seeded stratified
    sample of that many (True then)."""
    if len(features) <= ENCODING_SAMPLE_ROWS:
        pipeline[:-1].fit(features, target)
        return False
    rows = sample_rows(target, ENCODING_SAMPLE_ROWS, seed)
    pipeline[:-1].fit(features.iloc[rows], target.iloc[rows])
    return True


def fit_many_rows(pipeline: Pipeline, features: pd.DataFrame, target: pd.Series, seed: int) -> Pipeline:
    """``pipeline.fit(features, target)`` without ever holding the rows encoded more than once: above
    ``ENCODING_CHUNK_ROWS`` rows the encoding steps are fitted first, every row is encoded in chunks into one matrix,
    and the estimator is fitted on it. Up to ``ENCODING_SAMPLE_ROWS`` rows that is the model ``Pipeline.fit`` gives
    (the encoding fitted on every row, the matrix in float64); beyond, the encoding learns its statistics (medians,
    scales, categories) on a seeded stratified sample of that many rows and the matrix is float32 (float64 for
    HistGradientBoosting and lbfgs LogisticRegression, which would copy anything else): 15M rows encoded whole, as
    the Pipeline does, are tens of gigabytes of dense floats in passing."""
    if len(features) <= ENCODING_CHUNK_ROWS:
        return pipeline.fit(features, target)
    encode, estimator = pipeline[:-1], pipeline[-1]
    sampled = fit_encoding(pipeline, features, target, seed)
    width = encode.transform(features.iloc[:1]).shape[1]
    exact = not sampled or _needs_float64(estimator)
    encoded = np.empty((len(features), width), dtype=np.float64 if exact else np.float32)
    for start in range(0, len(features), ENCODING_CHUNK_ROWS):
        encoded[start : start + ENCODING_CHUNK_ROWS] = encode.transform(
            features.iloc[start : start + ENCODING_CHUNK_ROWS]
        )
    print(
        f"final fit: {len(features):,} rows encoded in chunks ({encoded.nbytes / 2**30:.2f} GiB of {encoded.dtype}; "
        + (f"encoding statistics from a {ENCODING_SAMPLE_ROWS:,}-row sample)" if sampled else "encoding fitted on all)")
    )
    estimator.fit(encoded, target.to_numpy())
    return pipeline


def _needs_float64(estimator: BaseEstimator) -> bool:
    """Whether ``estimator`` would copy a float32 matrix into float64 before fitting (HistGradientBoosting always;
    LogisticRegression with the lbfgs solver)."""
    if isinstance(estimator, HistGradientBoostingClassifier):
        return True
    if isinstance(estimator, LogOddsAverage):
        return any(_needs_float64(member) for member in estimator.members)
    return isinstance(estimator, LogisticRegression) and estimator.get_params().get("solver") == "lbfgs"


SELECTION_RULE = {
    "net_value": "highest net value of the decision policy (records in order of expected value, none below zero, "
    "at most capacity) on out-of-fold training predictions; ties broken by higher mean CV ROC-AUC",
    "expected_cost": "lowest expected business cost at each candidate's own cost-tuned threshold on out-of-fold "
    "training predictions; ties broken by higher mean CV ROC-AUC",
    "roc_auc": "highest mean CV ROC-AUC; ties broken by lower out-of-fold expected cost",
    "pr_auc": "highest mean CV PR-AUC; ties broken by higher mean CV ROC-AUC",
}


@dataclass(frozen=True)
class Leaderboard:
    results: list[CandidateResult]
    rule: str
    tie: str = ""  # how a statistical tie at the top was settled (``settle_ties``), if there was one

    @property
    def winner(self) -> CandidateResult:
        return self.results[0]

    def rows(self) -> list[dict[str, Any]]:
        return [{"rank": rank, **result.leaderboard_row()} for rank, result in enumerate(self.results, start=1)]


def rank_candidates(results: list[CandidateResult], spec: DatasetSpec) -> Leaderboard:
    """Rank candidates by the spec's metric, on training (out-of-fold) evidence only."""
    metric = spec.promotion.metric

    def key(result: CandidateResult) -> tuple[Any, ...]:
        roc, pr = result.cv["roc_auc"]["mean"], result.cv["pr_auc"]["mean"]
        if metric == "roc_auc":
            return (-round(roc, 6), result.oof_expected_cost, result.name)
        if metric == "pr_auc":
            return (-round(pr, 6), -round(roc, 6), result.name)
        if metric == "net_value" and result.oof_policy is not None:
            return (-round(result.oof_policy.net_value, 2), -round(roc, 6), result.name)
        return (round(result.oof_expected_cost, 2), -round(roc, 6), result.name)

    return Leaderboard(results=sorted(results, key=key), rule=SELECTION_RULE[metric])


TIE_CONFIDENCE = 0.84
"""The one-sided confidence at which the leader's out-of-fold advantage over a candidate must hold for it to win
outright: about one standard error (the one-standard-error rule)."""


def settle_ties(board: Leaderboard, spec: DatasetSpec) -> Leaderboard:
    """The leaderboard with statistical ties at the top settled: for an economic rule (net value, expected cost), a
    candidate whose out-of-fold figure the leader's does not beat by one standard error (a paired bootstrap of the
    out-of-fold rows, as promotion compares models, at ``TIE_CONFIDENCE``) is tied with it, and of the tied the one
    with the higher mean CV ROC-AUC wins (the rule's own tie-break). A few records at capacity are a few hundred
    dollars: such a difference is noise the folds cannot tell from skill. The rest keep their order."""
    if spec.promotion.metric not in ("net_value", "expected_cost") or len(board.results) < 2:
        return board
    leader = board.results[0]
    loose = spec.model_copy(update={"promotion": spec.promotion.model_copy(update={"confidence": TIE_CONFIDENCE})})
    tied = [leader] + [
        other
        for other in board.results[1:]
        if paired_bootstrap(
            leader.oof_target,
            leader.oof_probability,
            other.oof_probability,
            (leader.oof_threshold, other.oof_threshold),
            loose,
        ).ci_low
        <= 0
    ]
    if len(tied) == 1:
        return board
    # ``max`` keeps the first of equals, so an exact tie on CV ROC-AUC stays with the better-ranked candidate.
    chosen = max(tied, key=lambda result: round(result.cv["roc_auc"]["mean"], 6))
    names = ", ".join(result.name for result in tied[1:])
    tie = (
        f"{names} {'are' if len(tied) > 2 else 'is'} within one standard error of the leader {leader.name} on the "
        f"out-of-fold figure (paired bootstrap, {TIE_CONFIDENCE:.0%} one-sided); of them all, {chosen.name} has "
        "the highest mean CV ROC-AUC"
    )
    return replace(board, results=[chosen, *[result for result in board.results if result is not chosen]], tie=tie)

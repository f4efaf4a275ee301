"""The ensemble candidate: the best families' log-odds averaged, judged on the same out-of-fold evidence.

The two best-ranked families that speak log-odds are its first members; the next joins only when it makes the
out-of-fold figure better (a weak family would dilute the average). Every family was cross-validated on the same
folds of the same rows, so the ensemble's out-of-fold predictions are its members' out-of-fold predictions combined:
no model is fitted again to judge it. Its model on the CV rows is the members' own fits (they share the
preprocessing, fitted on the same rows), so it costs one scoring of the holdout. It enters the leaderboard as one
more candidate and wins only when the selection rule ranks it first: when it pays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tollgate.config.spec import ENSEMBLE_NAME, Candidate, DatasetSpec
from tollgate.core.logodds import LOG_ODDS, LogOddsAverage, average_log_odds
from tollgate.core.metrics import classification_metrics
from tollgate.core.search import selection_figure
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import (
    CandidateResult,
    Entry,
    Leaderboard,
    cv_folds,
    rank_candidates,
    scored_result,
    settle_ties,
)


def rank_with_ensemble(results: list[CandidateResult], split: TrainHoldout, spec: DatasetSpec) -> Leaderboard:
    """The candidates ranked by the spec's rule, the ensemble of the best log-odds families among them, statistical
    ties at the top settled (``settle_ties``)."""
    ranked = rank_candidates(results, spec)
    ensemble = ensemble_candidate(ranked, split, spec)
    return settle_ties(ranked if ensemble is None else rank_candidates([*results, ensemble], spec), spec)


def ensemble_candidate(ranked: Leaderboard, split: TrainHoldout, spec: DatasetSpec) -> CandidateResult | None:
    """The log-odds average of the two best-ranked log-odds families, and of the next ones (up to the spec's number)
    while each makes the out-of-fold figure better; None when no ensemble is asked for or fewer than two such
    families ran."""
    wanted = spec.tournament.ensemble
    if wanted is None:
        return None
    eligible = [result for result in ranked.results if result.estimator in LOG_ODDS][: wanted.members]
    if len(eligible) < 2:
        print(f"no ensemble: it needs two of {sorted(LOG_ODDS)} among the candidates")
        return None
    target = eligible[0].oof_target
    folds = cv_folds(pd.Series(target), spec)
    members, judged = eligible[:2], _judged(eligible[:2], target, folds)
    for extra in eligible[2:]:
        bigger = _judged([*members, extra], target, folds)
        before, after = (selection_figure(target, oof, metrics, spec) for oof, metrics in (judged, bigger))
        if after <= before:
            print(f"{ENSEMBLE_NAME}: adding {extra.name} would not pay out of fold ({after:,.4f} vs {before:,.4f})")
            break
        members, judged = [*members, extra], bigger
    preprocessing = members[0].pipeline.steps[:-1]
    model = LogOddsAverage.of_fitted([member.pipeline[-1] for member in members])
    entry = Entry(
        name=ENSEMBLE_NAME,
        estimator=ENSEMBLE_NAME,
        params={f"{member.name}.{name}": value for member in members for name, value in member.params.items()},
        pipeline=Pipeline([*preprocessing, ("model", model)]),
        fit_seconds=float(np.sum([member.fit_seconds for member in members])),
        members=tuple(Candidate(name=m.name, estimator=m.estimator, params=m.params) for m in members),
    )
    print(f"{ENSEMBLE_NAME}: the average log-odds of {', '.join(member.name for member in members)}")
    oof, fold_metrics = judged
    return scored_result(entry, oof, fold_metrics, target, members[0].training_rows, split, spec)


def _judged(
    members: list[CandidateResult], target: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """An ensemble's out-of-fold probabilities (its members' combined) and each fold's metrics."""
    oof = average_log_odds([member.oof_probability for member in members])
    fold_metrics = [
        {
            "fold": fold,
            **classification_metrics(target[rows], oof[rows]),
            "fit_seconds": sum(member.fold_metrics[fold - 1]["fit_seconds"] for member in members),
        }
        for fold, (_, rows) in enumerate(folds, start=1)
    ]
    return oof, fold_metrics

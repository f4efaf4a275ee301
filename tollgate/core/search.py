"""Time-budgeted hyperparameter search for one candidate family, on the tournament's own CV folds.

Why Optuna: its TPE sampler is seeded (same seed and trials, same configurations), its pruners stop a trial
after any fold once it does worse than the trials before it at that fold, and it is a library, not a runtime:
the search runs inside the candidate's task run, with the shared folds and the spec's objective. (FLAML's tuner
brings its own cost model and estimator wrappers; we would lose the shared folds and the policy objective.)

Trials are compared on the out-of-fold log loss by default: a proper score, smooth, rewarding the calibrated
probabilities a decision policy prices. ``objective: selection`` compares them on the selection rule's own figure
(the decision policy's out-of-fold net value, or the out-of-fold expected cost, ROC-AUC, PR-AUC) and ``roc_auc`` on
the mean CV ROC-AUC; the selection rule's figure counts a few records at capacity, so the best of many trials on it
flatters itself. The candidate's own params are the first trial, so a search never leaves a family worse on its
objective than its spec's configuration. The best trial's out-of-fold predictions become the family's leaderboard
entry directly (no second cross-validation).

The budget is wall-clock seconds for the whole search; families search side by side, each within it. A fold is
begun only when a fold of the family's typical length still ends within the budget (else the trial is pruned, and
no new trial starts), so the search ends close to the budget, not a fold past it; the spec's own configuration
(the first trial) always completes. With ``trials`` set and the budget not reached the search is reproducible;
when the budget stops it, how many trials ran depends on the machine's speed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from tollgate.config.spec import Candidate, DatasetSpec, ParamRange, Search, SpecError
from tollgate.core.policy import evaluate_policy
from tollgate.core.split import TrainHoldout
from tollgate.core.threshold import tune_threshold
from tollgate.core.tournament import (
    ESTIMATORS,
    CandidateResult,
    candidate_result,
    candidate_threads,
    cross_validate,
    cv_sample,
    evaluate_candidate,
    oof_operating_point,
)

if TYPE_CHECKING:
    import optuna

DEFAULT_SPACES: dict[str, dict[str, ParamRange]] = {
    "logistic_regression": {"C": ParamRange(low=1e-3, high=100, log=True)},
    "random_forest": {
        "n_estimators": ParamRange(low=100, high=500, integer=True, log=True),
        "min_samples_leaf": ParamRange(low=1, high=50, integer=True, log=True),
        "max_features": ParamRange(low=0.1, high=1.0),
        "max_samples": ParamRange(low=0.3, high=1.0),
    },
    "lightgbm": {
        "n_estimators": ParamRange(low=100, high=1000, integer=True, log=True),
        "learning_rate": ParamRange(low=0.01, high=0.2, log=True),
        "num_leaves": ParamRange(low=4, high=128, integer=True, log=True),
        "min_child_samples": ParamRange(low=5, high=200, integer=True, log=True),
        "subsample": ParamRange(low=0.5, high=1.0),
        "subsample_freq": ParamRange(choices=[1]),
        "colsample_bytree": ParamRange(low=0.3, high=1.0),
        "reg_lambda": ParamRange(low=1e-3, high=10, log=True),
    },
    "hist_gradient_boosting": {
        "max_iter": ParamRange(low=100, high=600, integer=True, log=True),
        "learning_rate": ParamRange(low=0.01, high=0.3, log=True),
        "max_leaf_nodes": ParamRange(low=4, high=128, integer=True, log=True),
        "min_samples_leaf": ParamRange(low=5, high=200, integer=True, log=True),
        "l2_regularization": ParamRange(low=1e-3, high=10, log=True),
    },
}
"""Sensible ranges per estimator, used for a candidate whose spec gives no space."""
PRUNE_AFTER_TRIALS = 5
"""Trials completed before pruning starts comparing (fewer: every trial runs its folds)."""


@dataclass(frozen=True)
class Trial:
    number: int
    state: str  # complete | pruned | failed
    value: float | None  # the objective (higher is better), None if pruned or failed
    seconds: float  # since the search started, when the trial ended
    params: dict[str, Any]


@dataclass(frozen=True)
class SearchTrace:
    """One family's search: every trial, the best, and what stopped it."""

    objective: str
    budget_seconds: float
    trials: list[Trial] = field(default_factory=list)
    best_number: int = 0
    stopped_by: str = ""  # "the trial limit" | "the time budget"

    @property
    def best_value(self) -> float | None:
        return next((trial.value for trial in self.trials if trial.number == self.best_number), None)

    def best_so_far(self) -> list[tuple[float, float]]:
        """(seconds, best objective so far) at every completed trial: the search's curve."""
        curve, best = [], -math.inf
        for trial in self.trials:
            if trial.value is not None:
                best = max(best, trial.value)
                curve.append((trial.seconds, best))
        return curve

    def summary_row(self, name: str) -> dict[str, Any]:
        states = [trial.state for trial in self.trials]
        return {
            "model": name,
            "trials": len(self.trials),
            "pruned": states.count("pruned"),
            "failed": states.count("failed"),
            "objective": self.objective,
            "first (spec's params)": _rounded(self.trials[0].value) if self.trials else None,
            "best": _rounded(self.best_value),
            "best trial": self.best_number,
            "stopped by": self.stopped_by,
        }


class FoldClock:
    """How long this family's folds take (each fold's fit and scoring), to start only a fold the budget has time
    for: a fold begun at the deadline would run past it by a whole fold (tens of seconds on 60,000 rows)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._since = time.monotonic()

    def start(self) -> None:
        self._since = time.monotonic()

    def lap(self) -> None:
        now = time.monotonic()
        self.seconds.append(now - self._since)
        self._since = now

    def one_more_fits(self, deadline: float) -> bool:
        """Whether a fold of the typical length (the median so far) would end before ``deadline``."""
        typical = float(np.median(self.seconds)) if self.seconds else 0.0
        return time.monotonic() + typical <= deadline


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def space_for(candidate: Candidate, search: Search) -> dict[str, ParamRange]:
    """The candidate's search space (the spec's, else its estimator's default), its names checked against the
    estimator's parameters."""
    space = search.spaces.get(candidate.name, DEFAULT_SPACES.get(candidate.estimator, {}))
    known = set(ESTIMATORS[candidate.estimator]().get_params())
    unknown = sorted(set(space) - known)
    if unknown:
        raise SpecError(
            f"tournament.search.spaces.{candidate.name}: {unknown} are not {candidate.estimator} parameters "
            f"(it has {sorted(known)})"
        )
    return space


def _search_objective(spec: DatasetSpec) -> str:
    """What trials are compared on (``tournament.search.objective``); the selection rule's figure without a search."""
    return spec.tournament.search.objective if spec.tournament.search is not None else "selection"


def objective_name(spec: DatasetSpec) -> str:
    objective = _search_objective(spec)
    if objective != "selection":
        return {"log_loss": "minus OOF log loss", "roc_auc": "CV ROC-AUC"}[objective]
    metric = spec.promotion.metric
    if metric == "net_value" and spec.decision is not None:
        return "OOF net value ($)"
    return {"expected_cost": "minus OOF expected cost ($)", "roc_auc": "CV ROC-AUC", "pr_auc": "CV PR-AUC"}.get(
        metric, "minus OOF expected cost ($)"
    )


def objective_value(
    target: np.ndarray, oof: np.ndarray, fold_metrics: list[dict[str, Any]], spec: DatasetSpec
) -> float:
    """The search's figure on out-of-fold predictions, higher is better: minus log loss, mean CV ROC-AUC, or the
    selection rule's figure."""
    objective = _search_objective(spec)
    if objective == "log_loss":
        return -float(log_loss(target, oof, labels=[0, 1]))
    if objective == "roc_auc":
        return float(np.mean([fold["roc_auc"] for fold in fold_metrics]))
    return selection_figure(target, oof, fold_metrics, spec)


def selection_figure(
    target: np.ndarray, oof: np.ndarray, fold_metrics: list[dict[str, Any]], spec: DatasetSpec
) -> float:
    """The selection rule's figure on out-of-fold predictions, higher is better (``rank_candidates``'s order)."""
    metric = spec.promotion.metric
    if metric == "net_value" and spec.decision is not None:
        return float(evaluate_policy(target, oof, spec.decision).net_value)
    if metric in ("roc_auc", "pr_auc"):
        return float(np.mean([fold[metric] for fold in fold_metrics]))
    return -oof_operating_point(target, oof, spec).expected_cost


def _suggest(trial: optuna.Trial, name: str, bounds: ParamRange) -> Any:
    if bounds.choices is not None:
        return trial.suggest_categorical(name, bounds.choices)
    assert bounds.low is not None and bounds.high is not None
    if bounds.integer:
        return trial.suggest_int(name, int(bounds.low), int(bounds.high), log=bounds.log)
    return trial.suggest_float(name, bounds.low, bounds.high, log=bounds.log)


def entrant(candidate: Candidate, split: TrainHoldout, spec: DatasetSpec) -> CandidateResult:
    """A candidate's leaderboard entry: its family searched within the budget when the spec asks for a search,
    else its own configuration cross-validated."""
    if spec.tournament.search is None:
        return evaluate_candidate(candidate, split, spec)
    with candidate_threads(spec):
        return search_candidate(candidate, split, spec)


def search_candidate(candidate: Candidate, split: TrainHoldout, spec: DatasetSpec) -> CandidateResult:
    """The family's best configuration within the budget, as its leaderboard entry (see the module's docstring)."""
    import optuna  # only a search needs it (0.1 s to import, with its storages)

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per improvement is printed instead
    search = spec.tournament.search
    assert search is not None
    space = space_for(candidate, search)
    features, target, training_rows = cv_sample(split, spec)
    y = target.to_numpy()
    started = time.monotonic()
    deadline = started + search.budget_seconds
    objective = objective_name(spec)
    best: dict[str, Any] = {}

    folds = FoldClock()

    def run_trial(trial: optuna.Trial) -> float:
        if trial.number > 0 and not folds.one_more_fits(deadline):
            study.stop()  # no new trials; this one is recorded as pruned
            raise optuna.TrialPruned("the budget left is shorter than a fold")
        if trial.number == 0:  # the spec's own configuration, exactly (estimator defaults where it sets none)
            params = dict(candidate.params)
        else:
            params = {**candidate.params, **{name: _suggest(trial, name, bounds) for name, bounds in space.items()}}
        tried = Candidate(name=candidate.name, estimator=candidate.estimator, params=params)
        folds.start()

        def after_fold(fold: int, rows: np.ndarray, probability: np.ndarray) -> None:
            folds.lap()
            # The spec's own configuration always completes: it is the baseline every trial is compared with.
            if trial.number > 0 and fold < spec.tournament.cv_folds and not folds.one_more_fits(deadline):
                raise optuna.TrialPruned(f"the budget left after fold {fold} is shorter than a fold")
            if search.pruning and fold < spec.tournament.cv_folds:
                trial.report(_fold_figure(y[rows], probability, spec), fold)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        oof, fold_metrics = cross_validate(tried, features, target, spec, after_fold)
        value = objective_value(y, oof, fold_metrics, spec)
        if not best or value > best["value"]:
            best.update(value=value, candidate=tried, oof=oof, fold_metrics=fold_metrics, number=trial.number)
            print(
                f"{candidate.name}: trial {trial.number} is the best so far, {objective} {value:,.4f} "
                f"({time.monotonic() - started:.0f} s of {search.budget_seconds:g})"
            )
        return value

    sampler = optuna.samplers.TPESampler(seed=spec.split.seed)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=1)
        if search.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(
        run_trial,
        n_trials=search.trials,
        timeout=search.budget_seconds,
        catch=(ValueError, ArithmeticError),  # a configuration the estimator refuses is a failed trial
    )
    if not best:
        raise RuntimeError(
            f"{candidate.name}: no trial of the search completed within {search.budget_seconds:g} s; raise "
            "tournament.search.budget_seconds"
        )
    done = study.get_trials(deepcopy=False)  # ``study.trials`` deep-copies every trial on each access
    began = done[0].datetime_start
    trials = [
        Trial(
            number=trial.number,
            state=trial.state.name.lower(),
            value=trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
            seconds=(trial.datetime_complete - began).total_seconds()
            if trial.datetime_complete is not None and began is not None
            else 0.0,
            params=trial.params if trial.number else dict(candidate.params),
        )
        for trial in done
    ]
    limit_reached = search.trials is not None and len(done) >= search.trials
    trace = SearchTrace(
        objective=objective,
        budget_seconds=search.budget_seconds,
        trials=trials,
        best_number=best["number"],
        stopped_by="the trial limit" if limit_reached else "the time budget",
    )
    pruned = sum(trial.state == "pruned" for trial in trials)
    print(
        f"{candidate.name}: search done, {len(trials)} trials ({pruned} pruned) in "
        f"{time.monotonic() - started:.0f} s, stopped by {trace.stopped_by}; best trial {best['number']}: "
        + ", ".join(
            f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in best["candidate"].params.items()
        )
    )
    return candidate_result(
        best["candidate"], best["oof"], best["fold_metrics"], features, target, training_rows, split, spec, trace
    )


def _fold_figure(y: np.ndarray, probability: np.ndarray, spec: DatasetSpec) -> float:
    """The objective on the folds done so far, per row (comparable between trials at the same fold)."""
    objective = _search_objective(spec)
    if objective == "log_loss":
        return -float(log_loss(y, probability, labels=[0, 1]))
    if objective == "roc_auc" and 0 < y.sum() < len(y):
        return float(roc_auc_score(y, probability))
    if spec.promotion.metric == "net_value" and spec.decision is not None:
        return float(evaluate_policy(y, probability, spec.decision).net_value) / max(len(y), 1)
    if spec.promotion.metric in ("roc_auc", "pr_auc") and 0 < y.sum() < len(y):
        scorer = roc_auc_score if spec.promotion.metric == "roc_auc" else average_precision_score
        return float(scorer(y, probability))
    return -float(tune_threshold(y, probability, spec.costs).expected_cost) / max(len(y), 1)


def search_table(results: list[CandidateResult]) -> pd.DataFrame:
    """One row per searched family: trials, pruned, the spec's configuration's figure and the best."""
    return pd.DataFrame([result.search.summary_row(result.name) for result in results if result.search is not None])

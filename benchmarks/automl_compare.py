"""The searched tournament against FLAML's AutoML: the same split, the same wall-clock budget, side by side.

    make bench-automl BUDGET=120   # installs the bench extra (FLAML) first; or, with it installed:
    .venv/bin/python benchmarks/automl_compare.py [--budget 120] [--case telco] [--case nsl_kdd]

Each case reads, cleans and splits the data exactly as the retrain flow does (the Telco export: a stratified 80/20
split, seed 42; NSL-KDD: KDDTrain+ trains, KDDTest+ is the holdout). Then, one after the other on this machine:

- **tollgate**: the spec's four candidate families, each searched by ``tournament.search`` (Optuna TPE, pruning) on
  the shared CV folds within the budget, side by side as in the flow; the winner chosen by the spec's rule (the
  decision policy's out-of-fold net value for churn, out-of-fold expected cost for NSL-KDD) and refitted on every
  training row;
- **FLAML**: ``AutoML.fit(task="classification", metric="roc_auc", time_budget=budget, seed=seed)`` on the same
  training rows (the spec's inputs and derived features, categoricals as pandas categories).

Printed: wall time, holdout ROC-AUC and PR-AUC of each, and for a spec with a decision policy the policy's net value
on the holdout with each model's probabilities (the same capacity, the same ordering rule), beside acting on nobody,
on a random draw of the same size, and on everyone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tollgate.config.settings import Settings  # noqa: E402
from tollgate.config.spec import DatasetSpec, Search, resolve_spec  # noqa: E402
from tollgate.core.clean import clean_frame  # noqa: E402
from tollgate.core.ensemble import rank_with_ensemble  # noqa: E402
from tollgate.core.features import SpecFeatures, features_and_target  # noqa: E402
from tollgate.core.ingest import read_input  # noqa: E402
from tollgate.core.policy import evaluate_policy  # noqa: E402
from tollgate.core.search import entrant  # noqa: E402
from tollgate.core.split import TrainHoldout, split_rows  # noqa: E402
from tollgate.core.tournament import fit_winner  # noqa: E402

CASES = {
    "telco": ("churn", str(ROOT.parent / "shared" / "data" / "telco_churn.csv")),
    "nsl_kdd": ("nsl_kdd", None),
}


def prepared(dataset: str, data: str | None) -> tuple[DatasetSpec, TrainHoldout]:
    settings = Settings()
    spec = resolve_spec(dataset, None, settings)
    raw = read_input(spec, settings, data, None, None)
    return spec, split_rows(clean_frame(raw.frame, spec).frame, spec, raw.holdout_month)


def tollgate_search(spec: DatasetSpec, split: TrainHoldout, budget: float) -> tuple[np.ndarray, str, float]:
    """The searched tournament's winner, refitted on every training row: its holdout probabilities and name."""
    tournament = spec.tournament.model_copy(update={"search": Search(budget_seconds=budget)})
    searching = spec.model_copy(update={"tournament": tournament})
    started = time.perf_counter()
    with ThreadPoolExecutor(len(tournament.candidates)) as pool:  # side by side, as the flow's task runner
        results = list(pool.map(lambda c: entrant(c, split, searching), tournament.candidates))
    leaderboard = fit_winner(rank_with_ensemble(results, split, searching), split, searching)
    return leaderboard.winner.holdout_probability, leaderboard.winner.name, time.perf_counter() - started


def model_inputs(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The spec's inputs and derived features, text as pandas categories: what FLAML is given."""
    features, _ = features_and_target(frame, spec)
    derived = SpecFeatures(spec.features).fit(features).transform(features)
    for column in derived.columns:
        if not pd.api.types.is_numeric_dtype(derived[column]):
            derived[column] = derived[column].astype("string").astype("category")
    return derived


def flaml_automl(spec: DatasetSpec, split: TrainHoldout, budget: float) -> tuple[np.ndarray, str, float]:
    from flaml import AutoML

    train, holdout = model_inputs(split.train, spec), model_inputs(split.holdout, spec)
    categories = {column: train[column].cat.categories for column in train.select_dtypes("category")}
    for column, known in categories.items():  # the holdout coded as the training rows are
        holdout[column] = pd.Categorical(holdout[column].astype("string"), categories=known)
    target = features_and_target(split.train, spec)[1].to_numpy()
    automl = AutoML()
    started = time.perf_counter()
    automl.fit(
        train,
        target,
        task="classification",
        metric="roc_auc",
        time_budget=budget,
        seed=spec.split.seed,
        n_jobs=os.cpu_count() or 1,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    return automl.predict_proba(holdout)[:, 1], f"{automl.best_estimator} ({automl.best_config})", seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=120.0, help="wall-clock seconds for each side (≤ 300)")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: both")
    args = parser.parse_args()
    for case in args.case or sorted(CASES, reverse=True):
        dataset, data = CASES[case]
        spec, split = prepared(dataset, data)
        y = features_and_target(split.holdout, spec)[1].to_numpy().astype(int)
        print(
            f"\n{case}: {len(split.train):,} training rows, {len(split.holdout):,} holdout rows "
            f"({int(y.sum()):,} positive); budget {args.budget:g} s each",
            flush=True,
        )
        rows = []
        for tool, run in (("tollgate", tollgate_search), ("FLAML", flaml_automl)):
            probability, model, seconds = run(spec, split, args.budget)
            row = {
                "tool": tool,
                "wall_s": round(seconds, 1),
                "holdout_roc_auc": round(float(roc_auc_score(y, probability)), 4),
                "holdout_pr_auc": round(float(average_precision_score(y, probability)), 4),
            }
            if spec.decision is not None:
                outcome = evaluate_policy(y, probability, spec.decision)
                row |= {
                    "acted": outcome.acted,
                    "net_value": round(outcome.net_value),
                    "random_same_size": round(outcome.net_value_random),
                    "everyone": round(outcome.net_value_everyone),
                    "nobody": 0,
                }
            rows.append({**row, "model": model[:90]})
            print(f"  {tool}: {row}", flush=True)
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The training script a user would otherwise write for the same tournament: pandas, scikit-learn and LightGBM,
no orchestration, no quality gate, no cleaning report, no explanations, no report, no packaging.

    .venv/bin/python benchmarks/baselines/plain_training.py ../shared/data/telco_churn.csv

The same four candidates as the flow (the spec's, built by the same functions, so the models are the same), the
same seeded stratified 80/20 split and 5 shared folds (both cores: the folds run two at a time), then the
winner's final fit and its holdout ROC-AUC. Prints one JSON line (benchmarks/compare_training.py reads it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tollgate.config.spec import load_spec  # noqa: E402
from tollgate.core.features import build_pipeline  # noqa: E402
from tollgate.core.tournament import make_estimator  # noqa: E402

SPEC_PATH = Path(__file__).resolve().parents[2] / "data" / "specs" / "churn.yaml"


def main(path: str) -> dict:
    spec = load_spec(SPEC_PATH)
    seed = spec.split.seed
    frame = pd.read_csv(path).rename(columns=spec.rename)
    for column in spec.columns.numeric:  # TotalCharges is text in the export (blank for new customers)
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    target = (frame[spec.target.column].astype(str).str.strip() == str(spec.target.positive)).astype(int)
    features = frame[spec.input_columns]
    train, holdout, train_target, holdout_target = train_test_split(
        features, target, test_size=spec.split.holdout_fraction, random_state=seed, stratify=target
    )
    folds = StratifiedKFold(n_splits=spec.tournament.cv_folds, shuffle=True, random_state=seed)
    leaderboard = {}
    for candidate in spec.tournament.candidates:
        pipeline = build_pipeline(spec, make_estimator(candidate, seed))
        scores = cross_val_score(pipeline, train, train_target, cv=folds, scoring="roc_auc", n_jobs=2)
        leaderboard[candidate.name] = round(float(scores.mean()), 4)
    winner = max(leaderboard, key=lambda name: leaderboard[name])
    candidate = next(c for c in spec.tournament.candidates if c.name == winner)
    model = build_pipeline(spec, make_estimator(candidate, seed)).fit(train, train_target)
    holdout_auc = roc_auc_score(holdout_target, model.predict_proba(holdout)[:, 1])
    return {
        "leaderboard_cv_roc_auc": leaderboard,
        "winner": winner,
        "holdout_roc_auc": round(float(holdout_auc), 4),
        "seconds": round(time.perf_counter() - STARTED, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))

"""Explanations: global importance and per-record SHAP contributions with readable feature names.

``explain_records`` is what the service will call for ``/explain``: it returns each record's top-k
signed contributions (in log-odds, the model's own scale) for any candidate type that can win.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tasks.features import feature_names
from tasks.spec import DatasetSpec
from tasks.tournament import Leaderboard, features_and_target

IMPORTANCE_ROWS = 20_000
SHAP_ROWS = 2_000


def shap_values(pipeline: Pipeline, frame: pd.DataFrame, background: pd.DataFrame | None = None) -> np.ndarray:
    """SHAP contributions per encoded feature, in log-odds (the positive class)."""
    encoded = np.asarray(pipeline[:-1].transform(frame), dtype=float)
    model = pipeline[-1]
    if isinstance(model, LGBMClassifier):
        # LightGBM's pred_contrib is exact TreeSHAP; the last column is the expected value.
        return model.booster_.predict(encoded, pred_contrib=True)[:, :-1]
    import shap

    if isinstance(model, LogisticRegression):
        reference = encoded if background is None else np.asarray(pipeline[:-1].transform(background), dtype=float)
        return np.asarray(shap.LinearExplainer(model, reference).shap_values(encoded))
    values = shap.TreeExplainer(model).shap_values(encoded, check_additivity=False)
    values = np.asarray(values)
    return values[..., 1] if values.ndim == 3 else values


def explain_records(pipeline: Pipeline, frame: pd.DataFrame, top_k: int = 5,
                    background: pd.DataFrame | None = None) -> list[list[dict]]:
    """Each record's top-k features by absolute contribution, signed (+ pushes towards positive)."""
    names = feature_names(pipeline)
    values = shap_values(pipeline, frame, background)
    explanations = []
    for row in values:
        order = np.argsort(-np.abs(row))[:top_k]
        explanations.append([{"feature": names[i], "contribution": round(float(row[i]), 4)} for i in order])
    return explanations


@dataclass
class Explanation:
    permutation: pd.DataFrame  # input column → mean/std drop in ROC-AUC on the holdout
    shap_mean_abs: pd.DataFrame  # encoded feature → mean |SHAP|
    examples: list[dict]  # a few holdout records with their top contributions


@task(name="explain", cache_policy=NO_CACHE)
def explain(leaderboard: Leaderboard, train: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec) -> Explanation:
    """Permutation importance on the holdout and SHAP summaries for the winner."""
    pipeline = leaderboard.winner.pipeline
    features, target = features_and_target(holdout, spec)
    if len(features) > IMPORTANCE_ROWS:
        sample = features.sample(IMPORTANCE_ROWS, random_state=spec.split.seed).index
        features, target = features.loc[sample], target.loc[sample]
    result = permutation_importance(pipeline, features, target, scoring="roc_auc", n_repeats=5,
                                    random_state=spec.split.seed, n_jobs=1)
    permutation = (pd.DataFrame({"feature": features.columns, "importance": result.importances_mean,
                                 "std": result.importances_std})
                   .sort_values("importance", ascending=False).reset_index(drop=True))

    background = train.sample(min(500, len(train)), random_state=spec.split.seed)[spec.input_columns]
    shap_rows = features.head(SHAP_ROWS)
    values = shap_values(pipeline, shap_rows, background)
    shap_mean_abs = (pd.DataFrame({"feature": feature_names(pipeline), "mean_abs_shap": np.abs(values).mean(axis=0)})
                     .sort_values("mean_abs_shap", ascending=False).reset_index(drop=True))
    probability = pipeline.predict_proba(shap_rows.head(3))[:, 1]
    examples = [{"probability": round(float(p), 4), "top_contributions": contributions}
                for p, contributions in zip(probability, explain_records(pipeline, shap_rows.head(3), 5, background))]
    print("top drivers: " + ", ".join(shap_mean_abs["feature"].head(5)))
    return Explanation(permutation=permutation, shap_mean_abs=shap_mean_abs, examples=examples)

"""Explanations: global importance and per-record SHAP contributions with readable feature names.

``explain_records`` is what the service will call for ``/explain``: it returns each record's top-k
signed contributions (in log-odds, the model's own scale) for any candidate type that can win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tollgate.config.spec import DatasetSpec
from tollgate.core.features import feature_names, features_and_target
from tollgate.core.logodds import LogOddsAverage

IMPORTANCE_ROWS = 2_000
SHAP_ROWS = 2_000


class Explainer:
    """SHAP contributions per encoded feature, in log-odds (the positive class), for a fitted Pipeline.

    Built once per model (the service keeps one), since shap's explainers are costly to set up.
    ``background`` (raw input rows) is the reference a linear model's contributions are taken against.
    """

    def __init__(self, pipeline: Pipeline, background: pd.DataFrame | None = None):
        self.pipeline = pipeline
        self.names = feature_names(pipeline)
        model = pipeline[-1]
        models = model.members_ if isinstance(model, LogOddsAverage) else [model]
        reference = None
        if any(isinstance(member, LogisticRegression) for member in models):
            if background is None:
                raise ValueError("a linear model's explanation needs background rows")
            reference = np.asarray(pipeline[:-1].transform(background), dtype=float)
        self._explainers = [_ModelExplainer(member, reference) for member in models]

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's contributions; for an ensemble, the mean of its members' (its log-odds are their mean)."""
        encoded = np.asarray(self.pipeline[:-1].transform(frame), dtype=float)
        values = [explainer.values(encoded) for explainer in self._explainers]
        return values[0] if len(values) == 1 else np.asarray(np.sum(values, axis=0) / len(values))

    def top_contributions(self, frame: pd.DataFrame, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Each record's top-k features by absolute contribution, signed (+ pushes towards positive)."""
        explanations = []
        for row in self.values(frame):
            order = np.argsort(-np.abs(row))[:top_k]
            explanations.append([{"feature": self.names[i], "contribution": round(float(row[i]), 4)} for i in order])
        return explanations


class _ModelExplainer:
    """One fitted estimator's SHAP contributions on encoded rows."""

    def __init__(self, model: Any, reference: np.ndarray | None):
        self.model = model
        self._explainer = None
        if isinstance(model, LGBMClassifier):
            return  # LightGBM's pred_contrib is exact TreeSHAP, no explainer needed
        import shap  # seconds to import, and only linear and other tree models need it

        if isinstance(model, LogisticRegression):
            self._explainer = shap.LinearExplainer(model, reference)
        else:
            self._explainer = shap.TreeExplainer(model)

    def values(self, encoded: np.ndarray) -> np.ndarray:
        if self._explainer is None:
            return np.asarray(self.model.booster_.predict(encoded, pred_contrib=True))[:, :-1]
        if isinstance(self.model, LogisticRegression):
            return np.asarray(self._explainer.shap_values(encoded))
        values = np.asarray(self._explainer.shap_values(encoded, check_additivity=False))
        return values[..., 1] if values.ndim == 3 else values


def shap_values(pipeline: Pipeline, frame: pd.DataFrame, background: pd.DataFrame | None = None) -> np.ndarray:
    """SHAP contributions per encoded feature (a linear model without background uses ``frame``)."""
    return Explainer(pipeline, frame if background is None else background).values(frame)


def explain_records(
    pipeline: Pipeline, frame: pd.DataFrame, top_k: int = 5, background: pd.DataFrame | None = None
) -> list[list[dict[str, Any]]]:
    """Each record's top-k signed contributions (see ``Explainer.top_contributions``)."""
    return Explainer(pipeline, frame if background is None else background).top_contributions(frame, top_k)


@dataclass(frozen=True)
class GlobalExplanation:
    """What drives the winner overall, and a few examples: the explain stage's result."""

    permutation: pd.DataFrame  # input column → mean/std drop in ROC-AUC on the holdout
    shap_mean_abs: pd.DataFrame  # encoded feature → mean |SHAP|
    examples: list[dict[str, Any]]  # a few holdout records with their top contributions
    background: pd.DataFrame  # training rows a linear model's contributions are taken against


def explain_model(
    pipeline: Pipeline, train: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec
) -> GlobalExplanation:
    """Permutation importance on the holdout and SHAP summaries for a fitted model."""
    features, target = features_and_target(holdout, spec)
    if len(features) > IMPORTANCE_ROWS:
        sample = features.sample(IMPORTANCE_ROWS, random_state=spec.split.seed).index
        features, target = features.loc[sample], target.loc[sample]
    result = permutation_importance(
        pipeline, features, target, scoring="roc_auc", n_repeats=3, random_state=spec.split.seed, n_jobs=1
    )
    permutation = (
        pd.DataFrame(
            {"feature": features.columns, "importance": result.importances_mean, "std": result.importances_std}
        )
        .sort_values("importance", ascending=False)
        .reset_index(drop=True)
    )

    background = train.sample(min(500, len(train)), random_state=spec.split.seed)[spec.input_columns]
    shap_rows = features.head(SHAP_ROWS)
    explainer = Explainer(pipeline, background)
    values = explainer.values(shap_rows)
    shap_mean_abs = (
        pd.DataFrame({"feature": feature_names(pipeline), "mean_abs_shap": np.abs(values).mean(axis=0)})
        .sort_values("mean_abs_shap", ascending=False)
        .reset_index(drop=True)
    )
    probability = pipeline.predict_proba(shap_rows.head(3))[:, 1]
    examples = [
        {"probability": round(float(p), 4), "top_contributions": contributions}
        for p, contributions in zip(probability, explainer.top_contributions(shap_rows.head(3), 5), strict=False)
    ]
    return GlobalExplanation(
        permutation=permutation, shap_mean_abs=shap_mean_abs, examples=examples, background=background
    )

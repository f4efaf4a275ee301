"""Fit the spec's model pipeline on training rows and measure it once on the holdout."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from lightgbm import LGBMClassifier
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline

from tasks.features import build_pipeline
from tasks.spec import DatasetSpec


@dataclass
class HoldoutMetrics:
    roc_auc: float
    pr_auc: float
    positive_rate: float
    rows: int


def make_estimator(spec: DatasetSpec) -> LGBMClassifier:
    params = {"random_state": spec.split.seed, "n_jobs": 2, "verbose": -1, **spec.model.params}
    return LGBMClassifier(**params)


def features_and_target(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.Series]:
    """The model sees exactly the spec's input columns: no id, no lineage columns, no target."""
    return frame[spec.input_columns], frame[spec.target.column]


@task(name="train", cache_policy=NO_CACHE)
def train_model(train: pd.DataFrame, spec: DatasetSpec) -> Pipeline:
    """One LightGBM pipeline fitted on the training rows only."""
    features, target = features_and_target(train, spec)
    pipeline = build_pipeline(spec, make_estimator(spec))
    pipeline.fit(features, target)
    return pipeline


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_holdout(pipeline: Pipeline, holdout: pd.DataFrame, spec: DatasetSpec) -> HoldoutMetrics:
    features, target = features_and_target(holdout, spec)
    probability = pipeline.predict_proba(features)[:, 1]
    metrics = HoldoutMetrics(
        roc_auc=round(float(roc_auc_score(target, probability)), 4),
        pr_auc=round(float(average_precision_score(target, probability)), 4),
        positive_rate=round(float(target.mean()), 4),
        rows=len(target),
    )
    print(f"holdout: ROC-AUC {metrics.roc_auc:.4f}, PR-AUC {metrics.pr_auc:.4f} on {metrics.rows:,} rows")
    return metrics

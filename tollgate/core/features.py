"""Feature engineering as scikit-learn transformers, driven by the spec's ``features`` list.

The model is one Pipeline: ``SpecFeatures`` (derived columns) → ColumnTransformer (numeric:
median impute → scale; categorical: 'Unknown' → one-hot, unknown categories ignored) → estimator.
Everything learned is learned in ``fit`` on training rows only.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tollgate.config.spec import (
    BucketFeature,
    CountEqualFeature,
    DatasetSpec,
    FeatureDef,
    LogFeature,
    OutsideRangeFeature,
    RatioFeature,
)

UNKNOWN_CATEGORY = "Unknown"
Frame = pd.DataFrame | Mapping[str, np.ndarray]
"""Columns by name: a DataFrame, or the service's single record as arrays."""


def _numbers(frame: Frame, column: str) -> np.ndarray:
    values = frame[column]
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values  # already parsed (the service's cleaned records)
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=float)


def derive(frame: Frame, feature: FeatureDef) -> np.ndarray:
    """The values of one derived feature; missing inputs give missing outputs.

    ``frame`` is a DataFrame or a mapping of column → array (the service's single records).
    """
    if isinstance(feature, RatioFeature):
        denominator = sum(_numbers(frame, c) for c in feature.denominator) + feature.offset
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = _numbers(frame, feature.numerator) / denominator
        return np.where(np.isfinite(ratio), ratio, np.nan)
    if isinstance(feature, LogFeature):
        values = _numbers(frame, feature.column)
        logs: np.ndarray = np.log1p(np.where(values >= 0, values, np.nan))
        return logs
    if isinstance(feature, CountEqualFeature):
        counts: np.ndarray = np.sum(
            [np.asarray(frame[c] == feature.value, dtype=float) for c in feature.columns], axis=0
        )
        return counts
    if isinstance(feature, BucketFeature):
        values = _numbers(frame, feature.column)
        index = np.searchsorted(np.asarray(feature.edges), values, side="right") - 1
        labels = np.asarray(feature.labels, dtype=object)
        return np.where(np.isnan(values) | (index < 0), np.nan, labels[np.clip(index, 0, len(labels) - 1)])
    if isinstance(feature, OutsideRangeFeature):
        values = _numbers(frame, feature.column)
        outside = ((values < feature.low) | (values >= feature.high)).astype(float)
        return np.where(np.isnan(values), np.nan, outside)
    raise TypeError(f"unknown feature kind: {feature!r}")


def derive_one(values: Mapping[str, Any], feature: FeatureDef) -> Any:
    """``derive`` for one record of plain Python values (numbers as floats, NaN for missing): the same
    arithmetic without building an array per value, for the service's single records."""
    if isinstance(feature, RatioFeature):
        numerator = values[feature.numerator]
        denominator = sum(values[c] for c in feature.denominator) + feature.offset
        if denominator == 0 or numerator != numerator or denominator != denominator:
            return math.nan
        ratio = numerator / denominator
        return ratio if math.isfinite(ratio) else math.nan
    if isinstance(feature, LogFeature):
        value = values[feature.column]
        return math.log1p(value) if value >= 0 else math.nan  # NaN >= 0 is False
    if isinstance(feature, CountEqualFeature):
        return float(sum(values[c] == feature.value for c in feature.columns))
    if isinstance(feature, BucketFeature):
        value = values[feature.column]
        index = bisect.bisect_right(feature.edges, value) - 1
        if value != value or index < 0:
            return math.nan
        return feature.labels[min(index, len(feature.labels) - 1)]
    if isinstance(feature, OutsideRangeFeature):
        value = values[feature.column]
        return math.nan if value != value else float(value < feature.low or value >= feature.high)
    raise TypeError(f"unknown feature kind: {feature!r}")


class SpecFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]  # sklearn is untyped
    """Adds the spec's derived columns to a DataFrame; learns nothing."""

    def __init__(self, features: Sequence[FeatureDef] = ()):
        self.features = features

    def fit(self, X: pd.DataFrame, y: object = None) -> SpecFeatures:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        derived = {feature.name: derive(X, feature) for feature in self.features}
        return X.assign(**derived)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        names = list(np.asarray(input_features if input_features is not None else self.feature_names_in_))
        return np.asarray(names + [f.name for f in self.features], dtype=object)


class AnomalyScore(BaseEstimator, TransformerMixin):  # type: ignore[misc]  # sklearn is untyped
    """Appends an IsolationForest anomaly score (higher = stranger) to the encoded features.

    Fitted on training rows only, it flags sessions unlike anything seen, including attack
    kinds that no label ever showed.
    """

    def __init__(self, n_estimators: int = 100, max_samples: int = 2048, random_state: int = 0):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: object = None) -> AnomalyScore:
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(np.asarray(X))),
            random_state=self.random_state,
            n_jobs=1,
        ).fit(X)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        values = np.asarray(X, dtype=float)
        return np.column_stack([values, -self.forest_.score_samples(values)])

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        names = (
            list(np.asarray(input_features))
            if input_features is not None
            else [f"x{i}" for i in range(self.n_features_in_)]
        )
        return np.asarray(names + ["anomaly_score"], dtype=object)


def model_columns(spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns the ColumnTransformer sees: inputs plus derived."""
    numeric = [*spec.columns.numeric, *spec.derived_numeric]
    categorical = [*spec.columns.categorical, *spec.derived_categorical]
    return numeric, categorical


def declared_width(spec: DatasetSpec) -> int:
    """The encoded matrix's width as the spec declares it: each numeric column, each categorical's known values and
    'Unknown' (values the spec does not list add columns when met)."""
    numeric, categorical = model_columns(spec)
    labels = {feature.name: feature.labels for feature in spec.features if isinstance(feature, BucketFeature)}
    known = {**spec.columns.categorical, **labels}
    return len(numeric) + sum(len(known.get(column, [])) + 1 for column in categorical)


def build_preprocessor(spec: DatasetSpec) -> Pipeline:
    numeric, categorical = model_columns(spec)
    columns = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=UNKNOWN_CATEGORY)),
                        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    steps = [("features", SpecFeatures(spec.features)), ("columns", columns)]
    if spec.tournament.anomaly_feature:
        steps.append(("anomaly", AnomalyScore(random_state=spec.split.seed)))
    return Pipeline(steps)


def build_pipeline(spec: DatasetSpec, estimator: BaseEstimator) -> Pipeline:
    """The whole model: derived features → encoding → ``estimator``, as one Pipeline."""
    preprocessor = build_preprocessor(spec)
    return Pipeline([*preprocessor.steps, ("model", estimator)])


def feature_names(pipeline: Pipeline) -> list[str]:
    """Readable names of the model's numeric inputs, e.g. 'contract_Month-to-month'."""
    return [str(name) for name in pipeline[:-1].get_feature_names_out()]


SCORING_CHUNK_ROWS = 50_000
"""Rows encoded and scored at once: a 2.5M-row holdout encoded whole is gigabytes of dense floats per model."""


def positive_probability(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """P(positive) of every row, scored ``SCORING_CHUNK_ROWS`` at a time (the same chunks wherever a model's
    probabilities are compared, so they are equal to the bit)."""
    chunks = [
        pipeline.predict_proba(features.iloc[start : start + SCORING_CHUNK_ROWS])[:, 1]
        for start in range(0, len(features), SCORING_CHUNK_ROWS)
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0)


def features_and_target(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.Series]:
    """The model sees exactly the spec's input columns: no id, no lineage columns, no target."""
    return frame[spec.input_columns], frame[spec.target.column]

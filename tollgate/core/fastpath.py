"""Fast single-record scoring: a fitted Pipeline compiled into an encoding plan.

Building a one-row DataFrame and running the sklearn Pipeline costs milliseconds per request; the
plan goes from a cleaned record (a dict) straight to the model's numeric input with the
Pipeline's own fitted statistics (medians, means, scales, one-hot categories), then to the model.
Probabilities equal ``pipeline.predict_proba`` (tests check 1e-9 on whole holdouts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest, RandomForestClassifier
from sklearn.ensemble._iforest import _average_path_length
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tollgate.config.spec import CountEqualFeature
from tollgate.core.clean import CleanColumns
from tollgate.core.features import UNKNOWN_CATEGORY, derive, derive_one
from tollgate.core.logodds import LogOddsAverage, log_odds


@dataclass
class FastScorer:
    """Scores one cleaned record (``{column: value}``) with a fitted Pipeline's exact arithmetic."""

    pipeline: Pipeline
    numeric: list[str]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical: list[str]
    offsets: list[dict[str, int]]
    width: int
    inputs_numeric: list[str]
    inputs_categorical: list[str]
    anomaly: CompiledIsolationForest | None = None
    trees: CompiledForestClassifier | CompiledBoosting | None = None

    @classmethod
    def compile(cls, pipeline: Pipeline) -> FastScorer:
        columns = pipeline.named_steps["columns"]
        numeric_steps = columns.named_transformers_["numeric"]
        categorical_steps = columns.named_transformers_["categorical"]
        numeric = list(numeric_steps.feature_names_in_)
        categorical = list(categorical_steps.feature_names_in_)
        encoder = categorical_steps.named_steps["one_hot"]
        offsets, start = [], len(numeric)
        for categories in encoder.categories_:
            offsets.append({str(value): start + i for i, value in enumerate(categories)})
            start += len(categories)
        scaler = numeric_steps.named_steps["scale"]
        derived = {feature.name for feature in pipeline.named_steps["features"].features}
        return cls(
            pipeline=pipeline,
            numeric=numeric,
            medians=numeric_steps.named_steps["impute"].statistics_.astype(float),
            means=scaler.mean_.astype(float) if scaler.with_mean else np.zeros(len(numeric)),
            scales=scaler.scale_.astype(float) if scaler.with_std else np.ones(len(numeric)),
            categorical=categorical,
            offsets=offsets,
            width=start,
            inputs_numeric=[column for column in numeric if column not in derived],
            inputs_categorical=[column for column in categorical if column not in derived],
            anomaly=(
                CompiledIsolationForest.compile(pipeline.named_steps["anomaly"].forest_)
                if "anomaly" in pipeline.named_steps
                else None
            ),
            trees=_compile_trees(pipeline[-1]),
        )

    def __post_init__(self) -> None:
        # The plan as plain Python values: one record is a few dozen float operations, not a pandas frame or a
        # one-element array per column (38 µs → about 10 µs for the churn spec).
        self._features = list(self.pipeline.named_steps["features"].features)
        self._numeric_plan = list(
            zip(self.numeric, self.medians.tolist(), self.means.tolist(), self.scales.tolist(), strict=True)
        )
        self._categorical_plan = list(zip(self.categorical, self.offsets, strict=True))
        # What follows the ColumnTransformer (the anomaly score, the model), scored on the encoded matrix.
        steps = self.pipeline.steps
        after = [name for name, _ in steps].index("columns") + 1
        self._after_encoding = Pipeline(steps[after:])
        model = self.pipeline[-1]
        members = model.members_ if isinstance(model, LogOddsAverage) else []
        self._members = [_row_log_odds(member) for member in members]

    def encode(self, record: dict[str, Any]) -> np.ndarray:
        """The model's input row for one cleaned record, without pandas: the Pipeline's arithmetic on floats."""
        values: dict[str, Any] = {column: _as_float(record.get(column)) for column in self.inputs_numeric}
        for column in self.inputs_categorical:
            values[column] = record.get(column)
        for feature in self._features:
            values[feature.name] = derive_one(values, feature)
        row = np.zeros((1, self.width))
        cells = row[0]
        for position, (column, median, mean, scale) in enumerate(self._numeric_plan):
            number = _as_float(values[column])
            cells[position] = ((median if number != number else number) - mean) / scale
        for column, offsets in self._categorical_plan:
            value = values[column]
            hot = offsets.get(UNKNOWN_CATEGORY if _is_missing(value) else str(value))
            if hot is not None:  # unknown categories encode as all zeros, as the encoder ignores them
                cells[hot] = 1.0
        if self.anomaly is not None:
            row = np.column_stack([row, [self.anomaly.score(row[0])]])
        return row

    def encode_many(self, cleaned: CleanColumns) -> np.ndarray:
        """The ColumnTransformer's output for a cleaned batch, column by column: numbers imputed and scaled as
        arrays, each category column one-hot encoded per distinct value (codes from cleaning, not strings)."""
        values = _LazyColumns(cleaned)
        for feature in self._features:
            if isinstance(feature, CountEqualFeature) and all(c in cleaned.categories for c in feature.columns):
                values[feature.name] = np.sum(
                    [cleaned.equals(c, feature.value) for c in feature.columns], axis=0, dtype=float
                )
            else:
                values[feature.name] = derive(values, feature)
        matrix = np.zeros((cleaned.rows, self.width))
        for position, (column, median, mean, scale) in enumerate(self._numeric_plan):
            numbers = np.asarray(values[column], dtype=float)
            matrix[:, position] = (np.where(np.isnan(numbers), median, numbers) - mean) / scale
        for column, offsets in self._categorical_plan:
            if column in cleaned.categories:
                codes, distinct = cleaned.categories[column]
            else:  # a derived category (a bucket's labels)
                codes, labels = pd.factorize(np.asarray(values[column], dtype=object), use_na_sentinel=True)
                distinct = labels.tolist()
            unknown = offsets.get(UNKNOWN_CATEGORY, -1)
            positions = np.array([*(unknown if _is_missing(v) else offsets.get(str(v), -1) for v in distinct), unknown])
            hot = positions[codes]  # code -1 (missing) takes the last position: 'Unknown'
            rows = np.flatnonzero(hot >= 0)  # unknown categories encode as all zeros, as the encoder ignores them
            matrix[rows, hot[rows]] = 1.0
        return matrix

    def predict_proba_many(self, cleaned: CleanColumns) -> np.ndarray:
        """Probabilities of the positive class for a cleaned batch, equal to the Pipeline's on ``clean_frame``."""
        if cleaned.rows == 0:
            return np.zeros(0)
        probabilities: np.ndarray = self._after_encoding.predict_proba(self.encode_many(cleaned))[:, 1]
        return probabilities

    @property
    def feature_names(self) -> list[str]:
        return [str(name) for name in self.pipeline[:-1].get_feature_names_out()]

    def predict_proba(self, record: dict[str, Any]) -> float:
        """Probability of the positive class for one cleaned record."""
        row = self.encode(record)
        model = self.pipeline[-1]
        if self.trees is not None:
            return self.trees.probability(row[0])
        if isinstance(model, LGBMClassifier):
            # One thread: an OpenMP team for one row costs more than the row, and meeting another request's
            # team in the same process took 0.2 ms to 5–7 ms.
            return float(model.booster_.predict(row, num_threads=1)[0])
        if isinstance(model, LogisticRegression):
            return float(expit(row @ model.coef_[0] + model.intercept_[0])[0])
        if self._members:
            return float(expit(sum(log_odds(row) for log_odds in self._members) / len(self._members)))
        return float(model.predict_proba(row)[0, 1])


class _LazyColumns(dict[str, Any]):
    """A cleaned batch's columns by name for ``derive``: a category column becomes an object array only when a
    derived feature reads it."""

    def __init__(self, cleaned: CleanColumns):
        super().__init__(cleaned.numbers)
        self.cleaned = cleaned

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = column = self.cleaned.column(name)
        return column


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _as_float(value: Any) -> float:
    if type(value) is float:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


@dataclass
class TreeArrays:
    """Many fitted trees as flat node arrays, walked together one level per step.

    A per-tree call into scikit-learn costs microseconds of Python each; walking all trees at once
    with numpy takes one step per tree level. Leaves point to themselves, so extra steps are no-ops.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    roots: np.ndarray
    depth: int
    float32: bool  # scikit-learn's trees compare float32 inputs; HistGradientBoosting compares float64

    @classmethod
    def from_sklearn(cls, trees: list[Any], feature_maps: list[Any] | None = None) -> TreeArrays:
        parts, offset, roots, depth = [], 0, [], 0
        for index, tree in enumerate(trees):
            count = tree.node_count
            nodes = np.arange(count)
            leaf = tree.children_left < 0
            feature = np.where(leaf, 0, tree.feature)
            if feature_maps is not None:
                feature = np.asarray(feature_maps[index])[feature]
            parts.append(
                (
                    feature,
                    tree.threshold,
                    np.where(leaf, nodes, tree.children_left) + offset,
                    np.where(leaf, nodes, tree.children_right) + offset,
                )
            )
            roots.append(offset)
            offset += count
            depth = max(depth, tree.max_depth)
        return cls.joined(parts, roots, depth, float32=True)

    @classmethod
    def from_hist_gradient_boosting(cls, predictors: list[Any]) -> TreeArrays:
        parts, offset, roots, depth = [], 0, [], 0
        for predictor in predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise TypeError("categorical splits are not compiled")
            indices = np.arange(len(nodes))
            leaf = nodes["is_leaf"].astype(bool)
            parts.append(
                (
                    np.where(leaf, 0, nodes["feature_idx"]),
                    nodes["num_threshold"],
                    np.where(leaf, indices, nodes["left"]) + offset,
                    np.where(leaf, indices, nodes["right"]) + offset,
                )
            )
            roots.append(offset)
            offset += len(nodes)
            depth = max(depth, int(nodes["depth"].max()))
        return cls.joined(parts, roots, depth, float32=False)

    @classmethod
    def joined(cls, parts: Sequence[tuple[Any, ...]], roots: list[int], depth: int, float32: bool) -> TreeArrays:
        """One set of flat arrays from each tree's (feature, threshold, left, right), node numbers already offset."""
        feature, threshold, left, right = (np.concatenate(column) for column in zip(*parts, strict=True))
        return cls(feature, threshold, left, right, roots=np.asarray(roots), depth=depth, float32=float32)

    def leaves(self, row: np.ndarray) -> np.ndarray:
        """The leaf each tree sends ``row`` to."""
        values = row.astype(np.float32) if self.float32 else row
        node = self.roots
        for _ in range(self.depth):  # no missing value reaches the trees: the Pipeline imputes them all
            node = np.where(values[self.feature[node]] <= self.threshold[node], self.left[node], self.right[node])
        return node


def _sequential_sum(values: np.ndarray) -> float:
    """Left-to-right sum, the order scikit-learn accumulates trees in (np.sum pairs them up)."""
    return float(np.cumsum(values)[-1])


@dataclass
class CompiledForestClassifier:
    """RandomForestClassifier.predict_proba for one row: the mean of each tree's leaf fraction."""

    trees: TreeArrays
    positive_fraction: np.ndarray

    @classmethod
    def compile(cls, forest: RandomForestClassifier) -> CompiledForestClassifier:
        fractions = []
        for estimator in forest.estimators_:
            value = estimator.tree_.value[:, 0, : forest.n_classes_]
            total = value.sum(axis=1)
            fractions.append(value[:, 1] / np.where(total == 0, 1.0, total))
        return cls(TreeArrays.from_sklearn([e.tree_ for e in forest.estimators_]), np.concatenate(fractions))

    def probability(self, row: np.ndarray) -> float:
        return _sequential_sum(self.positive_fraction[self.trees.leaves(row)]) / len(self.trees.roots)


@dataclass
class CompiledBoosting:
    """HistGradientBoostingClassifier (binary) for one row: expit(baseline + leaf values)."""

    trees: TreeArrays
    leaf_value: np.ndarray
    baseline: float

    @classmethod
    def compile(cls, model: HistGradientBoostingClassifier) -> CompiledBoosting:
        if getattr(model, "_preprocessor", None) is not None or model.n_trees_per_iteration_ != 1:
            raise TypeError("only binary models on numeric inputs are compiled")
        predictors = [iteration[0] for iteration in model._predictors]
        return cls(
            TreeArrays.from_hist_gradient_boosting(predictors),
            np.concatenate([p.nodes["value"] for p in predictors]),
            float(np.ravel(model._baseline_prediction)[0]),
        )

    def probability(self, row: np.ndarray) -> float:
        return float(expit(self.raw(row)))

    def raw(self, row: np.ndarray) -> float:
        """The log-odds: the baseline plus each tree's leaf value, summed in scikit-learn's order."""
        return _sequential_sum(np.concatenate([[self.baseline], self.leaf_value[self.trees.leaves(row)]]))


@dataclass
class CompiledIsolationForest:
    """IsolationForest's anomaly score (``-score_samples``) for one row."""

    trees: TreeArrays
    path_length: np.ndarray  # depth of each node plus the expected remaining path at a leaf, minus one
    denominator: float

    @classmethod
    def compile(cls, forest: IsolationForest) -> CompiledIsolationForest:
        subsampled = forest._max_features != forest.n_features_in_
        lengths = [
            decision + average - 1.0
            for decision, average in zip(
                forest._decision_path_lengths, forest._average_path_length_per_tree, strict=False
            )
        ]
        trees = TreeArrays.from_sklearn(
            [e.tree_ for e in forest.estimators_], forest.estimators_features_ if subsampled else None
        )
        denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])[0]
        return cls(trees, np.concatenate(lengths), float(denominator))

    def score(self, row: np.ndarray) -> float:
        depth = _sequential_sum(self.path_length[self.trees.leaves(row)])
        return float(2 ** (-np.divide(depth, self.denominator))) if self.denominator != 0 else 1.0


def _row_log_odds(model: Any) -> Callable[[np.ndarray], float]:
    """One encoded row's log-odds for an ensemble member, as ``tollgate.core.logodds.log_odds`` computes it."""
    if isinstance(model, LGBMClassifier):
        booster = model.booster_
        return lambda row: float(booster.predict(row, raw_score=True, num_threads=1)[0])
    if isinstance(model, LogisticRegression):
        coef, intercept = model.coef_[0], float(model.intercept_[0])
        return lambda row: float((row @ coef)[0] + intercept)
    if isinstance(model, HistGradientBoostingClassifier):
        try:
            compiled = CompiledBoosting.compile(model)
        except TypeError:
            pass
        else:
            return lambda row: compiled.raw(row[0])
    return lambda row: float(log_odds(model, row)[0])


def _compile_trees(model: Any) -> CompiledForestClassifier | CompiledBoosting | None:
    """A compiled form of tree ensembles that scikit-learn scores tree by tree; None otherwise."""
    if isinstance(model, RandomForestClassifier) and model.n_classes_ == 2:
        return CompiledForestClassifier.compile(model)
    if isinstance(model, HistGradientBoostingClassifier):
        try:
            return CompiledBoosting.compile(model)
        except TypeError:
            return None
    return None

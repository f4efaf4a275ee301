"""The tournament's ensemble estimator: the average of its members' log-odds.

Why log-odds and not probabilities (a plain soft vote): every member's explanation is in log-odds (LightGBM's
exact TreeSHAP, HistGradientBoosting's TreeSHAP, logistic regression's linear SHAP), and an average of log-odds is
explained exactly by the average of the members' contributions. A soft vote of probabilities would need a
model-agnostic explainer, too slow for a request. So only members that speak log-odds join (``LOG_ODDS``); a random
forest's raw output is a probability and stays out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lightgbm import LGBMClassifier
from numpy.typing import ArrayLike
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone

LOG_ODDS = frozenset({"logistic_regression", "lightgbm", "hist_gradient_boosting"})
"""Estimators whose raw output, and explanation, is the positive class's log-odds."""


def log_odds(model: Any, features: ArrayLike) -> np.ndarray:
    """A fitted binary classifier's log-odds of the positive class (its raw margin, not through probabilities)."""
    if isinstance(model, LGBMClassifier):
        return np.asarray(model.predict(features, raw_score=True), dtype=float)
    return np.asarray(model.decision_function(features), dtype=float)


class LogOddsAverage(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """P(positive) = expit(mean of the members' log-odds); each member is fitted on the same encoded rows."""

    def __init__(self, members: list[Any]):
        self.members = members

    @classmethod
    def of_fitted(cls, members: list[Any]) -> LogOddsAverage:
        """An ensemble of members already fitted on the same rows (the tournament's own fits), fitted as it is."""
        ensemble = cls(members=list(members))
        ensemble.members_ = list(members)
        ensemble.classes_ = members[0].classes_
        ensemble.n_features_in_ = members[0].n_features_in_
        return ensemble

    def fit(self, features: ArrayLike, target: ArrayLike) -> LogOddsAverage:
        self.members_ = [clone(member).fit(features, target) for member in self.members]
        self.classes_ = self.members_[0].classes_
        self.n_features_in_ = self.members_[0].n_features_in_
        return self

    def decision_function(self, features: ArrayLike) -> np.ndarray:
        margins = [log_odds(member, features) for member in self.members_]
        return np.asarray(np.sum(margins, axis=0) / len(margins))

    def predict_proba(self, features: ArrayLike) -> np.ndarray:
        positive = expit(self.decision_function(features))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, features: ArrayLike) -> np.ndarray:
        return np.asarray(self.classes_[(self.decision_function(features) > 0).astype(int)])


def average_log_odds(probabilities: list[np.ndarray]) -> np.ndarray:
    """The ensemble's probability from its members' probabilities (out-of-fold predictions, where no fitted member
    is kept): their log-odds, recovered, averaged. Equal to ``LogOddsAverage`` up to rounding, except where a member
    is certain to within 1e-15 (its log-odds then clipped at ±34.5)."""
    clipped = [np.clip(p, 1e-15, 1 - 1e-15) for p in probabilities]
    margins = [np.log(p) - np.log1p(-p) for p in clipped]
    return np.asarray(expit(np.sum(margins, axis=0) / len(margins)))

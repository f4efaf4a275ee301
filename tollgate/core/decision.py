"""What the service answers for a probability: the label acted on, a risk level and what to do."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tollgate.config.spec import DatasetSpec


@dataclass(frozen=True)
class Decision:
    """What the service answers for one probability: the label, how risky, and what to do."""

    prediction: str | int
    act: bool
    risk_level: str
    recommendation: str


def decide(probability: float, threshold: float, spec: DatasetSpec) -> Decision:
    """Act at or above the cost-tuned threshold; 'High' also needs the spec's high-risk probability."""
    act = probability >= threshold
    if act and probability >= spec.serving.high_risk_probability:
        level, advice = "High", spec.serving.recommendations.high
    elif act:
        level, advice = "Medium", spec.serving.recommendations.medium
    else:
        level, advice = "Low", spec.serving.recommendations.low
    label = spec.target.positive if act else spec.target.negative
    return Decision(prediction=label, act=act, risk_level=level, recommendation=advice)


def decide_many(
    probabilities: np.ndarray, threshold: float, spec: DatasetSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``decide`` for many probabilities at once: (labels, risk levels, recommendations) arrays."""
    act = probabilities >= threshold
    high = act & (probabilities >= spec.serving.high_risk_probability)
    advice = spec.serving.recommendations
    levels = np.where(high, "High", np.where(act, "Medium", "Low")).astype(object)
    recommendations = np.where(high, advice.high, np.where(act, advice.medium, advice.low)).astype(object)
    labels = np.where(act, spec.target.positive, spec.target.negative).astype(object)
    return labels, levels, recommendations

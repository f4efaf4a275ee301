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


RISK_LEVELS = ("Low", "Medium", "High")


@dataclass(frozen=True)
class Decisions:
    """``decide`` for many probabilities, as codes: each one's risk level indexes ``RISK_LEVELS`` (0, Low, is not
    acted on), the label is ``labels[act]`` and the advice ``advice[level]``: no per-answer strings are built."""

    level: np.ndarray
    labels: tuple[str | int, str | int]  # (not acted on, acted on)
    advice: tuple[str, str, str]  # by level

    @property
    def act(self) -> np.ndarray:
        acted: np.ndarray = self.level > 0
        return acted

    def counts(self) -> dict[str, int]:
        """How many answers fall in each risk level (levels with none left out)."""
        counted = np.bincount(self.level, minlength=len(RISK_LEVELS)).tolist()
        return {level: count for level, count in zip(RISK_LEVELS, counted, strict=True) if count}


def decide_many(probabilities: np.ndarray, threshold: float, spec: DatasetSpec) -> Decisions:
    """``decide`` for many probabilities at once."""
    act = probabilities >= threshold
    high = act & (probabilities >= spec.serving.high_risk_probability)
    advice = spec.serving.recommendations
    return Decisions(
        level=act.astype(np.intp) + high,
        labels=(spec.target.negative, spec.target.positive),
        advice=(advice.low, advice.medium, advice.high),
    )

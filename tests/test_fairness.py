"""Slices and group gaps of a model's holdout decisions (``tollgate.core.fairness``), and the gate's refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tollgate.config.spec import DatasetSpec, SpecError, load_spec
from tollgate.core.fairness import RESAMPLES, evaluate_fairness
from tollgate.core.promotion import HoldoutScore, should_promote


def holdout(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers with a gender and a contract; a fifth churn, whatever the gender."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "gender": rng.choice(["Female", "Male"], rows),
            "senior_citizen": rng.choice([0.0, 1.0], rows, p=[0.8, 0.2]),
            "contract": rng.choice(["Month-to-month", "One year", "Two year"], rows),
            "internet_service": rng.choice(["DSL", "Fiber optic", "No"], rows),
            "tenure_months": rng.integers(0, 72, rows).astype(float),
        }
    )
    return frame, rng.random(rows) < 0.2


def bounded(spec: DatasetSpec, **max_gap: float) -> DatasetSpec:
    fairness = spec.fairness.model_copy(update={"max_gap": max_gap})
    return spec.model_copy(update={"fairness": fairness})


def test_a_model_that_calls_one_gender_is_refused_with_the_gap_and_its_interval(churn_spec):
    """Check that scores which put every woman above every man make the policy call women only: the gaps are
    measured as the share of each group called (and of its churners), the gate's reason names the attribute, the
    measure, both groups' shares and the bound."""
    frame, churned = holdout(4000)
    woman = (frame["gender"] == "Female").to_numpy()
    probability = np.where(woman, 0.6, 0.1) + 0.3 * churned  # churners first within each gender
    spec = bounded(churn_spec, equal_opportunity=0.15)
    report = evaluate_fairness(frame, churned, probability, 0.5, spec)
    gaps = {(gap.attribute, gap.measure): gap for gap in report.gaps}
    parity, opportunity = gaps[("gender", "demographic_parity")], gaps[("gender", "equal_opportunity")]
    called = 320  # 8 % capacity of 4,000: all women, churners first
    assert parity.shares["Male"] == 0.0
    assert parity.shares["Female"] == pytest.approx(called / woman.sum())
    assert opportunity.shares["Female"] == pytest.approx(called / (churned & woman).sum())
    assert opportunity.gap == pytest.approx(opportunity.shares["Female"])
    assert opportunity.ci_low <= opportunity.gap <= opportunity.ci_high
    assert opportunity.exceeded and not parity.exceeded  # only equal opportunity is bounded
    reason = report.refusal()
    assert reason is not None and "equal-opportunity gap across gender" in reason and "0% for Male" in reason
    assert "beyond the spec's bound 0.15" in reason
    score = HoldoutScore("challenger:1", 0.5, 0.9, 0.7, 0.0, 0.0)
    decision = should_promote(score, None, None, spec.promotion, reason)
    assert decision.decision == "rejected" and decision.reason.startswith("unfair to a protected group: ")


def test_a_model_blind_to_gender_is_within_the_bound(churn_spec):
    """Check that scores depending on churn alone leave both genders' recall alike: no refusal."""
    frame, churned = holdout(4000)
    probability = 0.1 + 0.5 * churned + np.random.default_rng(1).normal(0, 0.2, len(churned))
    report = evaluate_fairness(frame, churned, probability, 0.5, bounded(churn_spec, equal_opportunity=0.15))
    assert report.refusal() is None
    assert all(gap.gap is not None and gap.gap < 0.15 for gap in report.gaps)


def test_the_gaps_interval_is_the_row_bootstrap_s(churn_spec):
    """Check that drawing the (group, acted) cells' counts from a multinomial gives the interval that resampling
    rows does (the module's claim): the same percentiles within sampling error."""
    frame, churned = holdout(600, seed=5)
    probability = np.where(frame["gender"] == "Female", 0.3, 0.2) + 0.4 * churned
    report = evaluate_fairness(frame, churned, probability, 0.5, churn_spec)
    gap = next(g for g in report.gaps if g.attribute == "gender" and g.measure == "demographic_parity")
    acted = np.zeros(len(frame), dtype=bool)
    acted[np.argsort(-probability, kind="stable")[: int(0.08 * len(frame))]] = True
    woman = (frame["gender"] == "Female").to_numpy()
    rng = np.random.default_rng(7)
    spreads = []
    for _ in range(RESAMPLES):
        rows = rng.integers(0, len(frame), len(frame))
        spreads.append(abs(acted[rows][woman[rows]].mean() - acted[rows][~woman[rows]].mean()))
    low, high = np.quantile(spreads, [0.025, 0.975])
    assert gap.ci_low == pytest.approx(low, abs=0.01) and gap.ci_high == pytest.approx(high, abs=0.01)


def test_slices_give_each_value_its_figures_and_small_groups_are_not_compared(churn_spec):
    """Check the slices: every value of the segment columns (a derived bucket included) and protected attributes,
    rows adding up, calibration beside the observed rate; a group under min_group_rows is shown but not compared."""
    frame, churned = holdout(3000)
    frame.loc[:4, "gender"] = "Other"  # five customers
    probability = np.clip(0.15 + 0.4 * churned, 0, 1)
    report = evaluate_fairness(frame, churned, probability, 0.5, churn_spec)
    columns = {row.column for row in report.slices}
    assert columns == {"contract", "tenure_bucket", "internet_service", "gender", "senior_citizen"}
    for column in columns:
        rows = [row for row in report.slices if row.column == column]
        assert sum(row.rows for row in rows) == len(frame)
        assert sum(row.acted for row in rows) == int(0.08 * len(frame))
    buckets = [row.value for row in report.slices if row.column == "tenure_bucket"]
    labels = next(feature.labels for feature in churn_spec.features if feature.name == "tenure_bucket")
    assert buckets == [label for label in labels if label in buckets]  # the spec's order
    by_value = {(row.column, row.value): row for row in report.slices}
    assert by_value[("senior_citizen", "1")].rows == int((frame["senior_citizen"] == 1).sum())
    assert by_value[("gender", "Other")].rows == 5
    parity = next(g for g in report.gaps if g.attribute == "gender" and g.measure == "demographic_parity")
    assert parity.too_small == ["Other"] and set(parity.shares) == {"Female", "Male"}


def test_fairness_spec_mistakes_name_the_field(tmp_path, churn_spec):
    """Check a protected column the spec does not declare, bounds without protected columns and a gap outside
    (0, 1] are refused at load with the field's name."""
    source = churn_spec.source_path.read_text(encoding="utf-8")
    cases = {
        "protected: [gender, senior_citizen]": ("protected: [religion]", "fairness.protected names undeclared"),
        "max_gap: {equal_opportunity: 0.15}": ("max_gap: {equal_opportunity: 1.5}", "in (0, 1]"),
    }
    for old, (new, says) in cases.items():
        path = tmp_path / "churn.yaml"
        path.write_text(source.replace(old, new), encoding="utf-8")
        with pytest.raises(SpecError, match=says.replace("(", r"\(").replace(")", r"\)")):
            load_spec(path)
    path.write_text(source.replace("protected: [gender, senior_citizen]", "protected: []"), encoding="utf-8")
    with pytest.raises(SpecError, match="name the protected columns too"):
        load_spec(path)

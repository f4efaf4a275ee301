"""The fairness stage: the winner's holdout decisions slice by slice (segments and protected groups) and the
gaps between protected groups, published as a Prefect table; the report shows them and the promote stage
refuses a challenger whose gaps exceed the spec's bounds."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import MEASURED, TIMEOUTS, artifact_key, publish_table
from tollgate.config.spec import DatasetSpec
from tollgate.core.fairness import FairnessReport, evaluate_fairness
from tollgate.core.features import features_and_target
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import Leaderboard


@task(name="fairness", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["fairness"], **MEASURED)
def evaluate_slices(split: TrainHoldout, leaderboard: Leaderboard, spec: DatasetSpec) -> FairnessReport:
    """Slices and group gaps of the winner's decisions on the whole holdout."""
    winner = leaderboard.winner
    target = features_and_target(split.holdout, spec)[1].to_numpy()
    report = evaluate_fairness(split.holdout, target, winner.holdout_probability, winner.oof_threshold, spec)
    for gap in report.gaps:
        print(f"fairness: {gap.describe(report.confidence)}" + (" — beyond the bound" if gap.exceeded else ""))
    if report.slices:
        publish_table(
            key=artifact_key(spec.name, "slices"),
            rows=report.slice_rows(),
            description=f"{spec.name}: the winner's holdout decisions by segment and protected group",
        )
    if report.gaps:
        publish_table(
            key=artifact_key(spec.name, "fairness"),
            rows=report.gap_rows(),
            description=f"{spec.name}: gaps between protected groups at {report.operating_point}",
        )
    return report

"""The anomaly-report stage: does the anomaly score still rank attack kinds the training never showed?
(see ``tollgate.core.anomaly``)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import plots
from tasks.run import MEASURED, write_markdown
from tollgate.config.spec import DatasetSpec
from tollgate.core.anomaly import TOP_SHARE, AnomalyResult, anomaly_markdown, novelty_table
from tollgate.core.split import TrainHoldout
from tollgate.store.files import write_json_atomic
from tollgate.store.runs import RunPaths


@task(name="anomaly-report", cache_policy=NO_CACHE, **MEASURED)
def anomaly_report(run: RunPaths, split: TrainHoldout, spec: DatasetSpec) -> AnomalyResult | None:
    """Write anomaly.md/.json/.png in the run folder; None when the spec asks for no anomaly report."""
    column = spec.tournament.novelty_by
    if not spec.tournament.anomaly_feature or column is None:
        return None
    if column not in split.holdout or column not in split.train:
        print(f"anomaly report skipped: the data has no '{column}' column (kinds of positives)")
        return None
    results = novelty_table(split, spec)
    picture = plots.anomaly_ranks(
        [r for r in results if r.normal_percentiles is not None], TOP_SHARE, run.dir / "anomaly.png"
    )
    write_markdown(run.dir / "anomaly.md", anomaly_markdown(spec, results, picture.name))
    write_json_atomic(run.dir / "anomaly.json", {"top_share": TOP_SHARE, "kinds": [r.as_row() for r in results]})
    result = AnomalyResult(kinds=results, report=run.dir / "anomaly.md")
    for row in result.judged():
        print(
            f"anomaly: {row['kind']} ({row['holdout_rows']} holdout rows, "
            f"{'held out of' if row['in_training'] else 'never in'} training): "
            f"{row['share_in_top_1pct']:.1%} in the top 1 %"
        )
    return result

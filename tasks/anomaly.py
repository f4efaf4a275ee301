"""The anomaly score on its own: does it still rank attack kinds the training never showed?

For every kind of positive in the holdout (``tournament.novelty_by`` names the column), the
unsupervised part of the pipeline (spec features → encoding → IsolationForest) is fitted on training
rows **without that kind**, then the share of that kind's holdout rows scoring above the top 1 % of
normal holdout rows is reported. Kinds that never occur in training (NSL-KDD's test-only attacks)
are scored by the model's own detector, which never saw them either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import plots
from tasks.features import build_preprocessor
from tasks.quality import markdown_table
from tasks.run import TIMEOUTS, RunPaths, write_json_atomic
from tasks.spec import DatasetSpec
from tasks.split import TrainHoldout

TOP_SHARE = 0.01  # "top 1 %": above the 99th percentile of normal holdout rows
MIN_ROWS = 10  # kinds with fewer holdout rows are listed but not judged


@dataclass
class KindResult:
    kind: str
    holdout_rows: int
    in_training: bool
    share_in_top_1pct: float | None
    median_normal_percentile: float | None
    normal_percentiles: np.ndarray | None = field(default=None, repr=False, compare=False)  # one per row

    def as_row(self) -> dict:
        return {name: value for name, value in vars(self).items() if name != "normal_percentiles"}


def anomaly_scores(spec: DatasetSpec, fit_rows: pd.DataFrame, score_rows: pd.DataFrame) -> np.ndarray:
    """IsolationForest score (higher = stranger) after the model's own preprocessing, fitted on ``fit_rows``."""
    preprocess = build_preprocessor(spec)  # ends with the IsolationForest step (tournament.anomaly_feature)
    preprocess.fit(fit_rows[spec.input_columns])
    return preprocess.transform(score_rows[spec.input_columns])[:, -1]


def novelty_table(split: TrainHoldout, spec: DatasetSpec) -> list[KindResult]:
    """Per kind of positive in the holdout: how much of it the detector ranks in the top 1 % of normal traffic."""
    if not spec.tournament.anomaly_feature:
        raise ValueError(f"spec '{spec.name}' has no anomaly step (tournament.anomaly_feature)")
    column = spec.tournament.novelty_by
    train, holdout = split.train, split.holdout
    normal = (holdout[spec.target.column] == 0).to_numpy()
    kinds = holdout.loc[~normal, column].fillna("unknown").astype(str)
    training_kinds = set(train.loc[train[spec.target.column] == 1, column].dropna().astype(str))
    results = []
    all_scores = None
    for kind, rows in kinds.groupby(kinds).groups.items():
        in_training = kind in training_kinds
        if len(rows) < MIN_ROWS:
            results.append(KindResult(kind, len(rows), in_training, None, None))
            continue
        if in_training:  # refit without this kind: it becomes an attack the detector never saw
            fit_rows = train.loc[train[column].astype(str) != kind]
            scores = anomaly_scores(spec, fit_rows, holdout)
        else:
            all_scores = anomaly_scores(spec, train, holdout) if all_scores is None else all_scores
            scores = all_scores
        cut = np.quantile(scores[normal], 1 - TOP_SHARE)
        picked = holdout.index.get_indexer(rows)
        share = float(np.mean(scores[picked] > cut))
        percentiles = np.searchsorted(np.sort(scores[normal]), scores[picked]) / normal.sum()
        results.append(KindResult(kind, len(rows), in_training, round(share, 4),
                                  round(float(np.median(percentiles)), 4), percentiles))
    return sorted(results, key=lambda r: (-r.holdout_rows, r.kind))


@task(name="anomaly-report", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["explain"])
def anomaly_report(run: RunPaths, split: TrainHoldout, spec: DatasetSpec, summary: dict) -> dict:
    """Write anomaly.md/.json in the run folder and add the per-kind table to the run's summary."""
    column = spec.tournament.novelty_by
    if not spec.tournament.anomaly_feature or column is None:
        return summary
    if column not in split.holdout or column not in split.train:
        print(f"anomaly report skipped: the data has no '{column}' column (kinds of positives)")
        return summary
    results = novelty_table(split, spec)
    rows = [result.as_row() for result in results]
    judged = [row for row in rows if row["share_in_top_1pct"] is not None]
    plots.anomaly_ranks([r for r in results if r.normal_percentiles is not None], TOP_SHARE, run.dir / "anomaly.png")
    lines = [f"# {spec.name}: anomaly score on attack kinds it never saw", "",
             "Each kind's rows in the holdout, scored by an IsolationForest fitted on training rows **without that "
             "kind** (kinds absent from training: the model's own detector). `share_in_top_1pct`: the share scoring "
             "above the 99th percentile of normal holdout rows (1 % false alarms on normal traffic); "
             "`median_normal_percentile`: where the kind's median row falls among normal rows. Kinds with fewer "
             f"than {MIN_ROWS} holdout rows are listed but not judged (blank).", "",
             markdown_table(rows, ["kind", "holdout_rows", "in_training", "share_in_top_1pct",
                                   "median_normal_percentile"]), "", "![anomaly ranks](anomaly.png)"]
    (run.dir / "anomaly.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json_atomic(run.dir / "anomaly.json", {"top_share": TOP_SHARE, "kinds": rows})
    for row in judged:
        print(f"anomaly: {row['kind']} ({row['holdout_rows']} holdout rows, "
              f"{'held out of' if row['in_training'] else 'never in'} training): "
              f"{row['share_in_top_1pct']:.1%} in the top 1 %")
    return {**summary, "anomaly": {"top_share": TOP_SHARE, "kinds": judged}}

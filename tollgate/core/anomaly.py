"""The anomaly score on its own: does it still rank attack kinds the training never showed?

For every kind of positive in the holdout (``tournament.novelty_by`` names the column), the
unsupervised part of the pipeline (spec features → encoding → IsolationForest) is fitted on training
rows **without that kind**, then the share of that kind's holdout rows scoring above the top 1 % of
normal holdout rows is reported. Kinds that never occur in training (NSL-KDD's test-only attacks)
are scored by the model's own detector, which never saw them either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import missing_as
from tollgate.core.features import build_preprocessor
from tollgate.core.render import markdown_table
from tollgate.core.split import TrainHoldout

TOP_SHARE = 0.01  # "top 1 %": above the 99th percentile of normal holdout rows
MIN_ROWS = 10  # kinds with fewer holdout rows are listed but not judged


@dataclass(frozen=True)
class KindResult:
    kind: str
    holdout_rows: int
    in_training: bool
    share_in_top_1pct: float | None
    median_normal_percentile: float | None
    normal_percentiles: np.ndarray | None = field(default=None, repr=False, compare=False)  # one per row

    def as_row(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if name != "normal_percentiles"}


def anomaly_scores(spec: DatasetSpec, fit_rows: pd.DataFrame, score_rows: pd.DataFrame) -> np.ndarray:
    """IsolationForest score (higher = stranger) after the model's own preprocessing, fitted on ``fit_rows``."""
    preprocess = build_preprocessor(spec)  # ends with the IsolationForest step (tournament.anomaly_feature)
    preprocess.fit(fit_rows[spec.input_columns])
    return np.asarray(preprocess.transform(score_rows[spec.input_columns]))[:, -1]


def novelty_table(split: TrainHoldout, spec: DatasetSpec) -> list[KindResult]:
    """Per kind of positive in the holdout: how much of it the detector ranks in the top 1 % of normal traffic."""
    if not spec.tournament.anomaly_feature:
        raise ValueError(f"spec '{spec.name}' has no anomaly step (tournament.anomaly_feature)")
    column = spec.tournament.novelty_by
    train, holdout = split.train, split.holdout
    normal = (holdout[spec.target.column] == 0).to_numpy()
    kinds = missing_as(holdout.loc[~normal, column], "unknown").astype(str)
    training_kinds = set(train.loc[train[spec.target.column] == 1, column].dropna().astype(str))
    results = []
    all_scores = None
    for group, rows in kinds.groupby(kinds).groups.items():
        kind = str(group)
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
        results.append(
            KindResult(
                kind, len(rows), in_training, round(share, 4), round(float(np.median(percentiles)), 4), percentiles
            )
        )
    return sorted(results, key=lambda r: (-r.holdout_rows, r.kind))


def anomaly_markdown(spec: DatasetSpec, results: list[KindResult], picture: str) -> str:
    """The per-kind table with what its columns mean, for the run folder's anomaly.md."""
    lines = [
        f"# {spec.name}: anomaly score on attack kinds it never saw",
        "",
        "Each kind's rows in the holdout, scored by an IsolationForest fitted on training rows **without that "
        "kind** (kinds absent from training: the model's own detector). `share_in_top_1pct`: the share scoring "
        "above the 99th percentile of normal holdout rows (1 % false alarms on normal traffic); "
        "`median_normal_percentile`: where the kind's median row falls among normal rows. Kinds with fewer "
        f"than {MIN_ROWS} holdout rows are listed but not judged (blank).",
        "",
        markdown_table(
            [result.as_row() for result in results],
            ["kind", "holdout_rows", "in_training", "share_in_top_1pct", "median_normal_percentile"],
        ),
        "",
        f"![anomaly ranks]({picture})",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AnomalyResult:
    """The anomaly report stage's result: every kind's row, and the judged ones for the run's summary."""

    kinds: list[KindResult]
    report: Path

    def judged(self) -> list[dict[str, Any]]:
        return [row for row in (kind.as_row() for kind in self.kinds) if row["share_in_top_1pct"] is not None]

    def summary(self) -> dict[str, Any]:
        return {"top_share": TOP_SHARE, "kinds": self.judged()}

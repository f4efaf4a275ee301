"""Parsed events → sessions: partial per-session aggregates (``key`` × window) merged block by block and
finalised into the spec's session columns once the stream has moved past their window; labels from the SOC's
incident records.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from tollgate.config.spec import DatasetSpec, RawLogs
from tollgate.rawlogs.parse import RawLogError

SPAN_MIN, SPAN_MAX, EVENTS = "_ts_min", "_ts_max", "_events"


def lookup(values: pl.Series, rule) -> pl.Series:
    """The lookup applied to each distinct value once (a block holds few distinct ports or agents)."""
    text = values.cast(pl.String)
    mapping = {}
    for value in text.unique().drop_nulls().to_list():
        label = rule.values.get(value)
        if label is None:
            label = next((label for needle, label in rule.contains.items() if needle in value), rule.default)
        mapping[value] = label
    return text.replace_strict(mapping, default=None, return_dtype=pl.String)


def row_hash(*columns: str) -> pl.Expr:
    """One 64-bit hash per row of these columns (fixed seeds: equal in every worker process)."""
    return pl.struct(*columns).hash(seed=0x746F6C6C)


class Sessioniser:
    """Partial per-session aggregates of the windows still open, merged block by block; ``finalise``
    turns the windows the stream has moved past into session rows and forgets them, so the state
    follows the open windows, not the file. Partials are keyed ``k`` (the spec's key) × ``w`` (window number)."""

    def __init__(self, raw: RawLogs, id_column: str):
        self.raw = raw
        self.id_column = id_column
        self.window = raw.window_minutes * 60
        self.additive: list[pl.DataFrame] = []
        self.distinct: dict[str, list[pl.DataFrame]] = defaultdict(list)
        self.modes: dict[str, list[pl.DataFrame]] = defaultdict(list)

    def add(self, events: pl.DataFrame) -> None:
        """Aggregate a block's events (the spec's fields, lookups, ``_ts`` and ``_window``)."""
        events = events.rename({self.raw.key: "k", "_window": "w"})
        field = {self.raw.key: "k"}.get
        sums = [
            pl.len().cast(pl.Int64).alias(EVENTS),
            pl.col("_ts").min().alias(SPAN_MIN),
            pl.col("_ts").max().alias(SPAN_MAX),
        ]
        for name, rule in self.raw.sessions.items():
            where = [pl.col(field(column, column)) == value for column, value in rule.where.items()]
            if rule.how == "count":
                sums.append((pl.all_horizontal(where).sum() if where else pl.len()).cast(pl.Int64).alias(name))
            elif rule.how == "sum":
                value = pl.col(field(rule.field, rule.field))
                sums.append(
                    (value.filter(pl.all_horizontal(where)) if where else value).sum().cast(pl.Float64).alias(name)
                )
            elif rule.how == "nunique":  # (session, value) pairs as one 64-bit hash each
                column = field(rule.field, rule.field)
                self.distinct[name].append(events.select("k", "w", p=row_hash("k", "w", column)).unique("p"))
            elif rule.how == "mode":
                column = field(rule.field, rule.field)
                self.modes[name].append(
                    events.group_by("k", "w", column).agg(n=pl.len().cast(pl.Int64)).rename({column: "v"})
                )
        self.additive.append(events.group_by("k", "w").agg(sums))

    def partials(self) -> tuple:
        self.compact()
        return self.additive, dict(self.distinct), dict(self.modes)

    def merge(self, partials: tuple) -> None:
        """Add another sessioniser's partial aggregates (e.g. from a worker process)."""
        additive, distinct, modes = partials
        self.additive.extend(additive)
        for name, parts in distinct.items():
            self.distinct[name].extend(parts)
        for name, parts in modes.items():
            self.modes[name].extend(parts)

    def compact(self) -> None:
        if len(self.additive) > 1:
            merged = pl.concat(self.additive)
            self.additive = [
                merged.group_by("k", "w")
                .agg(pl.col(SPAN_MIN).min(), pl.col(SPAN_MAX).max(), pl.exclude("k", "w", SPAN_MIN, SPAN_MAX).sum())
                .select(merged.columns)
            ]
        for name, parts in self.distinct.items():
            if len(parts) > 1:
                self.distinct[name] = [pl.concat(parts).unique("p")]
        for name, parts in self.modes.items():
            if len(parts) > 1:
                self.modes[name] = [pl.concat(parts).group_by("k", "w", "v").agg(pl.col("n").sum())]

    def finalise(self, before: int | None = None) -> pd.DataFrame | None:
        """Session rows of the windows numbered below ``before`` (all with None), removed from the state."""
        self.compact()
        if not self.additive:
            return None
        done = pl.lit(True) if before is None else pl.col("w") < before
        final = self.additive[0].filter(done)
        if final.is_empty():
            return None
        self.additive = [self.additive[0].filter(~done)]
        distinct, modes = {}, {}
        for state, out in ((self.distinct, distinct), (self.modes, modes)):
            for name, (frame,) in state.items():
                out[name], state[name] = frame.filter(done), [frame.filter(~done)]
        return self._rows(final, distinct, modes)

    def _rows(self, table: pl.DataFrame, distinct: dict, modes: dict) -> pd.DataFrame:
        """One row per (key, window): the spec's id column, the key, window_start and every spec column."""
        columns = []
        for name, rule in self.raw.sessions.items():
            if rule.how in ("count", "sum"):
                columns.append(pl.col(name))
            elif rule.how == "span_seconds":
                columns.append((pl.col(SPAN_MAX) - pl.col(SPAN_MIN)).cast(pl.Float64).alias(name))
            elif rule.how == "first_hour":
                columns.append((pl.col(SPAN_MIN) // 3600 % 24).cast(pl.Int64).alias(name))
            elif rule.how == "nunique":
                table = table.join(
                    distinct[name].group_by("k", "w").agg(pl.len().cast(pl.Int64).alias(name)),
                    on=["k", "w"],
                    how="left",
                )
                columns.append(pl.col(name).fill_null(0))
            else:  # mode: the most frequent value, ties to the first in sort order
                top = (
                    modes[name]
                    .drop_nulls("v")
                    .sort(["n", "v"], descending=[True, False])
                    .group_by("k", "w", maintain_order=True)
                    .first()
                    .select("k", "w", pl.col("v").alias(name))
                )
                table = table.join(top, on=["k", "w"], how="left")
                columns.append(pl.col(name))
        start = pl.from_epoch(pl.col("w") * self.window, time_unit="s")
        out = table.select(
            (pl.col("k").cast(pl.String) + "@" + start.dt.strftime("%Y-%m-%dT%H:%MZ")).alias(self.id_column),
            pl.col("k").alias(self.raw.key),
            start.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00").alias("window_start"),
            *columns,
        )
        return out.sort(self.id_column).to_pandas()


def event_hashes(events: pl.DataFrame, raw: RawLogs) -> pl.Series:
    """One 64-bit hash per event (its fields with the time normalised): equal events, equal hashes."""
    return events.select(row_hash(*raw.fields[1:], "_ts")).to_series()


def attach_labels(sessions: pd.DataFrame, labels: Path, spec: DatasetSpec) -> pd.DataFrame:
    """The target from the SOC's incident records: a session listed there is positive."""
    if not labels.is_file():
        raise RawLogError(f"no labels file {labels}: every month of raw logs needs its incident records")
    truth = pd.read_csv(labels, dtype=str)
    key = spec.id_column
    if key not in truth:
        raise RawLogError(f"{labels} has no {key} column")
    listed = sessions[key].isin(truth[key])
    target = spec.target
    sessions[target.column] = np.where(listed, target.positive, target.negative)
    kind = spec.raw_logs.label_kind_column
    if kind and kind in truth:
        sessions[kind] = sessions[key].map(truth.set_index(key)[kind]).fillna(spec.raw_logs.negative_kind)
    return sessions

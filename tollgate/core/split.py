"""Split cleaned rows into training rows and a holdout no fit ever sees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tollgate.config.spec import DatasetSpec
from tollgate.core.ingest import BATCH_COLUMN

MONTH_LABEL = r"\d{4}-\d{2}"


@dataclass(frozen=True)
class TrainHoldout:
    train: pd.DataFrame
    holdout: pd.DataFrame
    strategy: str
    holdout_month: str | None
    holdout_file: str | None = None

    def describe(self) -> str:
        where = (
            f"month {self.holdout_month}"
            if self.holdout_month
            else f"file {self.holdout_file}"
            if self.holdout_file
            else "a stratified sample"
        )
        return f"{len(self.train):,} training rows, {len(self.holdout):,} holdout rows ({where})"


def split_rows(frame: pd.DataFrame, spec: DatasetSpec, holdout_month: str | None) -> TrainHoldout:
    """Month M is the fresh holdout when the data has months; the spec's ``holdout_file`` with strategy
    file; otherwise a seeded stratified split."""
    if spec.split.strategy == "file":
        name = spec.split.holdout_file
        is_holdout = frame[BATCH_COLUMN] == name
        if not is_holdout.any() or is_holdout.all():
            files = sorted(frame[BATCH_COLUMN].unique())
            raise ValueError(f"split.holdout_file '{name}' must be one of several input files; read: {files}")
        split = TrainHoldout(
            frame.loc[~is_holdout].reset_index(drop=True),
            frame.loc[is_holdout].reset_index(drop=True),
            "file",
            None,
            name,
        )
    elif holdout_month is not None and spec.split.strategy == "time":
        is_holdout = frame[BATCH_COLUMN] == holdout_month
        split = TrainHoldout(
            frame.loc[~is_holdout].reset_index(drop=True),
            frame.loc[is_holdout].reset_index(drop=True),
            "time",
            holdout_month,
        )
    else:
        train, holdout = train_test_split(
            frame,
            test_size=spec.split.holdout_fraction,
            random_state=spec.split.seed,
            stratify=frame[spec.target.column],
        )
        split = TrainHoldout(train.reset_index(drop=True), holdout.reset_index(drop=True), "stratified", None)
    for part, rows in (("training", split.train), ("holdout", split.holdout)):
        if rows[spec.target.column].nunique() < 2:
            raise ValueError(f"the {part} rows hold only one class of '{spec.target.column}'; cannot train or evaluate")
    return split


def row_keys(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """One 64-bit key per row naming what it is, so a model can record what it trained on.

    The id where the data has one, else the row's content (inputs and target); with the month where the
    row came from a monthly batch (a customer's snapshot of another month is another row). A re-export of
    the same rows, shuffled or renamed, gives the same keys."""
    parts = frame[spec.id_columns] if spec.id_columns else frame[[*spec.input_columns, spec.target.column]]
    parts = parts.astype(str)
    if BATCH_COLUMN in frame:
        batch = frame[BATCH_COLUMN].astype(str)
        parts = parts.assign(**{BATCH_COLUMN: batch.where(batch.str.fullmatch(MONTH_LABEL), "")})
    keys: np.ndarray = pd.util.hash_pandas_object(parts, index=False).to_numpy(dtype=np.uint64)
    return keys

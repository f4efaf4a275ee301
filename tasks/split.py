"""The split stage: training rows and a holdout no fit ever sees (see ``split_rows``)."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import MEASURED
from tollgate.config.spec import DatasetSpec
from tollgate.core.split import TrainHoldout, split_rows


@task(name="split", cache_policy=NO_CACHE, **MEASURED)
def split_train_holdout(frame: pd.DataFrame, spec: DatasetSpec, holdout_month: str | None) -> TrainHoldout:
    """Month M is the fresh holdout when the data has months; otherwise the spec's file or a stratified split."""
    split = split_rows(frame, spec, holdout_month)
    print(f"split: {split.describe()}")
    return split

"""The winner's final fit spread over a Dask cluster: LightGBM through ``lightgbm.dask``, on row partitions that are
encoded on the workers holding them, for a training set larger than one worker should hold.

The final-fit task runs on one worker; from there the training rows (compact: categoricals as codes) are cut into
partitions and placed round-robin on the cluster's workers, each worker encodes its own partitions (the dense
matrix, several times the rows' size, never gathers on one machine), and LightGBM trains one model over all of them
with its own network protocol between the workers. The result is a plain ``LGBMClassifier`` in the usual Pipeline,
packaged and served like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

PARTITION_SHARE = 0.25
"""The share of a worker's memory limit an encoded training matrix may take before the fit is partitioned."""
PARTITION_ROWS = 1_000_000
"""Rows per partition (at least one partition per worker)."""


@dataclass(frozen=True)
class PartitionPlan:
    partitions: int
    workers: list[str]
    reason: str


def plan_partitions(estimator: str, rows: int, width: int, forced_rows: int | None) -> PartitionPlan | None:
    """Whether (and over what) a final fit of ``rows`` × ``width`` encoded values is partitioned: only LightGBM,
    only inside a task on a Dask worker, and only beyond ``forced_rows`` rows when given
    (``TOLLGATE_DASK_PARTITION_ROWS``), else when the float32 matrix would take more than ``PARTITION_SHARE`` of the
    worker's memory limit."""
    if estimator != "lightgbm":
        return None
    try:
        from distributed import get_worker
    except ImportError:  # no dask installed: no cluster either
        return None
    try:
        worker = get_worker()
    except ValueError:  # not inside a Dask task
        return None
    limit = worker.memory_manager.memory_limit
    needed = rows * width * np.dtype(np.float32).itemsize
    if forced_rows is not None:
        if rows <= forced_rows:
            return None
        reason = f"{rows:,} rows > TOLLGATE_DASK_PARTITION_ROWS {forced_rows:,}"
    elif limit and needed > PARTITION_SHARE * limit:
        reason = f"its encoded matrix ({needed / 2**30:.1f} GiB) > {PARTITION_SHARE:.0%} of a worker's memory limit"
    else:
        return None
    workers = sorted(_worker_addresses())
    partitions = max(len(workers), -(-rows // PARTITION_ROWS))
    return PartitionPlan(partitions=partitions, workers=workers, reason=reason)


def _worker_addresses() -> list[str]:
    from distributed import worker_client

    with worker_client() as client:
        return list(client.scheduler_info()["workers"])


def _encode(encode: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    encoded: np.ndarray = np.asarray(encode.transform(rows), dtype=np.float32)
    return encoded


def fit_partitioned(
    pipeline: Pipeline, features: pd.DataFrame, target: pd.Series, plan: PartitionPlan, params: dict[str, Any]
) -> Pipeline:
    """``pipeline`` (its encoding steps already fitted) with its LightGBM estimator trained by ``lightgbm.dask`` on
    ``plan.partitions`` row partitions, each placed on a worker and encoded there; the fitted model, made local,
    becomes the Pipeline's estimator."""
    import dask.array as da
    from dask.delayed import delayed
    from distributed import worker_client
    from lightgbm.dask import DaskLGBMClassifier

    encode = pipeline[:-1]
    width = encode.transform(features.iloc[:1]).shape[1]
    bounds = np.linspace(0, len(features), plan.partitions + 1).astype(int)
    labels = target.to_numpy()
    with worker_client() as client:
        encoder = client.scatter(encode, broadcast=True)
        parts_x, parts_y = [], []
        for number, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            where = [plan.workers[number % len(plan.workers)]]
            rows = client.scatter(features.iloc[start:stop], workers=where)
            encoded = client.submit(_encode, encoder, rows, workers=where, pure=False)
            label = client.scatter(labels[start:stop], workers=where)
            parts_x.append(da.from_delayed(delayed(encoded), (stop - start, width), np.float32))  # type: ignore[no-untyped-call]
            parts_y.append(da.from_delayed(delayed(label), (stop - start,), labels.dtype))  # type: ignore[no-untyped-call]
        params = {key: value for key, value in params.items() if key != "n_jobs"}  # each worker uses its threads
        matrix, outcomes = da.concatenate(parts_x), da.concatenate(parts_y)  # type: ignore[no-untyped-call]
        model = DaskLGBMClassifier(client=client, **params).fit(matrix, outcomes)
        local = model.to_local()
    pipeline.steps[-1] = (pipeline.steps[-1][0], local)
    return pipeline

"""The retrain flow on a real Dask cluster: a ``LocalCluster`` with two worker processes, reached by its address as
an existing cluster is (``TOLLGATE_DASK_ADDRESS``)."""

from __future__ import annotations

from pathlib import Path

import distributed  # the dev install has the dask extra: a missing one fails here instead of skipping
import pytest

from flows.retrain import retrain, task_runner


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as local:
        yield local


def _timing_free(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "fit_seconds"} for row in rows]


def test_the_flow_on_a_cluster_gives_the_thread_runners_leaderboard(cluster, monthly_batches, tmp_path):
    """Check a retrain whose split, candidates and final fit run as tasks on two Dask worker processes gives the
    leaderboard (every metric and threshold), winner and promotion decision the thread runner gives, and that the
    stages really ran on the workers (the scheduler's task stream)."""
    data = str(monthly_batches / "churn")
    on_threads = retrain(dataset="churn", data=data, artifacts_dir=str(tmp_path / "threads"))
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        on_cluster = retrain.with_options(task_runner=task_runner("dask", cluster.scheduler_address))(
            dataset="churn", data=data, artifacts_dir=str(tmp_path / "dask")
        )
    assert _timing_free(on_cluster["leaderboard"]) == _timing_free(on_threads["leaderboard"])
    assert on_cluster["winner"] == on_threads["winner"]
    assert on_cluster["promotion"]["decision"] == on_threads["promotion"]["decision"] == "promoted"
    ran = [(task["key"], task["worker"]) for task in stream.data]
    assert len({worker for _, worker in ran}) == 2, ran  # both worker processes worked
    assert sum("run_candidate" in str(key) or "cross-validate" in str(key) for key, _ in ran) == 2, ran


def test_a_large_lightgbm_final_fit_is_spread_over_the_workers(cluster, monthly_batches, tmp_path, monkeypatch):
    """Check that on a cluster a LightGBM winner's final fit above TOLLGATE_DASK_PARTITION_ROWS runs through
    lightgbm.dask: its partitions encoded and trained on both workers, the report saying so, and a model whose
    holdout ranking matches the in-process fit's (distributed LightGBM bins each worker's rows: close, not equal)."""
    import joblib
    import yaml
    from lightgbm import LGBMClassifier

    from tests.integration.conftest import SHIPPED_SPECS, fast_spec
    from tollgate.config.settings import Settings

    spec = fast_spec(SHIPPED_SPECS / "churn.yaml", Settings())
    lightgbm = [c for c in spec["tournament"]["candidates"] if c["estimator"] == "lightgbm"]
    spec["tournament"] = {**spec["tournament"], "candidates": lightgbm, "cv_max_rows": 1000}  # a final fit follows
    spec_file = tmp_path / "churn.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    data = str(monthly_batches / "churn")
    in_process = retrain(spec=str(spec_file), data=data, artifacts_dir=str(tmp_path / "threads"))
    monkeypatch.setenv("TOLLGATE_DASK_PARTITION_ROWS", "100")
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        spread = retrain.with_options(task_runner=task_runner("dask", cluster.scheduler_address))(
            spec=str(spec_file), data=data, artifacts_dir=str(tmp_path / "dask")
        )
    ran = [(str(task["key"]), task["worker"]) for task in stream.data]
    for step in ("_encode", "_train_part"):
        assert len({worker for key, worker in ran if step in key}) == 2, (step, ran)  # on both workers
    report = (Path(spread["report_dir"]) / "report.md").read_text(encoding="utf-8")
    assert "lightgbm.dask over 2 partitions on 2 Dask workers" in report
    assert type(joblib.load(spread["model_path"])[-1]) is LGBMClassifier  # served like any other model
    assert spread["winner"]["model"] == in_process["winner"]["model"] == "lightgbm"
    assert abs(spread["winner"]["test_roc_auc"] - in_process["winner"]["test_roc_auc"]) < 0.03


def test_a_deployments_run_uses_the_workers_dask_address():
    """Check the flow's own runner (what a scheduled deployment's run uses, with no command line) follows
    ``TOLLGATE_DASK_ADDRESS`` where the flow is imported, and stays on threads without it."""
    import os
    import subprocess
    import sys

    show = "import flows.retrain as r; t = r.retrain.task_runner; print(type(t).__name__, getattr(t, 'address', None))"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOLLGATE_")}
    plain = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert plain.stdout.split() == ["ThreadPoolTaskRunner", "None"]
    env["TOLLGATE_DASK_ADDRESS"] = "tcp://127.0.0.1:8786"
    dask = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert dask.stdout.split() == ["DaskTaskRunner", "tcp://127.0.0.1:8786"]

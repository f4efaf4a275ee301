"""The retrain flow on a real Dask cluster: a ``LocalCluster`` with two worker processes, reached by its address as
an existing cluster is (``TOLLGATE_DASK_ADDRESS``)."""

from __future__ import annotations

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

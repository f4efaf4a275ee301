"""The README's scheduling steps, for real: `prefect server start` on a free port, the process work
pool, `prefect deploy --all` from prefect.yaml, `prefect deployment run`, and a worker that runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.processes import free_port, stop_group
from tollgate.config.settings import PROJECT_ROOT

PREFECT = [sys.executable, "-m", "prefect"]


class Process:
    """A long-running subprocess with its output in a file; stopped with SIGINT, then SIGKILL."""

    def __init__(self, command: list[str], env: dict[str, str], output: Path):
        self.output = output
        self._log = open(output, "w")  # noqa: SIM115 - open while the server runs, closed in stop()
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail(self, characters: int = 4000) -> str:
        return self.output.read_text(errors="replace")[-characters:]

    def stop(self) -> None:
        stop_group(self.process, grace_seconds=30)
        self._log.close()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """`prefect server start` with its own PREFECT_HOME (database) on a free loopback port."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    server = Process(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home / "server.log"
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.process.poll() is not None:
                raise AssertionError(f"prefect server exited {server.process.returncode}:\n{server.tail()}")
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prefect server not healthy after 180 s:\n{server.tail()}")
            time.sleep(1)
        yield {"api": api, "env": env, "home": home}
    finally:
        server.stop()


def prefect(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run a `prefect` CLI command as a user would; its output, or an error showing it."""
    done = subprocess.run(
        [*PREFECT, "--no-prompt", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_deployed_monthly_retrain_runs_on_a_worker(prefect_server, monthly_batches, tmp_path):
    """Check that prefect.yaml deploys as written and a worker runs churn-monthly-retrain to Completed."""
    env = {
        **prefect_server["env"],
        "TOLLGATE_HOME": str(PROJECT_ROOT),
        "TOLLGATE_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    api = prefect_server["api"]

    prefect("work-pool", "create", "tollgate-process", "--type", "process", env=env)
    prefect("deploy", "--all", env=env)
    deployed = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
    expected = {d["name"] for d in yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]}
    assert {d["name"] for d in deployed} == expected
    monthly = next(d for d in deployed if d["name"] == "churn-monthly-retrain")
    assert monthly["work_pool_name"] == "tollgate-process" and monthly["parameters"] == {"dataset": "churn"}
    assert [s["schedule"]["cron"] for s in monthly["schedules"]] == ["0 3 1 * *"]
    assert monthly["global_concurrency_limit"]["limit"] == 1

    output = prefect(
        "deployment",
        "run",
        "retrain/churn-monthly-retrain",
        "--param",
        f"data={json.dumps(str(monthly_batches / 'churn'))}",
        env=env,
    )
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", output).group(1)

    worker = Process(
        [*PREFECT, "worker", "start", "--pool", "tollgate-process", "--type", "process"], env, tmp_path / "worker.log"
    )
    try:
        deadline = time.monotonic() + 900
        while True:
            state = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()["state"]
            if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                break
            assert worker.process.poll() is None, f"worker exited {worker.process.returncode}:\n{worker.tail()}"
            assert time.monotonic() < deadline, f"flow run still {state['name']} after 15 min:\n{worker.tail()}"
            time.sleep(3)
    finally:
        worker.stop()
    assert state["type"] == "COMPLETED", f"flow run {state['name']}: {state.get('message')}\n{worker.tail()}"

    # The run really trained and registered a champion under the worker's artifacts folder.
    registry = json.loads((tmp_path / "artifacts" / "churn" / "registry.json").read_text())
    assert registry["champion"]["holdout_month"] == "2026-02"
    assert registry["history"][-1]["decision"] == "promoted"
    task_runs = httpx.post(
        f"{api}/task_runs/filter", timeout=10, json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
    ).json()
    stages = {re.sub(r"-[0-9a-f]{3}$", "", run["name"]) for run in task_runs}
    assert {"ingest", "validate", "quality-gate", "package", "promote"} <= stages


def test_the_monitors_retrain_event_starts_the_retrain_deployment(prefect_server, tmp_path):
    """Check prefect.yaml's trigger: the event the monitor emits for churn (tasks.monitor.emit_retrain_request, in
    its own process against the real server) makes the server's automation create a run of churn-monthly-retrain,
    and of no other deployment."""
    env = {**prefect_server["env"], "TOLLGATE_HOME": str(PROJECT_ROOT)}
    api = prefect_server["api"]
    if httpx.get(f"{api}/work_pools/tollgate-process", timeout=10).status_code == 404:
        prefect("work-pool", "create", "tollgate-process", "--type", "process", env=env)
    prefect("deploy", "--all", env=env)
    deployments = {d["name"]: d["id"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
    automations = httpx.post(f"{api}/automations/filter", json={}, timeout=10).json()
    reacting = [a for a in automations if "tollgate.retrain.requested" in json.dumps(a["trigger"])]
    assert {a["actions"][0]["deployment_id"] for a in reacting} == {
        deployments["churn-monthly-retrain"],
        deployments["security-monthly-retrain"],
    }

    def runs() -> dict[str, str]:
        """Runs not made by the scheduler (it adds the deployments' next monthly runs whenever its loop comes round:
        a fresh-clone CI run saw four of them appear while waiting for the event's run)."""
        found = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        return {run["id"]: run["deployment_id"] for run in found if not run.get("auto_scheduled")}

    before = runs()
    emit = (
        "from prefect.events.worker import EventsWorker; from tasks.monitor import emit_retrain_request; "
        "print(emit_retrain_request('churn', 'PSI above 0.2: tenure_months', 'tollgate-churn:test')); "
        "EventsWorker.drain_all()"
    )
    done = subprocess.run([sys.executable, "-c", emit], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and re.fullmatch(r"[0-9a-f-]{36}\n", done.stdout), done.stderr
    deadline = time.monotonic() + 120
    while not (started := {i: d for i, d in runs().items() if i not in before}):
        assert time.monotonic() < deadline, "no flow run 120 s after the event"
        time.sleep(2)
    assert set(started.values()) == {deployments["churn-monthly-retrain"]}
    for flow_run_id in started:  # nothing left for a worker of another test to pick up
        httpx.delete(f"{api}/flow_runs/{flow_run_id}", timeout=10)

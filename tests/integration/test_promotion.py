"""Champion/challenger promotion through the real flow, rollback, a kill mid-run, and a live swap."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from flows.retrain import retrain
from tasks.package import champion_tag
from tasks.registry import locked_registry, read_registry
from tasks.settings import PROJECT_ROOT, Settings
from tasks.schema import request_records
from tests.integration.test_service import Server


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("promotion-artifacts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(root))
        yield root


def sabotaged_copy(source: Path, target: Path, holdout_month: str) -> Path:
    """The same months with the training months' labels shuffled (the holdout month untouched)."""
    target.mkdir(parents=True)
    for path in sorted(source.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.stem != holdout_month:
            frame["churn"] = np.random.default_rng(3).permutation(frame["churn"].to_numpy())
        frame.to_csv(target / path.name, index=False)
    return target


@pytest.fixture(scope="module")
def two_runs(monthly_batches, artifacts, tmp_path_factory):
    """Run 1 on honest data (first champion), run 2 on sabotaged labels (a challenger to refuse)."""
    first = retrain(dataset="churn", data=str(monthly_batches / "churn"))
    registry_file = Path(first["registry"])
    after_first = registry_file.read_bytes()
    bentos_after_first = sorted(p.name for p in (artifacts / "churn" / "bentos").iterdir())
    bad_data = sabotaged_copy(monthly_batches / "churn", tmp_path_factory.mktemp("sabotaged") / "churn",
                              first["holdout_month"])
    second = retrain(dataset="churn", data=str(bad_data))
    return {"first": first, "second": second, "registry_after_first": json.loads(after_first),
            "bentos_after_first": bentos_after_first}


def test_first_month_promotes_a_first_champion(two_runs, artifacts):
    """Check the first run becomes champion on floors alone, with its bento exported."""
    first = two_runs["first"]
    assert first["promotion"]["decision"] == "promoted" and first["promotion"]["champion"] is None
    assert "first champion" in first["promotion"]["reason"]
    champion = two_runs["registry_after_first"]["champion"]
    assert champion["tag"] == first["model_tag"] and Path(champion["bento_path"]).is_file()
    assert champion["metrics"]["roc_auc"] >= 0.70 and champion["input_sha256"] == first["input_sha256"]
    assert (Path(first["report_dir"]) / "promotion.md").read_text().startswith("# churn: challenger PROMOTED")


def test_a_sabotaged_challenger_is_rejected_and_nothing_served_changes(two_runs, artifacts):
    """Check shuffled training labels lose on the fresh holdout: registry, served tag and bentos unchanged."""
    first, second = two_runs["first"], two_runs["second"]
    promotion = second["promotion"]
    assert promotion["decision"] == "rejected" and promotion["reason"]
    assert promotion["champion"] == first["model_tag"] and promotion["challenger"] == second["model_tag"]
    registry = read_registry(Path(second["registry"]))
    assert registry["champion"] == two_runs["registry_after_first"]["champion"]
    assert [entry["decision"] for entry in registry["history"]] == ["promoted", "rejected"]
    assert registry["history"][-1]["challenger_metrics"]["tag"] == second["model_tag"]
    assert champion_tag("churn", Settings(artifacts_dir=artifacts)) == first["model_tag"]
    assert sorted(p.name for p in (artifacts / "churn" / "bentos").iterdir()) == two_runs["bentos_after_first"]


def test_rollback_cli_restores_the_previous_champion(two_runs, artifacts):
    """Check `python -m flows.rollback` re-points the registry to the replaced champion and logs it."""
    from prefect.settings import PREFECT_API_URL

    path = Path(two_runs["first"]["registry"])
    first, second = two_runs["first"]["model_tag"], two_runs["second"]["model_tag"]
    with locked_registry(path) as registry:  # as if the second model had been promoted
        registry["previous"].append(registry["champion"])
        registry["champion"] = {**registry["champion"], "tag": second}
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "TOLLGATE_ARTIFACTS_DIR": str(artifacts)}
    done = subprocess.run([sys.executable, "-m", "flows.rollback", "--dataset", "churn", "--reason", "test"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["champion"] == first
    registry = read_registry(path)
    assert registry["champion"]["tag"] == first and registry["history"][-1]["decision"] == "rolled_back"
    again = subprocess.run([sys.executable, "-m", "flows.rollback", "--dataset", "churn"], cwd=PROJECT_ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "no previous champion" in again.stdout


def test_killing_a_run_while_packaging_leaves_the_registry_valid(two_runs, artifacts, monthly_batches):
    """Check SIGKILL during packaging/promotion leaves registry.json whole and on the old champion."""
    from prefect.settings import PREFECT_API_URL

    path = Path(two_runs["first"]["registry"])
    before = path.read_bytes()
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "TOLLGATE_ARTIFACTS_DIR": str(artifacts)}
    run = subprocess.Popen([sys.executable, "-m", "flows.retrain", "--dataset", "churn", "--data",
                            str(monthly_batches / "churn")], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    for line in run.stderr:
        seen.append(line)
        if "Task run 'package-" in line or "Task run 'promote-" in line:
            os.killpg(run.pid, signal.SIGKILL)
            break
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, "".join(seen[-20:])
    assert path.read_bytes() == before
    assert json.loads(path.read_text())["champion"]["tag"] == json.loads(before)["champion"]["tag"]


def test_the_service_follows_a_promotion_without_a_failed_request(two_runs, artifacts, monthly_batches, tmp_path):
    """Check a running `bentoml serve` switches to the new champion within 60 s while a client
    sends requests in a loop: every request answered, and the version changes."""
    path = Path(two_runs["first"]["registry"])
    spec_frame = pd.read_csv(monthly_batches / "churn" / f"{two_runs['first']['holdout_month']}.csv", dtype=str,
                             keep_default_na=False)
    from tasks.clean import clean_frame
    from tasks.spec import resolve_spec

    spec = resolve_spec("churn", None, Settings())
    record = request_records(clean_frame(spec_frame.rename(columns=spec.rename), spec).frame, spec)[0]
    server = Server("service.service:Tollgate", {"TOLLGATE_DATASET": "churn", "TOLLGATE_ARTIFACTS_DIR": str(artifacts),
                                                 "TOLLGATE_RELOAD_SECONDS": "1",
                                                 "TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "predictions")},
                    inherit_tollgate=False)
    try:
        server.wait_ready()
        old = read_registry(path)["champion"]["tag"]
        new = two_runs["second"]["model_tag"] if old != two_runs["second"]["model_tag"] else two_runs["first"]["model_tag"]
        versions, failures, stop = [], [], threading.Event()

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while not stop.is_set():
                    response = http.post("/predict", json=record)
                    if response.status_code != 200:
                        failures.append(response.status_code)
                    else:
                        versions.append(response.json()["model_version"])

        worker = threading.Thread(target=client)
        worker.start()
        time.sleep(2)
        with locked_registry(path) as registry:  # what a promotion writes
            registry["previous"].append(registry["champion"])
            registry["champion"] = {**registry["champion"], "tag": new}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not versions or versions[-1] != new.split(":")[1]):
            time.sleep(0.5)
        time.sleep(2)  # both workers switch; keep sending meanwhile
        stop.set()
        worker.join()
        assert failures == []
        assert versions[0] == old.split(":")[1] and versions[-1] == new.split(":")[1], set(versions)
    finally:
        server.stop()


def test_monitoring_detects_injected_drift_and_retrains(two_runs, artifacts, monthly_batches, tmp_path):
    """Check the monitor flow reads the service's log, names the drifted inputs, writes its report,
    and, with no retrain deployment on the server, runs the retrain flow itself."""
    from flows.monitor import monitor
    from service.prediction_log import PredictionLog
    from tasks.clean import clean_frame
    from tasks.spec import resolve_spec

    spec = resolve_spec("churn", None, Settings())
    champion = read_registry(Path(two_runs["first"]["registry"]))["champion"]
    version = champion["tag"].split(":")[1]
    holdout = pd.read_csv(monthly_batches / "churn" / f"{two_runs['first']['holdout_month']}.csv", dtype=str,
                          keep_default_na=False).rename(columns=spec.rename)
    traffic = clean_frame(holdout, spec).frame
    traffic = traffic.assign(tenure_months=traffic["tenure_months"].clip(upper=60) + 55, contract="Two year")
    log = PredictionLog(tmp_path / "predictions")
    log.write([{"time": "2026-11-01T00:00:00+00:00", "request_id": str(i), "endpoint": "predict", "index": 0,
                "model_version": version, "inputs": record, "probability": 0.9, "decision": "Yes",
                "risk_level": "High", "latency_ms": 1.0} for i, record in enumerate(request_records(traffic, spec))])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_PREDICTION_LOG_DIR", str(tmp_path / "predictions"))
        patch.setenv("TOLLGATE_RAW_DATA_DIR", str(monthly_batches))
        result = monitor(dataset="churn")
    assert result["drifted"] and result["model_version"] == version
    assert any("tenure_months" in reason and "contract" in reason for reason in result["reasons"])
    assert Path(result["report"]).is_file() and "data:image/png;base64," in Path(result["report"]).read_text()
    assert result["retrain"]["how"] == "subflow"
    assert result["retrain"]["run"]["promotion"]["decision"] in ("promoted", "rejected")

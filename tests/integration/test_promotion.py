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
import yaml

from flows.retrain import retrain
from tests.conftest import SEED
from tests.integration.processes import Server
from tollgate.config.settings import PROJECT_ROOT, Settings
from tollgate.core.schema import request_records
from tollgate.store.models import champion_tag, verify_model
from tollgate.store.registry import locked_registry, read_registry
from tollgate.synth.generate import make_batch


@pytest.fixture(scope="module")
def artifacts(churn_champion):
    """The session champion's artifacts folder: its registry is the one these runs challenge."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(churn_champion["artifacts"]))
        yield churn_champion["artifacts"]


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
def two_runs(churn_champion, monthly_batches, artifacts, tmp_path_factory):
    """Run 1 on honest data (the session's first champion), run 2 on sabotaged labels (a challenger to refuse,
    its bento built so that not exporting it is checked)."""
    first = churn_champion["summary"]
    bad_data = sabotaged_copy(
        monthly_batches / "churn", tmp_path_factory.mktemp("sabotaged") / "churn", first["holdout_month"]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_BUILD_BENTO", "true")
        second = retrain(dataset="churn", data=str(bad_data))
    return {
        "first": first,
        "second": second,
        "registry_after_first": json.loads(churn_champion["registry_bytes"]),
        "bentos_after_first": churn_champion["bentos"],
    }


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


def biased_copy(source: Path, target: Path, holdout_month: str) -> Path:
    """The same months with most male churners recorded as staying in the training months (churn under-recorded
    for one group, as old records can be); the holdout month untouched."""
    target.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for path in sorted(source.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.stem != holdout_month:
            hidden = (frame["gender"] == "Male") & (frame["churn"] == "Yes") & (rng.random(len(frame)) < 0.85)
            frame.loc[hidden, "churn"] = "No"
        frame.to_csv(target / path.name, index=False)
    return target


def test_a_challenger_unfair_to_a_protected_group_is_refused_and_the_champion_stays(
    churn_champion, monthly_batches, tmp_path
):
    """Check that a model trained where male churn was under-recorded calls far fewer male churners than female
    ones on the honest holdout month: the gate refuses it on the spec's equal-opportunity bound, with the gap in
    its reason, and the registry's champion is exactly as it was; the report shows the gaps and the slices."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(churn_champion["artifacts"], artifacts)
    spec = yaml.safe_load((Settings().specs_dir / "churn.yaml").read_text(encoding="utf-8"))
    spec["promotion"]["floors"] = {"roc_auc": 0.6}  # 500 customers a month: hiding churners costs ROC-AUC too
    spec_path = tmp_path / "churn.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    champion_before = read_registry(artifacts / "churn" / "registry.json")["champion"]
    holdout_month = churn_champion["summary"]["holdout_month"]
    biased = biased_copy(monthly_batches / "churn", tmp_path / "biased" / "churn", holdout_month)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(artifacts))
        summary = retrain(dataset=None, spec=str(spec_path), data=str(biased))

    promotion = summary["promotion"]
    assert promotion["decision"] == "rejected", promotion["reason"]
    assert promotion["reason"].startswith("unfair to a protected group: the equal-opportunity gap across gender")
    assert "for Female" in promotion["reason"] and "beyond the spec's bound 0.15" in promotion["reason"]
    assert "gender.equal_opportunity" in summary["fairness"]["violations"]
    registry = read_registry(Path(summary["registry"]))
    assert registry["champion"] == champion_before
    assert registry["history"][-1]["decision"] == "rejected"
    assert registry["history"][-1]["fairness"]["violations"] == summary["fairness"]["violations"]
    report = Path(summary["report"]).read_text(encoding="utf-8")
    assert "Gaps between protected groups" in report and "by segment and protected group" in report


def test_rollback_cli_restores_the_previous_champion(two_runs, artifacts):
    """Check `python -m flows.rollback` re-points the registry to the replaced champion and logs it."""
    from prefect.settings import PREFECT_API_URL

    path = Path(two_runs["first"]["registry"])
    first, second = two_runs["first"]["model_tag"], two_runs["second"]["model_tag"]
    with locked_registry(path) as registry:  # as if the second model had been promoted
        registry["previous"].append(registry["champion"])
        registry["champion"] = {**registry["champion"], "tag": second}
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "TOLLGATE_ARTIFACTS_DIR": str(artifacts)}
    done = subprocess.run(
        [sys.executable, "-m", "flows.rollback", "--dataset", "churn", "--reason", "test"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["champion"] == first
    registry = read_registry(path)
    assert registry["champion"]["tag"] == first and registry["history"][-1]["decision"] == "rolled_back"
    again = subprocess.run(
        [sys.executable, "-m", "flows.rollback", "--dataset", "churn"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1 and "no previous champion" in again.stdout


def test_a_report_failing_while_the_bento_builds_leaves_no_champion_and_no_bento(
    monthly_batches, tmp_path, monkeypatch
):
    """Check that the report, drawn while the promoted model is packaged and its bento built, failing (a full disk)
    fails the run before the registry is written: no champion, and the bento built meanwhile deleted from the store
    and from the exported files."""
    import bentoml

    from tasks import plots

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.setenv("TOLLGATE_BUILD_BENTO", "true")
    monkeypatch.setattr(plots, "calibration", full_disk)
    bentos_before = {str(bento.tag) for bento in bentoml.bentos.list()}
    with pytest.raises(OSError, match="No space left on device"):
        retrain(dataset="churn", data=str(monthly_batches / "churn"))
    registry = read_registry(artifacts / "churn" / "registry.json")
    assert registry.get("champion") is None and not registry.get("history")
    exported = artifacts / "churn" / "bentos"
    assert exported.is_dir() and not any(exported.iterdir())  # exported while the report drew, then deleted
    assert {str(bento.tag) for bento in bentoml.bentos.list()} == bentos_before


def test_killing_a_run_while_packaging_leaves_the_registry_valid(two_runs, artifacts, monthly_batches):
    """Check SIGKILL during packaging/promotion leaves registry.json whole and on the old champion."""
    from prefect.settings import PREFECT_API_URL

    path = Path(two_runs["first"]["registry"])
    before = path.read_bytes()
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "TOLLGATE_ARTIFACTS_DIR": str(artifacts)}
    run = subprocess.Popen(
        [sys.executable, "-m", "flows.retrain", "--dataset", "churn", "--data", str(monthly_batches / "churn")],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
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
    spec_frame = pd.read_csv(
        monthly_batches / "churn" / f"{two_runs['first']['holdout_month']}.csv", dtype=str, keep_default_na=False
    )
    from tollgate.config.spec import resolve_spec
    from tollgate.core.clean import clean_frame

    spec = resolve_spec("churn", None, Settings())
    record = request_records(clean_frame(spec_frame.rename(columns=spec.rename), spec).frame, spec)[0]
    server = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "churn",
            "TOLLGATE_ARTIFACTS_DIR": str(artifacts),
            "TOLLGATE_RELOAD_SECONDS": "1",
            "TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
        },
        inherit_tollgate=False,
    )
    try:
        server.wait_ready()
        old = read_registry(path)["champion"]["tag"]
        new = (
            two_runs["second"]["model_tag"]
            if old != two_runs["second"]["model_tag"]
            else two_runs["first"]["model_tag"]
        )
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
            registry["champion"] = {**registry["champion"], "tag": new, "sha256": verify_model(new)}
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


def collector_flipped_months(raw: Path, months: list[str], first_index: int) -> None:
    """New security months whose log collector swapped the byte directions (bytes_in ⟷ bytes_out):
    inputs drift, and exfiltration now shows as huge *inbound* bytes, which the champion never saw."""
    for offset, month in enumerate(months):
        batch = make_batch("security", month, first_index + offset, first_index + len(months), 3000, SEED)
        batch = batch.rename(columns={"bytes_out": "bytes_in", "bytes_in": "bytes_out"})
        batch.to_csv(raw / "security" / f"{month}.csv", index=False)


def test_injected_drift_is_detected_and_the_retrained_challenger_promoted(monthly_batches, artifacts, tmp_path):
    """Check the monitor flow reads the served traffic, names the drifted inputs, writes its report, runs the
    retrain flow itself (no deployment on the server), and that retrain's challenger beats the stale
    champion on the new month and is promoted."""
    from flows.monitor import monitor
    from tasks.simulate import replay_traffic
    from tollgate.config.spec import resolve_spec

    raw = tmp_path / "raw"
    shutil.copytree(monthly_batches / "security", raw / "security")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_RAW_DATA_DIR", str(raw))
        patch.setenv("TOLLGATE_PREDICTION_LOG_DIR", str(tmp_path / "predictions"))
        settings = Settings()
        first = retrain(dataset="security")
        assert first["promotion"]["decision"] == "promoted"
        collector_flipped_months(raw, ["2026-03", "2026-04", "2026-05"], first_index=4)
        spec = resolve_spec("security", None, settings)
        served = replay_traffic.fn(spec, settings, "2026-03", tmp_path / "predictions")  # the service's log lines
        assert served["model"] == first["model_tag"]
        result = monitor(dataset="security")

    assert result["drifted"] and result["model_version"] == first["model_tag"].split(":")[1]
    assert any("bytes_in" in reason and "bytes_out" in reason for reason in result["reasons"]), result["reasons"]
    assert Path(result["report"]).is_file() and "data:image/png;base64," in Path(result["report"]).read_text()
    assert result["retrain"]["how"] == "subflow"
    retrained = result["retrain"]["run"]
    assert retrained["holdout_month"] == "2026-05"
    promotion = retrained["promotion"]
    assert promotion["decision"] == "promoted", promotion["reason"]
    assert promotion["champion"] == first["model_tag"] and promotion["ci_low"] > 0
    registry = read_registry(Path(retrained["registry"]))
    assert registry["champion"]["tag"] == retrained["model_tag"]
    assert registry["previous"][-1]["tag"] == first["model_tag"]
    assert [entry["decision"] for entry in registry["history"]] == ["promoted", "promoted"]

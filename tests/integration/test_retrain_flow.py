"""The retrain flow end to end on a real Prefect API, in-process and through its CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml

from flows.retrain import retrain
from tests.conftest import SEED, TELCO_CSV
from tests.integration.conftest import SHIPPED_SPECS
from tollgate.config.settings import PROJECT_ROOT
from tollgate.config.spec import load_spec
from tollgate.synth.generate import make_batch


def load_spec_for(dataset: str):
    return load_spec(PROJECT_ROOT / "data" / "specs" / f"{dataset}.yaml")


SUMMARY_KEYS = {"dataset", "run_id", "status", "rows_in", "rows_clean", "quality", "report_dir", "data_docs"}


@pytest.fixture
def artifacts(tmp_path, monkeypatch) -> Path:
    """Runs write under the test's folder, never into the repository's artifacts/."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(root))
    return root


def run_cli(*args: str, artifacts: Path) -> tuple[int, dict, str]:
    """Run `python -m flows.retrain` against the session's Prefect API; return code, JSON, stderr."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "TOLLGATE_ARTIFACTS_DIR": str(artifacts)}
    completed = subprocess.run(
        [sys.executable, "-m", "flows.retrain", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    last_line = completed.stdout.strip().splitlines()[-1]
    return completed.returncode, json.loads(last_line), completed.stderr


@pytest.mark.parametrize("dataset", ["churn", "security"])
def test_flow_trains_a_model_from_monthly_batches(dataset, monthly_batches, artifacts, with_bento):
    """Check that the flow takes raw months through the gate and the full tournament (the shipped spec) to a
    saved, usable model and its bento."""
    summary = retrain(spec=str(SHIPPED_SPECS / f"{dataset}.yaml"), data=str(monthly_batches / dataset))
    assert set(summary) >= SUMMARY_KEYS and summary["status"] == "completed"
    assert summary["holdout_month"] == "2026-02"
    assert summary["quality"]["success"] and summary["quality"]["warnings"]
    assert summary["rows_clean"] < summary["rows_in"]  # duplicates removed and counted
    run_dir = Path(summary["report_dir"])
    assert run_dir.parent.parent == artifacts / dataset
    assert Path(summary["data_docs"]).is_file()
    metadata = json.loads((run_dir / "metadata.json").read_text())
    assert metadata["input_sha256"] == summary["input_sha256"] and len(metadata["input_files"]) == 4
    model = joblib.load(summary["model_path"])
    assert len(metadata["feature_names"]) == model[-1].n_features_in_
    assert list(model.feature_names_in_) == load_spec_for(dataset).input_columns
    assert len(summary["leaderboard"]) == 5 and summary["leaderboard"][0]["model"] == summary["winner"]["model"]
    assert set(summary["winner"]) == {
        "model",
        "cv_roc_auc",
        "test_roc_auc",
        "test_pr_auc",
        "threshold",
        "test_accuracy",
        "test_recall",
        "test_accuracy_at_0_5",
        "expected_cost",
        "expected_cost_at_0_5",
    }
    assert summary["winner"]["test_roc_auc"] > 0.7
    assert metadata["threshold"] == summary["winner"]["threshold"] and metadata["cv_metrics"]["roc_auc"]["std"] > 0
    report = Path(summary["report"]).read_text()
    assert report.count("data:image/png;base64,") == 10 and "src='http" not in report  # nine, and the slices'
    assert "by segment and protected group" in report
    # the decision policy leads: acted on at most capacity, against nobody, a random draw and everyone
    decision = summary["decision"]
    assert (
        0
        < decision["acted"]
        <= decision["capacity"]
        == int(metadata["holdout_rows"] * (0.08 if dataset == "churn" else 10 / 170))
    )
    assert decision["net_value"] > decision["net_value_random"] and "Value vs actions" in report
    assert report.index("The decision policy on the holdout") < report.index("Leaderboard")
    assert (run_dir / "report.md").is_file() and (run_dir / "leaderboard.csv").is_file()
    # Packaged: in the BentoML store with its checksum, verified on the whole holdout, bento built.
    import bentoml

    stored = bentoml.models.get(summary["model_tag"])
    assert stored.info.metadata["sha256"]["model.joblib"] == summary["model_sha256"]
    assert stored.info.labels["dataset"] == dataset
    assert summary["verification"]["holdout_rows_checked"] == metadata["holdout_rows"]
    assert summary["verification"]["fast_path_max_difference"] <= 1e-9
    assert [m.tag for m in bentoml.bentos.get(summary["bento_tag"]).info.services[0].models] == [stored.tag]


@pytest.mark.slow
def test_ibm_telco_export_runs_with_only_the_rename_map(artifacts):
    """Check the IBM export loads unchanged; its 11 blank TotalCharges are repaired by cleaning."""
    summary = retrain(dataset="churn", data=str(TELCO_CSV))
    assert summary["status"] == "completed" and summary["rows_in"] == 7043
    assert summary["rows_clean"] == 7043 and summary["holdout_month"] is None
    cleaning = json.loads((Path(summary["report_dir"]) / "metadata.json").read_text())["cleaning"]
    assert cleaning["values_repaired"]["blank_to_missing"] == {"total_charges": 11}
    assert summary["winner"]["test_roc_auc"] >= 0.84
    # churn's policy at 8 % capacity: the retention team's list is short, precise and worth more than a random one
    decision = summary["decision"]
    assert decision["acted_share"] <= 0.08 and decision["precision"] >= 0.65
    assert decision["net_value"] > decision["net_value_random"] > 0
    report = (Path(summary["report_dir"]) / "report.md").read_text()
    if decision["net_value_everyone"] > decision["net_value"]:  # said plainly, never hidden
        assert "Capacity binds" in report and "more capacity pays" in report


@pytest.mark.slow
def test_nsl_kdd_runs_through_the_same_flow(artifacts, capsys):
    """Check the real NSL-KDD benchmark (KDDTrain+ trains, KDDTest+ with unseen attack kinds is the
    holdout) runs through the unchanged flow and beats the published 77–82 % accuracy; print its figures."""
    summary = retrain(dataset="nsl_kdd")
    winner = summary["winner"]
    with capsys.disabled():
        print(
            f"\nNSL-KDD (train KDDTrain+, holdout KDDTest+): winner {winner['model']}, "
            f"ROC-AUC {winner['test_roc_auc']:.4f}, "
            f"accuracy {winner['test_accuracy']:.4f} at the tuned threshold {winner['threshold']:.3f} "
            f"({winner['test_accuracy_at_0_5']:.4f} at 0.5), recall {winner['test_recall']:.4f}"
        )
    assert summary["status"] == "completed" and summary["rows_in"] == 125_973 + 22_544
    assert summary["holdout"] == "125,973 training rows, 22,544 holdout rows (file KDDTest+.csv)"
    assert winner["test_roc_auc"] >= 0.93 and winner["test_accuracy"] > 0.82 and winner["test_recall"] > 0.75
    assert summary["promotion"]["decision"] == "promoted"


@pytest.mark.slow
def test_security_from_raw_log_lines_to_a_served_model(tmp_path, artifacts):
    """Check `--raw` takes three months of raw JSON/syslog lines through sessions, the raw-line
    expectations, the tournament and the anomaly report to a packaged, promoted model."""
    from tollgate.synth.raw_logs import write_month

    for month in ("2026-01", "2026-02", "2026-03"):
        write_month(month, 40_000, tmp_path / "logs" / month, seed=5, progress=False)
    code, summary, stderr = run_cli("--dataset", "security", "--raw", str(tmp_path / "logs"), artifacts=artifacts)
    assert code == 0, stderr[-3000:]
    assert summary["holdout_month"] == "2026-03" and summary["promotion"]["decision"] == "promoted"
    quality = json.loads((Path(summary["report_dir"]) / "data_quality.json").read_text())
    assert set(quality["raw_logs"]) == {"2026-01", "2026-02", "2026-03"}
    assert all(report["parse_rate"] > 0.95 and report["unusable_by_kind"] for report in quality["raw_logs"].values())
    assert any(o["batch"] == "raw lines 2026-03" and o["column"] == "parsed" for o in quality["outcomes"])
    assert "## Raw log lines, 2026-03" in (Path(summary["report_dir"]) / "data_quality.md").read_text()
    kinds = {row["kind"]: row for row in summary["anomaly"]["kinds"]}
    assert kinds and all(row["in_training"] for row in kinds.values())
    assert (Path(summary["report_dir"]) / "anomaly.md").is_file()


def test_cli_prints_json_last_for_security(monthly_batches, artifacts):
    """Check `python -m flows.retrain --dataset security` ends with the JSON summary line."""
    code, summary, _ = run_cli(
        "--dataset", "security", "--data", str(monthly_batches / "security"), artifacts=artifacts
    )
    assert code == 0 and summary["status"] == "completed" and summary["dataset"] == "security"


def test_cli_with_a_users_own_spec_and_csv(tmp_path, churn_spec, artifacts):
    """Check that a user's own spec, suite and CSV run with no code change."""
    own = tmp_path / "mine"
    own.mkdir()
    spec = yaml.safe_load(Path(churn_spec.source_path).read_text())
    spec.update(name="acme_churn", quality={**spec["quality"], "suite": "acme_suite.json"})
    (own / "acme.yaml").write_text(yaml.safe_dump(spec))
    suite = json.loads((PROJECT_ROOT / "expectations" / "churn.json").read_text())
    (own / "acme_suite.json").write_text(json.dumps({**suite, "name": "acme_churn"}))
    make_batch("churn", "2026-01", 0, 12, 1500, SEED).to_csv(own / "export.csv", index=False)

    code, summary, _ = run_cli("--spec", str(own / "acme.yaml"), "--data", str(own / "export.csv"), artifacts=artifacts)
    assert code == 0 and summary["dataset"] == "acme_churn" and summary["status"] == "completed"
    assert Path(summary["report_dir"]).parent.parent == artifacts / "acme_churn"


def test_cli_stops_a_corrupted_batch_before_training(tmp_path, monthly_batches, artifacts):
    """Check a critical failure: non-zero exit, the JSON line names the expectation, no model saved."""
    data = tmp_path / "churn"
    shutil.copytree(monthly_batches / "churn", data)
    latest = sorted(data.glob("*.csv"))[-1]
    batch = make_batch("churn", latest.stem, 3, 12, 500, SEED).drop(columns=["contract"])
    batch.to_csv(latest, index=False)

    code, summary, stderr = run_cli("--dataset", "churn", "--data", str(data), artifacts=artifacts)
    assert code == 1 and summary["status"] == "failed"
    assert f"expect_column_to_exist(contract) @ {latest.stem}" in summary["quality"]["critical_failed"]
    assert "QualityGateFailed" in summary["error"] and "contract" in stderr
    run_dir = Path(summary["report_dir"])
    assert (run_dir / "data_docs" / "index.html").is_file()
    assert not (run_dir / "model.joblib").exists()


def test_cli_bad_spec_is_a_clear_error(tmp_path, artifacts):
    """Check that a broken spec fails with the bad key named, before any data is read."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nid_column: id\n")
    code, summary, _ = run_cli("--spec", str(bad), artifacts=artifacts)
    assert code == 1 and summary["status"] == "failed"
    assert "SpecError" in summary["error"] and "target" in summary["error"]


def test_cli_missing_data_is_a_clear_error(tmp_path, artifacts):
    """Check that a data path that does not exist is named in the error, and nothing is trained."""
    code, summary, _ = run_cli("--dataset", "churn", "--data", str(tmp_path / "nowhere"), artifacts=artifacts)
    assert code == 1 and summary["status"] == "failed"
    assert "IngestError" in summary["error"] and "nowhere" in summary["error"]
    assert not list(artifacts.rglob("model.joblib"))


def test_the_runs_list_says_what_happened(tmp_path, monthly_batches, artifacts):
    """Check a run is named by dataset and holdout month, and ends in a state named by what happened: a first
    run Promoted, the same data again Rejected (both COMPLETED), a batch without a column Stopped at gate
    (FAILED, the root cause in its message)."""
    import asyncio

    from prefect.client.orchestration import get_client

    broken = tmp_path / "churn"
    shutil.copytree(monthly_batches / "churn", broken)
    pd.read_csv(broken / "2026-02.csv", dtype=str).drop(columns=["contract"]).to_csv(
        broken / "2026-02.csv", index=False
    )
    states = [
        retrain(dataset="churn", data=str(folder), month="2026-02", return_state=True)
        for folder in (monthly_batches / "churn", monthly_batches / "churn", broken)
    ]
    assert [state.name for state in states] == ["Promoted", "Rejected", "Stopped at gate"]
    assert all(state.is_completed() for state in states[:2]) and "no real improvement" in states[1].message
    assert states[2].is_failed() and "1 of them at the root" in states[2].message

    async def run_names() -> list[str]:
        async with get_client() as client:
            return [(await client.read_flow_run(state.state_details.flow_run_id)).name for state in states]

    assert asyncio.run(run_names()) == ["churn-2026-02"] * 3
